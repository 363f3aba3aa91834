import XCTest
import Quant
import TensorIO
import TestSupport

/// Acceptance: every case of golden/quant.safetensors (bitsandbytes 0.50.2) in every reference kit.
/// The inputs are the file's `<t>.input` tensors (shared kit: t0-t3; own kit: t0-t4).
final class QuantGoldenTests: XCTestCase {
    func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    func testTablesMatchBitsAndBytes() throws {
        for kit in try Reference.kits() {
            let g = try SafeTensorsFile(url: kit.file("golden/quant.safetensors"))
            XCTAssertEqual(bits(QuantTables.nf4), bits(try g.floats("table.nf4")), "\(kit)")
            XCTAssertEqual(bits(QuantTables.fp4), bits(try g.floats("table.fp4")), "\(kit)")
            XCTAssertEqual(bits(QuantTables.dynamic8), bits(try g.floats("table.dynamic8")), "\(kit)")
        }
    }

    func testEveryGoldenCaseIsBitExact() throws {
        for kit in try Reference.kits() {
            let g = try SafeTensorsFile(url: kit.file("golden/quant.safetensors"))
            let inputs = g.names.filter { $0.hasSuffix(".input") }.map { String($0.dropLast(".input".count)) }.sorted()
            if kit.isShared { XCTAssertEqual(inputs, ["t0", "t1", "t2", "t3"], "\(kit)") } else { XCTAssertEqual(inputs.count, 5, "\(kit)") }
            XCTAssertEqual(try checkCases(g, inputs: inputs, kit: kit), 8 * inputs.count, "\(kit)")
        }
    }

    func checkCases(_ g: SafeTensorsFile, inputs: [String], kit: ReferenceKit) throws -> Int {
        var cases = 0
        for t in inputs {
            let input = try g.floats("\(t).input")
            let shape = try XCTUnwrap(g.info("\(t).input")).shape
            for type in QuantType.allCases {
                for bs in [64, 128] {
                    for dq in [false, true] {
                        let key = "\(t).\(type.rawValue).b\(bs)\(dq ? ".dq" : "")"
                        let where_ = "\(key) \(kit)"
                        let q = try Quantizer.quantize(input, shape: shape, type: type, blockSize: bs, doubleQuant: dq)
                        XCTAssertEqual(q.packed, try g.bytes("\(key).codes"), "\(where_) codes")
                        if dq {
                            let s = try XCTUnwrap(q.doubleQuant)
                            let goldenOffset = try g.floats("\(key).offset")[0]
                            let ulps = abs(Int64(s.offset.bitPattern) - Int64(goldenOffset.bitPattern))
                            XCTAssertLessThanOrEqual(ulps, 1, "\(where_) offset \(s.offset) vs \(goldenOffset)")
                            XCTAssertEqual(s.codes, try g.bytes("\(key).absmax_codes"), "\(where_) absmax codes")
                            XCTAssertEqual(bits(s.nestedAbsmax), bits(try g.floats("\(key).state2_absmax")), "\(where_) nested absmax")
                            XCTAssertEqual(try g.int64s("\(key).state2_blocksize"), [Int64(s.nestedBlockSize)], "\(where_)")
                            // Dequantize with the golden offset so a 1-ulp offset difference cannot hide a real one.
                            let exact = try QuantizedTensor(type: type, blockSize: bs, shape: shape, packed: q.packed, absmax: nil,
                                                            doubleQuant: DoubleQuantState(codes: s.codes, nestedAbsmax: s.nestedAbsmax, offset: goldenOffset))
                            XCTAssertEqual(bits(exact.effectiveAbsmax), bits(try g.floats("\(key).absmax_dequant")), "\(where_) absmax dequant")
                            XCTAssertEqual(bits(Quantizer.dequantize(exact)), bits(try g.floats("\(key).dequant")), "\(where_) dequant")
                        } else {
                            XCTAssertEqual(bits(try XCTUnwrap(q.absmax)), bits(try g.floats("\(key).absmax")), "\(where_) absmax")
                            XCTAssertEqual(bits(Quantizer.dequantize(q)), bits(try g.floats("\(key).dequant")), "\(where_) dequant")
                        }
                        cases += 1
                    }
                }
            }
        }
        return cases
    }

    func testPackingTiesAndPadding() throws {
        // First element in the high nibble: NF4 [1, -1] -> 0xF0, FP4 -> 0x3B (quant_README).
        XCTAssertEqual(try Quantizer.quantize([1, -1], shape: [2], type: .nf4, blockSize: 64, doubleQuant: false).packed, [0xF0])
        XCTAssertEqual(try Quantizer.quantize([1, -1], shape: [2], type: .fp4, blockSize: 64, doubleQuant: false).packed, [0x3B])
        // Odd count [3, 7] of ones: 11 bytes, the last low nibble is the code of 0.0 (NF4 7).
        let ones = try Quantizer.quantize([Float](repeating: 1, count: 21), shape: [3, 7], type: .nf4, blockSize: 64, doubleQuant: false)
        XCTAssertEqual(ones.packed.count, 11)
        XCTAssertEqual(ones.packed.last, 0xF7)
        XCTAssertEqual(Quantizer.dequantize(ones), [Float](repeating: 1, count: 21))
        // FP4 "-0" quirk: 0.001 (scaled by absmax 1) -> nibble 8; 0 and small negatives -> 0.
        let fp = try Quantizer.quantize([1, 0.001, 0, -0.001], shape: [4], type: .fp4, blockSize: 64, doubleQuant: false)
        XCTAssertEqual(fp.packed, [0x38, 0x00])
        // A value exactly on a midpoint goes to the lower table value.
        let t = QuantTables.nf4
        let mid = (t[8] + t[9]) / 2
        XCTAssertEqual(try Quantizer.quantize([1, mid], shape: [2], type: .nf4, blockSize: 64, doubleQuant: false).packed, [0xF8])
        XCTAssertEqual(try Quantizer.quantize([1, mid.nextUp], shape: [2], type: .nf4, blockSize: 64, doubleQuant: false).packed, [0xF9])
        // All-zero block: codes 7, absmax 0, dequant exactly 0.
        let z = try Quantizer.quantize([Float](repeating: 0, count: 64), shape: [64], type: .nf4, blockSize: 64, doubleQuant: false)
        XCTAssertEqual(z.packed, [UInt8](repeating: 0x77, count: 32))
        XCTAssertEqual(z.absmax, [0])
        XCTAssertEqual(Quantizer.dequantize(z), [Float](repeating: 0, count: 64))
    }

    func testBlockSizesAndErrors() throws {
        for bs in [32, 64, 256, 1024, 4096] {
            let w = (0..<5000).map { Float(sin(Double($0) * 0.37)) }
            let q = try Quantizer.quantize(w, shape: [50, 100], type: .nf4, blockSize: bs, doubleQuant: true)
            XCTAssertEqual(q.blockCount, (5000 + bs - 1) / bs)
            let d = Quantizer.dequantize(q)
            for i in 0..<w.count { if abs(d[i] - w[i]) > 0.16 { XCTFail("block \(bs): \(d[i]) vs \(w[i])"); break } }
        }
        for bad in [0, 16, 48, 8192] {
            XCTAssertThrowsError(try Quantizer.quantize([1, 2], shape: [2], type: .nf4, blockSize: bad, doubleQuant: false)) { e in
                XCTAssertEqual((e as? LocalizedError)?.errorDescription,
                               "invalid quantization block size \(bad): use a power of two from 32 to 4096 (bitsandbytes default 64)")
            }
        }
        XCTAssertThrowsError(try Quantizer.quantize([1, 2, 3], shape: [2, 2], type: .nf4, blockSize: 64, doubleQuant: false)) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription, "weight has 3 values but its shape [2, 2] needs 4")
        }
    }

    func testBitsPerParameter() throws {
        let w: [Float] = (0..<(64 * 4096)).map { (i: Int) -> Float in Float((i * 7919) % 1000) / 1000 - 0.5 }
        let dq = try Quantizer.quantize(w, shape: [64, 4096], type: .nf4, blockSize: 64, doubleQuant: true)
        // 4 + 8/64 + 32/(64*256) + 32/n
        let expected: Double = 4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / Double(w.count)
        XCTAssertEqual(dq.bitsPerParameter, expected, accuracy: 1e-12)
        XCTAssertEqual(String(format: "%.2f", dq.bitsPerParameter), "4.13")
        let plain = try Quantizer.quantize(w, shape: [64, 4096], type: .nf4, blockSize: 64, doubleQuant: false)
        XCTAssertEqual(plain.bitsPerParameter, 4.5, accuracy: 1e-12)
    }
}
