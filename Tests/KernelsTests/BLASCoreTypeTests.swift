import XCTest
import Kernels

/// When qlora-run re-executes itself with OPENBLAS_CORETYPE (Kernels/BLASCoreType.swift).
final class BLASCoreTypeTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    func testAGenericFallbackOnAModernCPUIsCorrected() {
        XCTAssertEqual(BLASCoreType.correction(environment: [:], current: "Prescott", flags: avx512), "SkylakeX")
        XCTAssertEqual(BLASCoreType.correction(environment: [:], current: "Prescott", flags: avx512.union(["avx512_bf16"])), "Cooperlake")
        XCTAssertEqual(BLASCoreType.correction(environment: [:], current: "Nehalem", flags: ["avx2", "fma"]), "Haswell")
        // Zen 4/5 under OpenBLAS 0.3.21: AVX2 kernels on an AVX-512 CPU.
        XCTAssertEqual(BLASCoreType.correction(environment: [:], current: "Haswell", flags: avx512.union(["avx512_bf16"])), "Cooperlake")
        XCTAssertEqual(BLASCoreType.correction(environment: [:], current: "Zen", flags: avx512), "SkylakeX")
    }

    func testNoCorrectionWhenDetectedChosenOrImpossible() {
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "SkylakeX", flags: avx512), "recognised CPU")
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "Zen", flags: ["avx2", "fma"]), "recognised CPU")
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "Haswell", flags: ["avx2", "fma"]), "AVX2 CPU, AVX2 kernels")
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "Cooperlake", flags: avx512.union(["avx512_bf16"])), "recognised CPU")
        XCTAssertNil(BLASCoreType.correction(environment: ["OPENBLAS_CORETYPE": "Prescott"], current: "Prescott", flags: avx512), "the user's choice")
        XCTAssertNil(BLASCoreType.correction(environment: [BLASCoreType.marker: "Prescott"], current: "Prescott", flags: avx512), "already re-executed once")
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "Prescott", flags: ["sse3", "avx"]), "no AVX2: nothing better")
        XCTAssertNil(BLASCoreType.correction(environment: [:], current: "Prescott", flags: ["avx512f", "avx2"]), "AVX-512 subset without FMA")
    }
}
