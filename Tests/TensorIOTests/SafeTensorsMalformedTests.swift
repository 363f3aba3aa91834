import XCTest
import TensorIO

/// Every way a file can be malformed gives a clear error naming the file (and tensor), never a crash.
final class SafeTensorsMalformedTests: XCTestCase {
    /// A file with the given header text (unpadded) and `dataSize` zero bytes of data.
    func file(header: String, dataSize: Int = 0, lengthOverride: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var n = (lengthOverride ?? UInt64(h.count)).littleEndian
        return withUnsafeBytes(of: &n) { Array($0) } + h + [UInt8](repeating: 0, count: dataSize)
    }

    func assertError(_ bytes: [UInt8], _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes, name: "bad.safetensors"), line: line) { error in
            XCTAssertEqual((error as? LocalizedError)?.errorDescription, expected, line: line)
        }
    }

    func testTooSmall() {
        assertError([1, 2, 3], "bad.safetensors: not a safetensors file: 3 bytes, shorter than the 8-byte header length")
    }

    func testHeaderPastEnd() {
        assertError(file(header: "{}", lengthOverride: 50),
                    "bad.safetensors: header length 50 runs past the end of the 10-byte file; the file is truncated or corrupt")
    }

    func testAbsurdHeaderSize() {
        assertError(file(header: "{}", lengthOverride: 0xFFFF_FFFF_FFFF_FFF0),
                    "bad.safetensors: header length 18446744073709551600 exceeds the 100000000-byte limit; the file is corrupt or not safetensors")
    }

    func testInvalidJSON() {
        assertError(file(header: "{\"a\": {\"dtype\": \"F32\",}}"), "bad.safetensors: header is not valid JSON: expected a string key at byte 22")
        assertError(file(header: "[1]"), "bad.safetensors: header is not valid JSON: the header does not start with '{'")
        assertError(file(header: String(repeating: "{\"a\":", count: 300)), "bad.safetensors: header is not valid JSON: nesting deeper than 128 at byte 640")
        assertError(file(header: "{\"a\": \"\u{1}\"}"), "bad.safetensors: header is not valid JSON: control character in string at byte 7")
    }

    func testUnknownDType() {
        assertError(file(header: #"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, dataSize: 2),
                    "bad.safetensors: tensor 'w': unsupported dtype \"F8_E4M3\" (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)")
    }

    func testShapeSizeMismatch() {
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, dataSize: 20),
                    "bad.safetensors: tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets span 20")
        // Overflowing shape products are caught, not trapped.
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, dataSize: 4),
                    "bad.safetensors: tensor 'w': shape [4611686018427387904, 4] of F32 needs 9223372036854775807 bytes but data_offsets span 4")
    }

    func testOffsetsOutOfRange() {
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataSize: 4),
                    "bad.safetensors: tensor 'w': data_offsets [0, 8] are outside the 4-byte data region")
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, dataSize: 8),
                    "bad.safetensors: tensor 'w': data_offsets [8, 4] are outside the 8-byte data region")
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[99999999999999999999999,4]}}"#, dataSize: 4),
                    "bad.safetensors: tensor 'w': invalid header entry: \"data_offsets\" must be [begin, end] non-negative integers")
    }

    func testOverlapGapAndTrailingBytes() {
        assertError(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8),
                    "bad.safetensors: tensor 'b': data overlaps tensor 'a'")
        assertError(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, dataSize: 12),
                    "bad.safetensors: tensor 'b': data starts at 8 but the previous tensor ends at 4 (unused bytes between tensors)")
        assertError(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataSize: 12),
                    "bad.safetensors: tensors cover 4 bytes but the data region has 12 (unused trailing bytes)")
    }

    func testStructuralProblems() {
        assertError(file(header: #"{"__metadata__":{"format":1}}"#),
                    "bad.safetensors: invalid header: __metadata__ value for 'format' is a number, expected a string")
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[1]}}"#, dataSize: 4),
                    "bad.safetensors: tensor 'w': invalid header entry: missing \"data_offsets\"")
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataSize: 4),
                    "bad.safetensors: tensor 'w': invalid header entry: \"shape\" must hold non-negative integers")
        assertError(file(header: #"{"w":[1]}"#),
                    "bad.safetensors: tensor 'w': invalid header entry: entry is an array, expected an object")
        assertError(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8),
                    "bad.safetensors: tensor 'w': invalid header entry: the name appears twice")
    }

    func testMissingFileAndTruncatedRealFile() throws {
        XCTAssertThrowsError(try SafeTensorsFile(url: URL(fileURLWithPath: "/nonexistent/x.safetensors"))) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription, "/nonexistent/x.safetensors: cannot open safetensors file: No such file or directory")
        }
        // Truncating a valid file anywhere never crashes.
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        w.add("a", floats: [1, 2, 3], shape: [3]); w.add("b", dtype: .u8, shape: [5], bytes: [1, 2, 3, 4, 5])
        let good = try w.serialized()
        XCTAssertNoThrow(try SafeTensorsFile(bytes: good))
        for cut in 0..<good.count {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: Array(good[0..<cut])), "cut at \(cut)")
        }
    }
}
