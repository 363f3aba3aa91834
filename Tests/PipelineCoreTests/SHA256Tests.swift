import XCTest
@testable import PipelineCore

/// FIPS 180-4 example vectors (NIST "SHA256.pdf" / CAVP short messages).
final class SHA256Tests: XCTestCase {
    func testEmpty() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testABC() {
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testTwoBlockMessage448Bits() {
        let m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        XCTAssertEqual(SHA256.hex(Data(m.utf8)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testOneMillionA_streamedInOddChunks() {
        var hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 997)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, chunk.count)
            hasher.update(chunk[0..<n])
            left -= n
        }
        XCTAssertEqual(hasher.finalize().hexString, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStreamingSplitsAgreeWithOneShot() {
        let bytes = [UInt8]((0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let whole = SHA256.hash(bytes)
        for split in [0, 1, 55, 56, 63, 64, 65, 128, 299] {
            var h = SHA256()
            h.update(bytes[0..<split]); h.update(bytes[split...])
            XCTAssertEqual(h.finalize(), whole, "split at \(split)")
        }
        // Lengths around the padding boundary (55/56/64 bytes) against known digests.
        XCTAssertEqual(SHA256.hex(Data(repeating: 0x61, count: 55)), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        XCTAssertEqual(SHA256.hex(Data(repeating: 0x61, count: 56)), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        XCTAssertEqual(SHA256.hex(Data(repeating: 0x61, count: 64)), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }
}

/// The SHA-NI kernel (Sources/CSHA256) against the portable Swift compressor, and the FIPS vectors
/// through the portable path, so both implementations are checked on machines that have SHA-NI.
final class SHA256HardwareTests: XCTestCase {
    func testPortablePathMatchesFIPSVectors() {
        var h = SHA256(portable: true)
        h.update(Data("abc".utf8))
        XCTAssertEqual(h.finalize().hexString, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var two = SHA256(portable: true)
        two.update(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        XCTAssertEqual(two.finalize().hexString, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testHardwareAgreesWithPortableOnEveryLengthUpTo300AndLargeInputs() throws {
        try XCTSkipUnless(SHA256.usesHardware, "this CPU has no SHA extensions (sha_ni): only the portable path exists here")
        var state: UInt64 = 0x9e3779b97f4a7c15
        func next() -> UInt8 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 56) }
        let bytes = (0..<(1 << 20) + 17).map { _ in next() }
        for length in Array(0...300) + [4096, 65_537, bytes.count] {
            var hardware = SHA256(), portable = SHA256(portable: true)
            hardware.update(bytes[0..<length]); portable.update(bytes[0..<length])
            XCTAssertEqual(hardware.finalize(), portable.finalize(), "length \(length)")
        }
    }
}
