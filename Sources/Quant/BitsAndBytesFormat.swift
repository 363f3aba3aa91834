import Foundation
import TensorIO

/// transformers' serialization of bitsandbytes 4-bit weights (`Linear4bit` state dict, bnb
/// `QuantState.as_dict(packed=True)`), as written by `save_pretrained` of a 4-bit model:
///   <module>.weight                                  U8  [ceil(n/2), 1]  packed codes
///   <module>.weight.absmax                           F32 [nblocks]       (U8 absmax codes when double-quantized)
///   <module>.weight.quant_map                        F32 [16]            code table
///   <module>.weight.nested_absmax                    F32 [ceil(nblocks/256)]   (double quant only)
///   <module>.weight.nested_quant_map                 F32 [256]           dynamic map (double quant only)
///   <module>.weight.quant_state.bitsandbytes__<nf4|fp4>  U8 [len]  json.dumps({"quant_type", "blocksize",
///       "dtype", "shape", ["nested_blocksize", "nested_dtype", "nested_offset"]}) with Python's ", " / ": ".
public enum BitsAndBytesFormat {
    static func stateKey(_ module: String, _ type: QuantType) -> String { "\(module).weight.quant_state.bitsandbytes__\(type.rawValue)" }

    /// The quant-state JSON blob, byte-identical to bnb's `pack_dict_to_tensor(json.dumps(...))`.
    public static func stateJSON(_ q: QuantizedTensor) -> String {
        var s = "{\"quant_type\": \"\(q.type.rawValue)\", \"blocksize\": \(q.blockSize), \"dtype\": \"float32\", \"shape\": [\(q.shape.map(String.init).joined(separator: ", "))]"
        if let dq = q.doubleQuant {
            s += ", \"nested_blocksize\": \(dq.nestedBlockSize), \"nested_dtype\": \"float32\", \"nested_offset\": \(pythonRepr(Double(dq.offset)))"
        }
        return s + "}"
    }

    /// Python's float repr (shortest round-trip digits; exponent form below 1e-4 or from 1e16).
    static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        let s = "\(d)"   // Swift also prints the shortest round-trip digits
        if s.contains("e") {
            // Swift "1e-05" / "1.5e+16" match Python already; normalise "e-5" forms just in case.
            return s
        }
        return s
    }

    public static func add(_ q: QuantizedTensor, module: String, to writer: inout SafeTensorsWriter) {
        let w = "\(module).weight"
        writer.add(w, dtype: .u8, shape: [q.packed.count, 1], bytes: q.packed)
        writer.add("\(w).quant_map", floats: QuantTables.table(q.type), shape: [16])
        if let dq = q.doubleQuant {
            writer.add("\(w).absmax", dtype: .u8, shape: [dq.codes.count], bytes: dq.codes)
            writer.add("\(w).nested_absmax", floats: dq.nestedAbsmax, shape: [dq.nestedAbsmax.count])
            writer.add("\(w).nested_quant_map", floats: QuantTables.dynamic8, shape: [256])
        } else if let absmax = q.absmax {
            writer.add("\(w).absmax", floats: absmax, shape: [absmax.count])
        }
        let blob = Array(stateJSON(q).utf8)
        writer.add(stateKey(module, q.type), dtype: .u8, shape: [blob.count], bytes: blob)
    }

    /// Bytes `add` writes for this tensor (data only, not header entries).
    public static func serializedBytes(_ q: QuantizedTensor) -> Int {
        var n = q.packed.count + 16 * 4 + stateJSON(q).utf8.count
        if let dq = q.doubleQuant { n += dq.codes.count + 4 * dq.nestedAbsmax.count + 256 * 4 } else { n += 4 * (q.absmax?.count ?? 0) }
        return n
    }

    public static func isQuantized(module: String, in file: ShardedCheckpoint) -> Bool {
        QuantType.allCases.contains { file.contains(stateKey(module, $0)) }
    }

    public static func read(module: String, from file: ShardedCheckpoint) throws -> QuantizedTensor {
        let where_ = file.directory.path
        func fail(_ detail: String) -> QuantError { .format(module: module, file: where_, detail: detail) }
        guard let type = QuantType.allCases.first(where: { file.contains(stateKey(module, $0)) }) else {
            throw fail("no \(module).weight.quant_state.bitsandbytes__nf4 (or __fp4) tensor: not a bitsandbytes 4-bit weight")
        }
        let json: HeaderJSON
        do { json = try HeaderJSONParser.parse(try file.bytes(stateKey(module, type))) } catch let e as HeaderJSONError {
            throw fail("quant_state is not valid JSON: \(e.description)")
        }
        guard case let .object(fields) = json else { throw fail("quant_state is \(json.typeName), expected an object") }
        func field(_ k: String) -> HeaderJSON? { fields.first(where: { $0.0 == k })?.1 }
        guard case let .string(qt)? = field("quant_type"), qt == type.rawValue else { throw fail("quant_state.quant_type is not \"\(type.rawValue)\"") }
        guard let blockSize = field("blocksize")?.nonNegativeInt else { throw fail("quant_state.blocksize is missing or not an integer") }
        guard case let .array(dims)? = field("shape") else { throw fail("quant_state.shape is missing") }
        let shape = dims.compactMap(\.nonNegativeInt)
        guard shape.count == dims.count else { throw fail("quant_state.shape must hold non-negative integers") }
        if case let .string(dtype)? = field("dtype"), !["float32", "bfloat16", "float16"].contains(dtype) {
            throw fail("unsupported quant_state.dtype \"\(dtype)\"")
        }
        let w = "\(module).weight"
        let table = try file.floats("\(w).quant_map")
        guard table.map(\.bitPattern) == QuantTables.table(type).map(\.bitPattern) else {
            throw fail("quant_map differs from bitsandbytes' \(type.rawValue) table")
        }
        let packed = try file.bytes(w)
        let nested = field("nested_offset") != nil
        do {
            if nested {
                guard case let .number(text)? = field("nested_offset"), let offset = Double(text) else { throw fail("quant_state.nested_offset is not a number") }
                let nestedBlock = field("nested_blocksize")?.nonNegativeInt ?? 256
                let codes = try file.bytes("\(w).absmax")
                guard file.info("\(w).absmax")?.dtype == .u8 else { throw fail("\(w).absmax must be U8 codes under double quantization") }
                let nestedAbsmax = try file.floats("\(w).nested_absmax")
                let map = try file.floats("\(w).nested_quant_map")
                guard map.map(\.bitPattern) == QuantTables.dynamic8.map(\.bitPattern) else {
                    throw fail("nested_quant_map differs from bitsandbytes' dynamic 8-bit map")
                }
                return try QuantizedTensor(type: type, blockSize: blockSize, shape: shape, packed: packed, absmax: nil,
                                           doubleQuant: DoubleQuantState(codes: codes, nestedAbsmax: nestedAbsmax, offset: Float(offset), nestedBlockSize: nestedBlock))
            }
            return try QuantizedTensor(type: type, blockSize: blockSize, shape: shape, packed: packed,
                                       absmax: try file.floats("\(w).absmax"), doubleQuant: nil)
        } catch let e as QuantError {
            if case .inconsistent(let d) = e { throw fail(d) }
            throw e
        }
    }
}

/// The quantize stage's summary line: "quantized 14 linear layers: 22.5 MB -> 2.9 MB (4.13 bits/param)".
/// Sizes are the fp32 weights before and the 4-bit storage (codes + statistics) after.
public enum QuantizationSummary {
    public static func line(_ tensors: [QuantizedTensor]) -> String {
        let params = tensors.reduce(0) { $0 + $1.count }
        let before = 4 * params
        let after = tensors.reduce(0) { $0 + $1.storageBytes }
        let bits = params == 0 ? 0 : Double(after * 8) / Double(params)
        return "quantized \(tensors.count) linear layer\(tensors.count == 1 ? "" : "s"): \(formatMegabytes(before)) -> \(formatMegabytes(after)) (\(String(format: "%.2f", bits)) bits/param)"
    }
}
