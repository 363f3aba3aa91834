import Foundation
import Kernels

/// Optimizers over an ordered list of Float32 parameter tensors.
///
/// The caller visits parameters through `update(index:value:grad:)` after `beginStep(lr:)`;
/// parameter `index` must be stable across steps (it keys the moment buffers).
/// All scalar coefficients are computed in Double and applied to Float, as torch does.
public protocol Optimizer: AnyObject {
    /// Starts optimizer step t+1 with learning rate `lr`.
    func beginStep(learningRate lr: Double)
    /// Updates one parameter tensor in place from its gradient.
    func update(index: Int, value: inout [Float], grad: [Float])
    /// Completed optimizer steps.
    var step: Int { get }
    /// The state (checkpoints), written through `append` as it is serialised: moment buffers go
    /// straight from their storage, so a state of tens of MB is never held twice.
    func writeState(to append: (UnsafeRawBufferPointer) throws -> Void) throws
    func restore(stateBytes: [UInt8]) throws
}

extension Optimizer {
    /// The state as one byte array (what `writeState` writes; tests, small states).
    public func stateBytes() -> [UInt8] {
        var out: [UInt8] = []
        try? writeState { out += $0 }   // appending to memory cannot fail
        return out
    }
}

public struct OptimizerOptions: Equatable, Sendable {
    public enum Kind: String, Sendable { case adamw, adamw8bit, sgd }
    public var kind: Kind = .adamw
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0.01
    public var momentum: Double = 0
    public init() {}

    /// Parses an optimizer name; `paged_adamw_8bit` is the notebook's optimizer and means
    /// `adamw8bit` on CPU (paging moves states between GPU and host memory; there is no GPU here).
    public static func kind(named name: String, log: (String) -> Void = { _ in }) throws -> Kind {
        switch name {
        case "adamw", "adamw_torch": return .adamw
        case "adamw8bit", "adamw_8bit": return .adamw8bit
        case "paged_adamw_8bit", "paged_adamw8bit":
            log("optimizer paged_adamw_8bit: paging has no meaning on CPU, using adamw8bit (same update)")
            return .adamw8bit
        case "sgd": return .sgd
        default: throw TrainingError.invalidOption("unknown optimizer \"\(name)\"; use adamw, adamw8bit, paged_adamw_8bit or sgd")
        }
    }

    public func make() -> Optimizer {
        switch kind {
        case .adamw: return AdamW(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case .adamw8bit: return AdamW8bit(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case .sgd: return SGD(momentum: momentum, weightDecay: weightDecay)
        }
    }
}

/// torch.optim.AdamW (foreach=False, amsgrad=False), single-tensor path, exact op order:
///   p *= 1 − lr·wd ; m.lerp_(g, 1 − β1) ; v = β2·v + (1 − β2)·g² ;
///   denom = sqrt(v) / sqrt(1 − β2^t) + eps ; p −= (lr / (1 − β1^t)) · m / denom
public final class AdamW: Optimizer {
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public private(set) var step = 0
    private var lr = 0.0
    private var m: [Int: [Float]] = [:]  // first moment per parameter index
    private var v: [Int: [Float]] = [:]  // second moment

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    public func beginStep(learningRate lr: Double) { self.lr = lr; step += 1 }

    public func update(index: Int, value p: inout [Float], grad g: [Float]) {
        let n = p.count
        let t = Double(step)
        let kernel = AdamWKernel(decay: Float(1 - lr * weightDecay), oneMinusBeta1: Float(1 - beta1), beta2: Float(beta2),
                                 oneMinusBeta2: Float(1 - beta2), bias2Sqrt: Float((1 - pow(beta2, t)).squareRoot()),
                                 eps: Float(eps), stepSize: Float(lr / (1 - pow(beta1, t))))
        // A moment of another length cannot belong to this tensor (checkpoints are checked before they
        // are restored); starting it from zero keeps the kernel inside its buffers.
        if m[index]?.count != n { m[index] = [Float](repeating: 0, count: n) }
        if v[index]?.count != n { v[index] = [Float](repeating: 0, count: n) }
        // The moments are updated through the dictionary's in-place accessor: no copy per step.
        m[index, default: []].withUnsafeMutableBufferPointer { mt in
            v[index, default: []].withUnsafeMutableBufferPointer { vt in
                p.withUnsafeMutableBufferPointer { pp in
                    g.withUnsafeBufferPointer { gg in
                        guard let pb = pp.baseAddress, let gb = gg.baseAddress, let mb = mt.baseAddress,
                              let vb = vt.baseAddress, gg.count == n else { return }
                        kernel.apply(parameters: pb, firstMoment: mb, secondMoment: vb, gradient: gb, count: n)
                    }
                }
            }
        }
    }

    public func writeState(to append: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ByteWriter.stream(to: append) { w in
            w.tag("adamw"); w.int(step)
            try w.floatMap(m); try w.floatMap(v)
        }
    }

    public func restore(stateBytes: [UInt8]) throws {
        var r = ByteReader(stateBytes)
        try r.expectTag("adamw")
        step = try r.int()
        m = try r.floatMap(); v = try r.floatMap()
    }
}

/// torch.optim.SGD: g += wd·p ; buf = momentum·buf + g (buf = g at the first step) ; p −= lr·buf.
public final class SGD: Optimizer {
    public let momentum: Double, weightDecay: Double
    public private(set) var step = 0
    private var lr = 0.0
    private var buffers: [Int: [Float]] = [:]

    public init(momentum: Double = 0, weightDecay: Double = 0) { self.momentum = momentum; self.weightDecay = weightDecay }
    public func beginStep(learningRate lr: Double) { self.lr = lr; step += 1 }

    public func update(index: Int, value p: inout [Float], grad: [Float]) {
        var g = grad
        let wd = Float(weightDecay), mu = Float(momentum), alpha = Float(lr)
        if wd != 0 { for i in g.indices { g[i] += wd * p[i] } }
        if mu != 0 {
            if var buf = buffers[index] {
                for i in g.indices { buf[i] = buf[i] * mu + g[i] }
                g = buf; buffers[index] = buf
            } else {
                buffers[index] = g
            }
        }
        for i in p.indices { p[i] += -alpha * g[i] }
    }

    public func writeState(to append: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ByteWriter.stream(to: append) { w in w.tag("sgd"); w.int(step); try w.floatMap(buffers) }
    }
    public func restore(stateBytes: [UInt8]) throws {
        var r = ByteReader(stateBytes); try r.expectTag("sgd"); step = try r.int(); buffers = try r.floatMap()
    }
}

/// Global-norm gradient clipping, torch.nn.utils.clip_grad_norm_ (norm_type 2):
/// total = ‖all grads‖₂ (sum of squares in parameter order, Double accumulation);
/// coef = min(1, max / (total + 1e-6)); grads *= coef when coef < 1.
public enum GradientClipping {
    public static func globalNorm(_ grads: [[Float]]) -> Double {
        var sum = 0.0
        for g in grads {
            // per-tensor norm first, as torch does (norm of norms)
            var s = 0.0
            for x in g { s += Double(x) * Double(x) }
            sum += s
        }
        return sum.squareRoot()
    }

    public static func coefficient(norm: Double, maxNorm: Double) -> Double {
        min(1, maxNorm / (norm + 1e-6))
    }
}

// MARK: - little-endian state serialisation

/// Writes the little-endian state through `append`: scalars and tags gather in a small buffer,
/// float and byte arrays go out from their own storage (flushing the buffer first), so nothing
/// the size of the state is built in memory (`ByteWriter.stream`).
struct ByteWriter {
    private var pending: [UInt8] = []
    private let append: (UnsafeRawBufferPointer) throws -> Void
    private init(_ append: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.append = append }

    /// Runs `body` with a writer over `append`, then writes what is still gathered.
    static func stream(to append: (UnsafeRawBufferPointer) throws -> Void, _ body: (inout ByteWriter) throws -> Void) throws {
        try withoutActuallyEscaping(append) { a in
            var w = ByteWriter(a)
            try body(&w)
            try w.finish()
        }
    }
    mutating func int(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { pending += $0 } }
    mutating func double(_ v: Double) { withUnsafeBytes(of: v.bitPattern.littleEndian) { pending += $0 } }
    mutating func tag(_ s: String) { let u = Array(s.utf8); int(u.count); pending += u }
    mutating func floats(_ a: [Float]) throws {
        int(a.count)
        try finish()
        #if _endian(little)
        try a.withUnsafeBytes { try append($0) }   // the file is little-endian, as this host
        #else
        var le: [UInt8] = []
        for x in a { withUnsafeBytes(of: x.bitPattern.littleEndian) { le += $0 } }
        try le.withUnsafeBytes { try append($0) }
        #endif
    }
    mutating func uint8s(_ a: [UInt8]) throws { int(a.count); try finish(); try a.withUnsafeBytes { try append($0) } }
    mutating func floatMap(_ m: [Int: [Float]]) throws {
        int(m.count)
        for k in m.keys.sorted() { int(k); try floats(m[k] ?? []) }
    }
    /// Writes what is gathered.
    private mutating func finish() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { try append($0) }
        pending.removeAll(keepingCapacity: true)
    }
}

struct ByteReader {
    let bytes: [UInt8]; var offset = 0
    init(_ b: [UInt8]) { bytes = b }
    private func fail(_ what: String) -> TrainingError { .corruptCheckpoint(path: "optimizer state", detail: what) }
    mutating func raw(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, offset + n <= bytes.count else { throw fail("truncated at byte \(offset)") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
    mutating func uint64() throws -> UInt64 {
        let s = try raw(8); var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    mutating func int() throws -> Int { Int(Int64(bitPattern: try uint64())) }
    mutating func double() throws -> Double { Double(bitPattern: try uint64()) }
    mutating func tag() throws -> String { let n = try int(); return String(decoding: try raw(n), as: UTF8.self) }
    mutating func expectTag(_ t: String) throws { let got = try tag(); guard got == t else { throw fail("expected \(t) state, found \(got)") } }
    mutating func floats() throws -> [Float] {
        let n = try int(); guard n >= 0, n <= (bytes.count - offset) / 4 else { throw fail("bad length") }
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let s = try raw(4); var v: UInt32 = 0
            for (j, b) in s.enumerated() { v |= UInt32(b) << (8 * UInt32(j)) }
            out[i] = Float(bitPattern: v)
        }
        return out
    }
    mutating func uint8s() throws -> [UInt8] { let n = try int(); return Array(try raw(n)) }
    mutating func floatMap() throws -> [Int: [Float]] {
        let n = try int(); var m: [Int: [Float]] = [:]
        for _ in 0..<max(0, n) { let k = try int(); m[k] = try floats() }
        return m
    }
}
