import XCTest
@testable import Kernels

final class ScratchPoolTests: XCTestCase {
    /// A returned buffer is handed out again (best fit), nested and concurrent users get distinct
    /// buffers, and the pool keeps at most `maximumKept` buffers, dropping the smallest.
    func testReusesBestFitKeepsDistinctBuffersAndStaysBounded() {
        ScratchPool.release()
        let first = ScratchPool.withBuffer(1000) { p -> UnsafeMutablePointer<Float> in p.initialize(repeating: 1, count: 1000); return p }
        XCTAssertEqual(ScratchPool.keptBuffers.count, 1)
        XCTAssertEqual(ScratchPool.withBuffer(800) { $0 }, first, "a large-enough kept buffer is reused")
        ScratchPool.withBuffer(1000) { outer in
            ScratchPool.withBuffer(1000) { inner in XCTAssertNotEqual(outer, inner, "nested users need distinct buffers") }
        }
        XCTAssertEqual(ScratchPool.keptBuffers.count, 2)
        XCTAssertNotEqual(ScratchPool.withBuffer(5000) { $0 }, first, "too small to reuse")
        // 20 users at once: 20 buffers, of which the 16 largest are kept.
        func nest(_ depth: Int) { if depth < 20 { ScratchPool.withBuffer(100 + depth) { _ in nest(depth + 1) } } }
        ScratchPool.release()
        nest(0)
        XCTAssertEqual(ScratchPool.keptBuffers.count, ScratchPool.maximumKept)
        XCTAssertEqual(ScratchPool.keptBuffers.floats, (104..<120).reduce(0, +))
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            ScratchPool.withBuffer(64) { p in
                p.initialize(repeating: Float(i), count: 64)
                usleep(1000)
                XCTAssertTrue((0..<64).allSatisfy { p[$0] == Float(i) }, "another thread wrote into this buffer")
            }
        }
        ScratchPool.release()
        XCTAssertEqual(ScratchPool.keptBuffers.count, 0)
    }
}
