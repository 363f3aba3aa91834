import XCTest
import Quant

/// Opt-in (QLORA_BENCH=1): prints the quantization benchmark. Never asserts on timings.
final class QuantBenchmarkTests: XCTestCase {
    func testPrintBenchmark() throws {
        guard ProcessInfo.processInfo.environment["QLORA_BENCH"] == "1" else { throw XCTSkip("set QLORA_BENCH=1 to run the quantization benchmark") }
        for (k, v) in QuantBenchmark.run().sorted(by: { $0.key < $1.key }) { print("bench \(k) = \(String(format: "%.3f", v))") }
    }
}
