import XCTest
@testable import Kernels

final class AttentionTests: XCTestCase {
    struct Shape { var B, T, NH, KVH, HS: Int; var masked: Bool }

    /// Key mask with a fully masked prefix in batch 0 (query 0 and 1 see no key) and a padded tail in batch 1.
    func mask(_ s: Shape) -> [Float]? {
        guard s.masked else { return nil }
        var m = [Float](repeating: 1, count: s.B * s.T)
        for t in 0..<min(2, s.T) { m[t] = 0 }
        if s.B > 1 { for t in (s.T * 2 / 3)..<s.T { m[s.T + t] = 0 } }
        return m
    }

    func run(_ s: Shape, naive: Bool, q: [Float], k: [Float], v: [Float], mask: [Float]?) -> (out: [Float], probs: [Float]) {
        var out = [Float](repeating: .nan, count: s.B * s.T * s.NH * s.HS)
        var probs = [Float](repeating: .nan, count: s.B * s.NH * s.T * s.T)
        let m = mask
        m.withOptionalPointer { mp in
            if naive {
                Attention.naiveForward(output: &out, probs: &probs, q: q, k: k, v: v, keyMask: mp, B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            } else {
                Attention.forward(output: &out, probs: &probs, q: q, k: k, v: v, keyMask: mp, B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            }
        }
        return (out, probs)
    }

    let shapes: [Shape] = [
        Shape(B: 2, T: 1, NH: 4, KVH: 1, HS: 8, masked: false),
        Shape(B: 1, T: 7, NH: 2, KVH: 2, HS: 5, masked: true),
        Shape(B: 2, T: 31, NH: 4, KVH: 2, HS: 16, masked: true),
        Shape(B: 2, T: 33, NH: 4, KVH: 4, HS: 8, masked: false),
        Shape(B: 2, T: 70, NH: 8, KVH: 2, HS: 16, masked: true),     // crosses a 64-row block
        Shape(B: 1, T: 130, NH: 4, KVH: 1, HS: 12, masked: false),
    ]

    func testForwardMatchesOracle() {
        for s in shapes {
            let q = randomArray(s.B * s.T * s.NH * s.HS, stream: "q"), k = randomArray(s.B * s.T * s.KVH * s.HS, stream: "k")
            let v = randomArray(k.count, stream: "v"), m = mask(s)
            let fast = run(s, naive: false, q: q, k: k, v: v, mask: m)
            let slow = run(s, naive: true, q: q, k: k, v: v, mask: m)
            XCTAssertLessThan(maxAbsDiff(fast.out, slow.out), 2e-5, "\(s)")
            XCTAssertLessThan(maxAbsDiff(fast.probs, slow.probs), 2e-6, "\(s)")
            XCTAssertFalse(fast.out.contains { $0.isNaN }, "\(s)")
            if s.masked {   // query 0 of batch 0 sees no key at all: zeros, not NaN
                for h in 0..<s.NH { for d in 0..<s.HS { XCTAssertEqual(fast.out[h * s.HS + d], 0) } }
            }
        }
    }

    func testSingleKeyCopiesValueAndProbsAreCausal() {
        // T = 2, one head: query 0 sees only key 0 -> output = v0, prob row (1, 0).
        let s = Shape(B: 1, T: 2, NH: 1, KVH: 1, HS: 2, masked: false)
        let r = run(s, naive: false, q: [1, 2, 3, 4], k: [0.5, 0.5, 1, -1], v: [7, 8, 9, 10], mask: nil)
        XCTAssertEqual(Array(r.out[0..<2]), [7, 8])
        XCTAssertEqual(Array(r.probs[0..<2]), [1, 0])
        // query 1: scores (3·0.5+4·0.5, 3−4)/√2 = (3.5, −1)/√2
        let a = exp(Double(3.5 / Float(2).squareRoot())), b = exp(Double(-1 / Float(2).squareRoot()))
        XCTAssertEqual(Double(r.probs[2]), a / (a + b), accuracy: 1e-6)
        XCTAssertEqual(Double(r.out[2]), (7 * a + 9 * b) / (a + b), accuracy: 1e-5)
    }

    func testBackwardMatchesOracle() {
        for s in shapes {
            let q = randomArray(s.B * s.T * s.NH * s.HS, stream: "q"), k = randomArray(s.B * s.T * s.KVH * s.HS, stream: "k")
            let v = randomArray(k.count, stream: "v"), m = mask(s), dO = randomArray(q.count, stream: "dO")
            let fwd = run(s, naive: false, q: q, k: k, v: v, mask: m)
            var dq = [Float](repeating: 0.5, count: q.count), dk = [Float](repeating: 0.5, count: k.count), dv = dk
            var dq0 = dq, dk0 = dk, dv0 = dv
            Attention.backward(gradQ: &dq, gradK: &dk, gradV: &dv, gradOutput: dO, probs: fwd.probs, q: q, k: k, v: v,
                               B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            Attention.naiveBackward(gradQ: &dq0, gradK: &dk0, gradV: &dv0, gradOutput: dO, probs: fwd.probs, q: q, k: k, v: v,
                                    B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            XCTAssertLessThan(maxAbsDiff(dq, dq0), 5e-5, "\(s)")
            XCTAssertLessThan(maxAbsDiff(dk, dk0), 5e-5, "\(s)")
            XCTAssertLessThan(maxAbsDiff(dv, dv0), 5e-5, "\(s)")
        }
    }

    /// Training keeps no probabilities: the forward's output is the same without them, and the
    /// backward recomputes each row block from q, k and the mask — the same bits as with the saved ones.
    func testRecomputedProbabilitiesGiveTheSameBitsAsSavedOnes() {
        for s in shapes {
            let q = randomArray(s.B * s.T * s.NH * s.HS, stream: "q"), k = randomArray(s.B * s.T * s.KVH * s.HS, stream: "k")
            let v = randomArray(k.count, stream: "v"), m = mask(s), dO = randomArray(q.count, stream: "dO")
            let saved = run(s, naive: false, q: q, k: k, v: v, mask: m)
            var out = [Float](repeating: .nan, count: q.count)
            m.withOptionalPointer { mp in
                Attention.forward(output: &out, probs: nil, q: q, k: k, v: v, keyMask: mp, B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            }
            XCTAssertEqual(out, saved.out, "\(s)")
            var dq = [Float](repeating: 0.5, count: q.count), dk = [Float](repeating: 0.5, count: k.count), dv = dk
            var dq0 = dq, dk0 = dk, dv0 = dv
            m.withOptionalPointer { mp in
                Attention.backward(gradQ: &dq, gradK: &dk, gradV: &dv, gradOutput: dO, probs: nil, q: q, k: k, v: v, keyMask: mp,
                                   B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            }
            Attention.backward(gradQ: &dq0, gradK: &dk0, gradV: &dv0, gradOutput: dO, probs: saved.probs, q: q, k: k, v: v,
                               B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            XCTAssertEqual(dq, dq0, "\(s)")
            XCTAssertEqual(dk, dk0, "\(s)")
            XCTAssertEqual(dv, dv0, "\(s)")
        }
    }

    func testGradientFiniteDifference() {
        // One small-T (loop path) and one T ≥ 32 (BLAS path) shape, both GQA and masked.
        for s in [Shape(B: 2, T: 5, NH: 4, KVH: 2, HS: 3, masked: true),
                  Shape(B: 1, T: 34, NH: 2, KVH: 1, HS: 3, masked: true)] {
            var q = randomArray(s.B * s.T * s.NH * s.HS, stream: "q", scale: 0.7)
            var k = randomArray(s.B * s.T * s.KVH * s.HS, stream: "k", scale: 0.7)
            var v = randomArray(k.count, stream: "v")
            let m = mask(s), R = randomArray(q.count, stream: "R")
            let fwd = run(s, naive: false, q: q, k: k, v: v, mask: m)
            let offset: Float = -0.125
            var dq = [Float](repeating: offset, count: q.count), dk = [Float](repeating: offset, count: k.count), dv = dk
            Attention.backward(gradQ: &dq, gradK: &dk, gradV: &dv, gradOutput: R, probs: fwd.probs, q: q, k: k, v: v,
                               B: s.B, T: s.T, NH: s.NH, KVH: s.KVH, HS: s.HS)
            let (q0, k0, v0) = (q, k, v)
            let nq = numericGradient(&q) { dot(run(s, naive: false, q: $0, k: k0, v: v0, mask: m).out, R) }
            let nk = numericGradient(&k) { dot(run(s, naive: false, q: q0, k: $0, v: v0, mask: m).out, R) }
            let nv = numericGradient(&v) { dot(run(s, naive: false, q: q0, k: k0, v: $0, mask: m).out, R) }
            XCTAssertLessThan(relativeError(dq.map { Double($0 - offset) }, nq), 1e-3, "\(s)")
            XCTAssertLessThan(relativeError(dk.map { Double($0 - offset) }, nk), 1e-3, "\(s)")
            XCTAssertLessThan(relativeError(dv.map { Double($0 - offset) }, nv), 1e-3, "\(s)")
        }
    }
}
