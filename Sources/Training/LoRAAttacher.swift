import Foundation
import Kernels
import Model
import TensorIO

/// Which linear layers get adapters.
public enum LoRATargets: Equatable, Sendable {
    /// Every linear layer with in_features == out_features (the reference notebook's rule).
    case square
    /// PEFT's "all-linear": every linear layer except the output head.
    case allLinear
    /// PEFT `target_modules` list: a module matches a name exactly or ends with "." + name.
    case names([String])
    /// PEFT string `target_modules`: the regular expression must match the whole module name.
    case regex(String)

    public var description: String {
        switch self {
        case .square: return "square"
        case .allLinear: return "all-linear"
        case .names(let n): return "[" + n.joined(separator: ", ") + "]"
        case .regex(let r): return "{regex: \(r)}"
        }
    }

    /// Names of the selected modules, in model order.
    public func select(_ modules: [(name: String, inFeatures: Int, outFeatures: Int, isHead: Bool)]) throws -> [String] {
        let chosen: [String]
        switch self {
        case .square:
            chosen = modules.filter { $0.inFeatures == $0.outFeatures }.map(\.name)
        case .allLinear:
            chosen = modules.filter { !$0.isHead }.map(\.name)
        case .names(let keys):
            chosen = modules.map(\.name).filter { name in keys.contains { name == $0 || name.hasSuffix("." + $0) } }
        case .regex(let pattern):
            let re: NSRegularExpression
            do { re = try NSRegularExpression(pattern: "^(?:" + pattern + ")$") } catch {
                throw TrainingError.invalidOption("adapter targets: invalid regular expression \"\(pattern)\": \(error.localizedDescription)")
            }
            chosen = modules.map(\.name).filter { re.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
        }
        if chosen.isEmpty { throw TrainingError.noMatchingModules(targets: description, available: modules.map(\.name)) }
        return chosen
    }
}

public enum LoRAInit: Equatable, Sendable {
    /// A ~ N(0, std²), B = 0 (the reference notebook, std 0.02).
    case gaussian(std: Double)
    /// PEFT's default: kaiming_uniform_(A, a=√5) ⇒ bound = gain·√(3/fan_in) = √(2/(1+5))·√(3/in) = 1/√in; B = 0.
    case kaiming
    /// Start from an existing PEFT adapter directory.
    case from(URL)
}

public struct LoRAOptions: Equatable, Sendable {
    public var targets: LoRATargets = .square
    public var rank = 16
    public var alpha: Double? = nil          // default = rank (scale 1)
    public var dropout: Double? = nil        // nil: 0, or the adapter file's lora_dropout with init.from
    public var rslora = false
    public var initialization: LoRAInit = .gaussian(std: 0.02)
    public init() {}

    /// PEFT scaling: alpha / r, or alpha / √r with rsLoRA (Kalajdzievski 2023).
    public var scale: Double {
        let a = alpha ?? Double(rank)
        return rslora ? a / Double(rank).squareRoot() : a / Double(rank)
    }
}

/// Parameter counts in the reference notebook's convention: a 4-bit weight counts numel/2
/// (PyTorch's numel of a packed Params4bit), adapters are the trainable parameters.
public struct ParameterSummary: Equatable, Sendable {
    public var total: Int
    public var trainable: Int
    public var percent: Double { total > 0 ? 100 * Double(trainable) / Double(total) : 0 }
    public var line: String {
        "trainable params: \(ParameterSummary.grouped(trainable)) || all params: \(ParameterSummary.grouped(total)) || trainable%: \(String(format: "%.2f", percent))"
    }
    static func grouped(_ n: Int) -> String {
        let s = String(n); var out = ""
        for (i, ch) in s.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(ch) }
        return String(out.reversed())
    }
}

public enum LoRAAttacher {
    static func descriptors(_ model: LlamaModel) -> [(name: String, inFeatures: Int, outFeatures: Int, isHead: Bool)] {
        model.linearModules.map { ($0.name, $0.inFeatures, $0.outFeatures, $0 === model.head) }
    }

    /// Attaches adapters and returns the adapted module names (model order). Random init uses the
    /// counter-based stream "lora/<module>/A" of `seed`, so modules never shift each other's numbers.
    /// `log` gets one summary line (modules by name x count, trainable parameters); `detail` gets
    /// one line per adapted module (the stage log keeps them: 210 lines on SmolLM2).
    @discardableResult
    public static func attach(to model: LlamaModel, options: LoRAOptions, seed: UInt64,
                              log: (String) -> Void = { _ in }, detail: (String) -> Void = { _ in }) throws -> [String] {
        if let p = options.dropout, !(p >= 0 && p < 1) {
            throw TrainingError.invalidOption("lora dropout \(p) is out of range; use a probability with 0 <= dropout < 1")
        }
        let dropout = options.dropout ?? 0
        guard options.rank > 0 else { throw TrainingError.invalidOption("lora rank must be positive, got \(options.rank)") }
        if case .from(let dir) = options.initialization {
            let names = try PEFTAdapter.load(from: dir, into: model, dropout: options.dropout, log: detail)
            log(groupedLine(names, rank: adapted(model).first?.adapter?.rank ?? options.rank, dropout: Double(String(adapted(model).first?.adapter?.dropout ?? 0)) ?? 0))
            return names
        }
        let names = Set(try options.targets.select(descriptors(model)))
        var done: [String] = []
        for m in model.linearModules where names.contains(m.name) {
            let r = options.rank
            var stream = RandomStream(seed: seed, stream: "lora/\(m.name)/A")
            var a = [Float](repeating: 0, count: r * m.inFeatures)   // (r, in)
            switch options.initialization {
            case .gaussian(let std): for i in a.indices { a[i] = Float(stream.nextNormal() * std) }
            case .kaiming:
                let bound = 1 / Double(m.inFeatures).squareRoot()
                for i in a.indices { a[i] = Float((stream.nextUniform() * 2 - 1) * bound) }
            case .from: break
            }
            m.adapter = LoRAAdapter(rank: r, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                    scale: Float(options.scale), dropout: Float(dropout), a: a, b: nil)
            detail(adapterLine(m.name, m.inFeatures, m.outFeatures, rank: r, dropout: dropout))
            done.append(m.name)
        }
        log(groupedLine(done, rank: options.rank, dropout: dropout))
        log(summary(model).line)
        return done
    }

    /// `adapters (rank 16) on q_proj x30, o_proj x30`: modules grouped by their last name component,
    /// in model order, with `, dropout 0.1` when > 0.
    static func groupedLine(_ names: [String], rank: Int, dropout: Double) -> String {
        var order: [String] = [], counts: [String: Int] = [:]
        for name in names {
            let leaf = String(name.split(separator: ".").last ?? Substring(name))
            if counts[leaf] == nil { order.append(leaf) }
            counts[leaf, default: 0] += 1
        }
        let groups = order.map { "\($0) x\(counts[$0] ?? 0)" }.joined(separator: ", ")
        return "adapters (rank \(rank)\(dropout > 0 ? ", dropout \(dropout)" : "")) on \(names.count) modules: \(groups)"
    }

    /// `adapter on layers.0.attention.wq (512x512, rank 16)`, with `, dropout 0.1` when > 0.
    static func adapterLine(_ name: String, _ inFeatures: Int, _ outFeatures: Int, rank: Int, dropout: Double) -> String {
        "adapter on \(name) (\(outFeatures)x\(inFeatures), rank \(rank)" + (dropout > 0 ? ", dropout \(dropout))" : ")")
    }

    /// Modules carrying an adapter, in model order.
    public static func adapted(_ model: LlamaModel) -> [LinearModule] { model.linearModules.filter { $0.adapter != nil } }

    /// `assumeQuantized` counts every linear (head included, untied) as 4-bit, i.e. the numbers the
    /// summary will show after `quantize` with no skip list.
    public static func summary(_ model: LlamaModel, assumeQuantized: Bool = false) -> ParameterSummary {
        let c = model.config
        var total = c.vocabSize * c.hiddenSize                     // embedding
        total += c.hiddenSize * (2 * c.layers + 1)                 // RMSNorm weights
        var trainable = 0
        for m in model.linearModules {
            let quantized = assumeQuantized || m.isQuantized
            if let ad = m.adapter { trainable += ad.a.count + ad.b.count }
            if m === model.head && !quantized && model.headTied { continue }  // shares the embedding
            let n = m.inFeatures * m.outFeatures
            total += quantized ? n / 2 : n
            total += m.bias?.count ?? 0
        }
        return ParameterSummary(total: total + trainable, trainable: trainable)
    }
}
