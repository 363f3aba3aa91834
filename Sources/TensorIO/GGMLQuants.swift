import Foundation

/// ggml tensor types (ggml.h `enum ggml_type`) with their block geometry.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15, bf16 = 30

    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        default: return "\(self)".uppercased()
        }
    }
    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: return 32
        default: return 256
        }
    }
    /// Bytes per block (ggml-common.h block structs).
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q8_1: return 36
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        case .q8_K: return 292
        }
    }
    public func byteCount(elements: Int) -> Int { elements / blockSize * blockBytes }
    /// Types `GGMLQuants.dequantize` reads.
    public static let readable: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]
    public var canDequantize: Bool { Self.readable.contains(self) }
}

/// Block (de)quantization of the ggml formats, following ggml-quants.c's reference (`_ref`) routines
/// element for element, so a value read here equals what llama.cpp and gguf-py read.
public enum GGMLQuants {
    /// `count` values of `type` from `raw` (which holds exactly `type.byteCount(elements: count)` bytes).
    public static func dequantize(_ raw: UnsafeRawBufferPointer, type: GGMLType, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        let blocks = count / type.blockSize
        out.withUnsafeMutableBufferPointer { y in
            let p = raw.bindMemory(to: UInt8.self)
            func half(_ at: Int) -> Float { Float16Bits.toFloat(UInt16(p[at]) | UInt16(p[at + 1]) << 8) }
            switch type {
            case .f32:
                for i in 0..<count {
                    y[i] = Float(bitPattern: UInt32(p[4 * i]) | UInt32(p[4 * i + 1]) << 8 | UInt32(p[4 * i + 2]) << 16 | UInt32(p[4 * i + 3]) << 24)
                }
            case .f16: for i in 0..<count { y[i] = half(2 * i) }
            case .bf16: for i in 0..<count { y[i] = BFloat16.toFloat(UInt16(p[2 * i]) | UInt16(p[2 * i + 1]) << 8) }
            case .q8_0:
                for b in 0..<blocks {
                    let o = b * 34, d = half(o)
                    for j in 0..<32 { y[b * 32 + j] = Float(Int8(bitPattern: p[o + 2 + j])) * d }
                }
            case .q4_0, .q4_1:
                let hasMin = type == .q4_1, qs = hasMin ? 4 : 2
                for b in 0..<blocks {
                    let o = b * type.blockBytes, d = half(o), m: Float = hasMin ? half(o + 2) : 0
                    for j in 0..<16 {
                        let q = p[o + qs + j]
                        if hasMin {
                            y[b * 32 + j] = Float(q & 0xF) * d + m
                            y[b * 32 + j + 16] = Float(q >> 4) * d + m
                        } else {
                            y[b * 32 + j] = Float(Int(q & 0xF) - 8) * d
                            y[b * 32 + j + 16] = Float(Int(q >> 4) - 8) * d
                        }
                    }
                }
            case .q5_0, .q5_1:
                let hasMin = type == .q5_1, qhAt = hasMin ? 4 : 2
                for b in 0..<blocks {
                    let o = b * type.blockBytes, d = half(o), m: Float = hasMin ? half(o + 2) : 0
                    let qh = UInt32(p[o + qhAt]) | UInt32(p[o + qhAt + 1]) << 8 | UInt32(p[o + qhAt + 2]) << 16 | UInt32(p[o + qhAt + 3]) << 24
                    for j in 0..<16 {
                        let q = p[o + qhAt + 4 + j]
                        let h0 = Int(((qh >> UInt32(j)) << 4) & 0x10), h1 = Int((qh >> UInt32(j + 12)) & 0x10)
                        let x0 = Int(q & 0xF) | h0, x1 = Int(q >> 4) | h1
                        if hasMin {
                            y[b * 32 + j] = Float(x0) * d + m
                            y[b * 32 + j + 16] = Float(x1) * d + m
                        } else {
                            y[b * 32 + j] = Float(x0 - 16) * d
                            y[b * 32 + j + 16] = Float(x1 - 16) * d
                        }
                    }
                }
            case .q4_K, .q5_K:
                let five = type == .q5_K
                for b in 0..<blocks {
                    let o = b * type.blockBytes, d = half(o), dmin = half(o + 2)
                    let scales = o + 4, qh = o + 16, ql = five ? o + 48 : o + 16
                    var out = b * 256, q = ql, scale = 0
                    var u1: UInt8 = 1, u2: UInt8 = 2
                    for _ in 0..<4 {   // 64 values per step: two 32-value sub-blocks
                        let (s1, m1) = scaleMinK4(scale, p, scales), (s2, m2) = scaleMinK4(scale + 1, p, scales)
                        let d1 = d * Float(s1), mm1 = dmin * Float(m1), d2 = d * Float(s2), mm2 = dmin * Float(m2)
                        for l in 0..<32 {
                            let high: Float = five && p[qh + l] & u1 != 0 ? 16 : 0
                            y[out + l] = d1 * (Float(p[q + l] & 0xF) + high) - mm1
                        }
                        for l in 0..<32 {
                            let high: Float = five && p[qh + l] & u2 != 0 ? 16 : 0
                            y[out + 32 + l] = d2 * (Float(p[q + l] >> 4) + high) - mm2
                        }
                        out += 64; q += 32; scale += 2
                        u1 <<= 2; u2 <<= 2
                    }
                }
            case .q6_K:
                for b in 0..<blocks {
                    let o = b * 210, d = half(o + 208)
                    var ql = o, qh = o + 128, sc = o + 192, out = b * 256
                    for _ in 0..<2 {   // 128 values per half
                        for l in 0..<32 {
                            let s = l / 16
                            let q1 = Int((p[ql + l] & 0xF) | ((p[qh + l] >> 0) & 3) << 4) - 32
                            let q2 = Int((p[ql + l + 32] & 0xF) | ((p[qh + l] >> 2) & 3) << 4) - 32
                            let q3 = Int((p[ql + l] >> 4) | ((p[qh + l] >> 4) & 3) << 4) - 32
                            let q4 = Int((p[ql + l + 32] >> 4) | ((p[qh + l] >> 6) & 3) << 4) - 32
                            func scale(_ i: Int) -> Float { d * Float(Int8(bitPattern: p[sc + s + i])) }
                            y[out + l] = scale(0) * Float(q1)
                            y[out + l + 32] = scale(2) * Float(q2)
                            y[out + l + 64] = scale(4) * Float(q3)
                            y[out + l + 96] = scale(6) * Float(q4)
                        }
                        out += 128; ql += 64; qh += 32; sc += 8
                    }
                }
            default:
                break   // callers check canDequantize
            }
        }
        return out
    }

    /// ggml-quants.c `get_scale_min_k4`: the 6-bit scale and min of sub-block j from the 12 packed bytes.
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ q: UnsafeBufferPointer<UInt8>, _ at: Int) -> (UInt8, UInt8) {
        if j < 4 { return (q[at + j] & 63, q[at + j + 4] & 63) }
        return ((q[at + j + 4] & 0xF) | ((q[at + j - 4] >> 6) << 4), (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4))
    }

    /// Types `quantize` writes.
    public static let writable: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0]

    /// Encodes `values` (a multiple of the block size) as `type`.
    public static func quantize(_ values: [Float], type: GGMLType) -> [UInt8] {
        precondition(values.count % type.blockSize == 0 && writable.contains(type), "caller checks the block size and type")
        var out = [UInt8]()
        out.reserveCapacity(type.byteCount(elements: values.count))
        func append16(_ v: UInt16) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
        switch type {
        case .f32: return DType.f32.bytes(of: values)
        case .f16: return DType.f16.bytes(of: values)
        case .bf16: return DType.bf16.bytes(of: values)
        case .q8_0:
            // quantize_row_q8_0_ref: d = amax/127, q = round(x/d) (half away from zero).
            for b in 0..<(values.count / 32) {
                let x = values[(b * 32)..<(b * 32 + 32)]
                let amax = x.reduce(Float(0)) { max($0, abs($1)) }
                let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                append16(Float16Bits.fromFloat(d))
                for v in x { out.append(UInt8(bitPattern: Int8((v * id).rounded(.toNearestOrAwayFromZero)))) }
            }
        case .q4_0:
            // quantize_row_q4_0_ref: d = (signed value of largest magnitude) / -8, q = min(15, trunc(x/d + 8.5)).
            for b in 0..<(values.count / 32) {
                let x = Array(values[(b * 32)..<(b * 32 + 32)])
                var amax: Float = 0, signedMax: Float = 0
                for v in x where amax < abs(v) { amax = abs(v); signedMax = v }
                let d = signedMax / -8, id: Float = d != 0 ? 1 / d : 0
                append16(Float16Bits.fromFloat(d))
                func code(_ v: Float) -> UInt8 { UInt8(min(15, Int8(v * id + 8.5))) }
                for j in 0..<16 { out.append(code(x[j]) | code(x[j + 16]) << 4) }
            }
        default:
            break
        }
        return out
    }
}
