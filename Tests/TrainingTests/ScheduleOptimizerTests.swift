import XCTest
import TestSupport

@testable import Training

final class ScheduleTests: XCTestCase {
    /// Every kit's golden/schedules.json; each kit names its own base rates and step counts
    /// (shared: lr 5e-4 over 5 steps, 1e-3 with warmup 2 of 10).
    func testSchedulesMatchTransformers() throws {
        for kit in try Reference.kits() {
            let g = try JSONSerialization.jsonObject(with: Data(contentsOf: kit.file("golden/schedules.json"))) as! [String: Any]
            let a = g["a_reference_cosine"] as! [String: Any]
            let lr = a["lr"] as! Double, total = a["total"] as! Int
            if kit.isShared { XCTAssertEqual([lr, Double(total)], [5e-4, 5], "\(kit)") }
            let aValues = a["values"] as! [Double]
            XCTAssertEqual(aValues.count, total + 1, "\(kit)")
            for (step, want) in aValues.enumerated() {
                let got = LearningRateSchedule.cosineFloor.learningRate(base: lr, step: step, totalSteps: total)
                XCTAssertEqual(got, want, accuracy: abs(want) * 1e-15, "cosine_floor step \(step) \(kit)")
            }
            for (key, make) in [("b_hf_cosine_with_warmup", LearningRateSchedule.cosine(warmupSteps:)),
                                ("c_hf_linear_with_warmup", LearningRateSchedule.linear(warmupSteps:))] {
                let spec = g[key] as! [String: Any]
                let base = spec["base_lr"] as! Double, warmup = spec["num_warmup_steps"] as! Int, steps = spec["num_training_steps"] as! Int
                if kit.isShared { XCTAssertEqual([base, Double(warmup), Double(steps)], [1e-3, 2, 10], "\(kit)") }
                let values = spec["lr_used_at_optimizer_step_1_to_10"] as! [Double]
                XCTAssertEqual(values.count, steps, "\(kit)")
                let schedule = make(warmup)
                for (i, want) in values.enumerated() {
                    let got = schedule.learningRate(base: base, step: i + 1, totalSteps: steps)
                    XCTAssertEqual(got, want, accuracy: abs(want) * 1e-15, "\(key) step \(i + 1) \(kit)")
                }
            }
        }
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: 1e-3, step: 7, totalSteps: 10), 1e-3)
    }

    func testUnknownScheduleNamed() {
        XCTAssertThrowsError(try LearningRateSchedule(name: "cosin")) { error in
            XCTAssertEqual(error.localizedDescription, "unknown schedule \"cosin\"; use constant, cosine, linear or cosine_floor")
        }
    }
}

final class OptimizerTests: XCTestCase {
    /// One AdamW step by hand: with m=v=0, t=1 the update is −lr·g/(|g|+eps) after decay.
    func testAdamWFirstStepClosedForm() {
        let opt = AdamW(weightDecay: 0.01)
        var p: [Float] = [1, -2, 0.5]
        opt.beginStep(learningRate: 1e-3)
        opt.update(index: 0, value: &p, grad: [0.5, -0.25, 0])
        let d: Float = 1 - 1e-5
        XCTAssertEqual(p[0], 1 * d - 1e-3 * (0.5 / (0.5 + 1e-8)), accuracy: 1e-7)
        XCTAssertEqual(p[1], -2 * d + 1e-3 * (0.25 / (0.25 + 1e-8)), accuracy: 1e-7)
        XCTAssertEqual(p[2], 0.5 * d, accuracy: 0)
        XCTAssertEqual(opt.step, 1)
    }

    func testAdamWStateRoundTripContinuesIdentically() throws {
        let a = AdamW(), b = AdamW()
        var pa: [Float] = [0.1, 0.2, 0.3], pb = pa
        for s in 1...3 { a.beginStep(learningRate: 1e-2); a.update(index: 0, value: &pa, grad: [Float(s), -1, 0.5]) }
        try b.restore(stateBytes: a.stateBytes()); pb = pa
        a.beginStep(learningRate: 1e-2); a.update(index: 0, value: &pa, grad: [0.3, 0.3, 0.3])
        b.beginStep(learningRate: 1e-2); b.update(index: 0, value: &pb, grad: [0.3, 0.3, 0.3])
        XCTAssertEqual(pa.map(\.bitPattern), pb.map(\.bitPattern))
        XCTAssertThrowsError(try b.restore(stateBytes: [1, 2, 3]))
    }

    /// The checkpoint's optimizer.bin is written as it is serialised: the moment buffers go out
    /// as pieces of their own (never one buffer of the whole state), in the documented layout:
    /// tag, step, then per map (m, v) its count and each index's length and floats, little-endian.
    func testAdamWStateStreamsInPiecesInTheSameLayout() throws {
        let opt = AdamW()
        var p0: [Float] = [1, 2], p1: [Float] = [3]
        opt.beginStep(learningRate: 1e-2)
        opt.update(index: 0, value: &p0, grad: [0.5, -0.5]); opt.update(index: 1, value: &p1, grad: [1])
        var pieces: [[UInt8]] = []
        try opt.writeState { pieces.append(Array($0)) }
        func le(_ v: Int) -> [UInt8] { withUnsafeBytes(of: Int64(v).littleEndian) { Array($0) } }
        func fl(_ a: [Float]) -> [UInt8] { a.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } } }
        // after one step m = (1 − β1)·g, v = (1 − β2)·g², the coefficients computed in Double
        let b1 = Float(1.0 - 0.9), b2 = Float(1.0 - 0.999)
        let m0: [Float] = [b1 * 0.5, b1 * -0.5], m1: [Float] = [b1 * 1]
        let v0: [Float] = [b2 * 0.5 * 0.5, b2 * -0.5 * -0.5], v1: [Float] = [b2 * 1 * 1]
        let expected = le(5) + Array("adamw".utf8) + le(1)
            + le(2) + le(0) + le(2) + fl(m0) + le(1) + le(1) + fl(m1)
            + le(2) + le(0) + le(2) + fl(v0) + le(1) + le(1) + fl(v1)
        XCTAssertEqual(pieces.flatMap { $0 }, expected)
        XCTAssertEqual(opt.stateBytes(), expected)
        // header+count+index+length, m0, index+length, m1, count+index+length, v0, index+length, v1
        XCTAssertEqual(pieces.map(\.count), [45, 8, 16, 4, 24, 8, 16, 4])
        // a failing sink stops the write with its error
        struct Full: Error {}
        XCTAssertThrowsError(try opt.writeState { _ in throw Full() }) { XCTAssertTrue($0 is Full) }
    }

    func testSGDMomentum() {
        let opt = SGD(momentum: 0.9)
        var p: [Float] = [1]
        opt.beginStep(learningRate: 0.1); opt.update(index: 0, value: &p, grad: [1])   // buf 1 → p 0.9
        opt.beginStep(learningRate: 0.1); opt.update(index: 0, value: &p, grad: [1])   // buf 1.9 → p 0.71
        XCTAssertEqual(p[0], 0.71, accuracy: 1e-6)
    }

    func testGlobalNormClipping() {
        XCTAssertEqual(GradientClipping.globalNorm([[3], [4]]), 5)
        XCTAssertEqual(GradientClipping.coefficient(norm: 5, maxNorm: 1), 1 / (5 + 1e-6))
        XCTAssertEqual(GradientClipping.coefficient(norm: 0.5, maxNorm: 1), 1)
    }

    func testDynamicMapMatchesBitsAndBytes() throws {
        for kit in try Reference.kits() {
            let golden = try GoldenTensors(kit.file("golden/quant.safetensors")).floats("table.dynamic8")
            // Within 2 ulp: 22 of 256 entries differ in the last bits (the float32 linspace rounding of the
            // generating torch version is not reproduced exactly; the codebook's use is unaffected).
            XCTAssertEqual(golden.count, 256, "\(kit)")
            for (i, (mine, want)) in zip(AdamW8bit.signedMap.values, golden).enumerated() {
                XCTAssertEqual(mine, want, accuracy: 2 * want.ulp, "code \(i) \(kit)")
            }
        }
        XCTAssertEqual(AdamW8bit.unsignedMap.values.count, 256)
        XCTAssertEqual(AdamW8bit.unsignedMap.values.first, 0)
        XCTAssertEqual(AdamW8bit.unsignedMap.values.last, 1)
    }

    /// 8-bit Adam tracks fp32 AdamW closely on a 5000-element tensor (blocks of 256).
    func testAdamW8bitTracksAdamW() throws {
        let n = 5000
        var rng = RandomStreamShim(seed: 7)
        var p32 = (0..<n).map { _ in rng.normal() }, p8 = p32
        let a = AdamW(), q = AdamW8bit()
        for _ in 0..<5 {
            let g = (0..<n).map { _ in rng.normal() }
            a.beginStep(learningRate: 1e-3); a.update(index: 0, value: &p32, grad: g)
            q.beginStep(learningRate: 1e-3); q.update(index: 0, value: &p8, grad: g)
        }
        var maxDiff: Float = 0
        for i in 0..<n { maxDiff = max(maxDiff, abs(p32[i] - p8[i])) }
        XCTAssertLessThan(maxDiff, 2e-4)   // 5 steps move each weight by ≤ 5e-3
        XCTAssertGreaterThan(maxDiff, 0)   // really quantized
        let r = AdamW8bit(); try r.restore(stateBytes: q.stateBytes())
        XCTAssertEqual(r.stateBytes(), q.stateBytes())
    }
}

struct RandomStreamShim {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func normal() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let u = Double(state >> 11) / 9007199254740992.0
        return Float((u - 0.5) * 2)
    }
}
