import XCTest
import Foundation
import TestSupport
import Model
import Distributed
@testable import Training

/// Ranks as threads of one process: each collective waits for every rank, combines the buffers in
/// rank order and hands every rank the same result, as an MPI all-reduce does. It lets the data-parallel
/// rule be tested without mpirun (MPITrainingTests runs the real thing).
final class ThreadRanks: @unchecked Sendable {  // state under `condition`
    let size: Int
    private let condition = NSCondition()
    private var deposits: [[Double]?]
    private var result: [Double] = []
    private var generation = 0, arrived = 0, collected = 0
    init(size: Int) { self.size = size; deposits = Array(repeating: nil, count: size) }

    func exchange(_ values: [Double], rank: Int, combine: ([[Double]]) -> [Double]) -> [Double] {
        condition.lock(); defer { condition.unlock() }
        while collected > 0 { condition.wait() }  // the previous round is still being picked up
        let round = generation
        deposits[rank] = values; arrived += 1
        if arrived == size {
            result = combine(deposits.map { $0! }); generation += 1; arrived = 0; collected = size
            condition.broadcast()
        } else {
            while generation == round { condition.wait() }
        }
        let out = result
        collected -= 1
        if collected == 0 { deposits = Array(repeating: nil, count: size); condition.broadcast() }
        return out
    }

    final class Rank: Collective, @unchecked Sendable {
        let ranks: ThreadRanks; let rank: Int
        init(_ ranks: ThreadRanks, _ rank: Int) { self.ranks = ranks; self.rank = rank }
        var size: Int { ranks.size }
        static func sum(_ all: [[Double]]) -> [Double] { all.dropFirst().reduce(all[0]) { zip($0, $1).map { $0 + $1 } } }
        func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
            // Floats summed as floats, in rank order, like MPI_SUM on MPI_FLOAT.
            let out = ranks.exchange(values.map { Double($0) }, rank: rank) { all in
                all.dropFirst().reduce(all[0].map { Double(Float($0)) }) { zip($0, $1).map { Double(Float($0) + Float($1)) } }
            }
            for i in values.indices { values[i] = Float(out[i]) }
        }
        func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
            let out = ranks.exchange(Array(values), rank: rank, combine: Self.sum)
            for i in values.indices { values[i] = out[i] }
        }
        func maximum(_ values: UnsafeMutableBufferPointer<Double>) throws {
            let out = ranks.exchange(Array(values), rank: rank) { all in all.dropFirst().reduce(all[0]) { zip($0, $1).map { max($0, $1) } } }
            for i in values.indices { values[i] = out[i] }
        }
        func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
            let out = ranks.exchange(rank == root ? bytes.map(Double.init) : [], rank: rank) { all in all[root] }
            return out.map { UInt8($0) }
        }
    }
}

final class ResultBox<T>: @unchecked Sendable {  // guarded by the caller's lock
    var results: [Result<T, Error>?]
    init(_ n: Int) { results = Array(repeating: nil, count: n) }
}

final class DataParallelTests: XCTestCase {
    /// ResumeTests' model: tiny Llama, rank-4 LoRA on q/o/down.
    static func makeModel() throws -> LlamaModel {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        var o = LoRAOptions(); o.rank = 4; o.targets = .names(["q_proj", "o_proj", "down_proj"])
        try LoRAAttacher.attach(to: model, options: o, seed: 5)
        return model
    }

    /// Runs `body(rank)` on `size` threads at once and returns their results in rank order.
    func onRanks<T>(_ size: Int, _ body: @escaping @Sendable (any Collective) throws -> T) throws -> [T] {
        let ranks = ThreadRanks(size: size)
        let box = ResultBox<T>(size), lock = NSLock()
        let threads = (0..<size).map { r in
            Thread {
                let result = Result { try body(ThreadRanks.Rank(ranks, r)) }
                lock.lock(); box.results[r] = result; lock.unlock()
            }
        }
        threads.forEach { $0.stackSize = 8 << 20; $0.start() }
        while (lock.withLock { box.results.contains { $0 == nil } }) { Thread.sleep(forTimeInterval: 0.005) }
        return try box.results.map { try $0!.get() }
    }

    /// Two ranks with grad_accum 1 take the steps of one process with grad_accum 2: same step count,
    /// the first step's loss equal to rounding (the loss sum is split in two partial sums), the later
    /// ones within what float32 gradient sums in another order carry through the Adam steps; the ranks
    /// end with bit-identical adapters.
    func testTwoRanksTakeTheStepsOfOneProcessWithTwiceTheAccumulation() throws {
        let data = ResumeTests.makeData()
        var single = ResumeTests.options(); single.checkpointEvery = 0
        var perRankOptions = single; perRankOptions.gradAccum = 1
        let perRank = perRankOptions
        let w = try makeTemporaryDirectory("dp-single"); defer { try? FileManager.default.removeItem(at: w) }
        let reference = try Self.makeModel()
        let expected = try Trainer(single).train(model: reference, dataset: data, workDirectory: w)
        let results = try onRanks(2) { collective -> (TrainingResult, Data) in
            let dir = try makeTemporaryDirectory("dp-rank\(collective.rank)"); defer { try? FileManager.default.removeItem(at: dir) }
            let model = try Self.makeModel()
            let trainer = Trainer(perRank, collective: collective)
            let result = try trainer.train(model: model, dataset: data, workDirectory: dir)
            return (result, try ResumeTests.adapterBytes(model))
        }
        XCTAssertEqual(Trainer(perRank, collective: ThreadRanks.Rank(ThreadRanks(size: 2), 0)).totalSteps(data), 6)
        for (result, _) in results {
            XCTAssertEqual(result.metrics.map(\.step), expected.metrics.map(\.step))
            XCTAssertEqual(result.metrics.map(\.supervisedTokens), expected.metrics.map(\.supervisedTokens))
            XCTAssertEqual(result.metrics.map(\.tokens), expected.metrics.map(\.tokens))
            assertClose([result.metrics[0].loss], [expected.metrics[0].loss], rtol: 1e-12, atol: 0, "step 1 loss")
            assertClose(result.metrics.map(\.loss), expected.metrics.map(\.loss), rtol: 1e-5, atol: 0, "per-step loss")
            assertClose(result.metrics.map(\.gradNorm), expected.metrics.map(\.gradNorm), rtol: 1e-4, atol: 0, "grad norm")
        }
        XCTAssertEqual(results[0].1, results[1].1, "the ranks' adapters are the same bytes")
        XCTAssertEqual(results[0].0.metricsJSONL, results[1].0.metricsJSONL)
    }

    /// Resume in a job: rank 0's checkpoint reaches rank 1 (whose own work directory is empty), and
    /// the job ends with the bytes of one never interrupted.
    func testRankZerosCheckpointResumesEveryRank() throws {
        let data = ResumeTests.makeData()
        var rankOptions = ResumeTests.options(); rankOptions.gradAccum = 1
        let options = rankOptions
        let straight = try onRanks(2) { c -> Data in
            let dir = try makeTemporaryDirectory("dp-straight\(c.rank)"); defer { try? FileManager.default.removeItem(at: dir) }
            let model = try Self.makeModel()
            _ = try Trainer(options, collective: c).train(model: model, dataset: data, workDirectory: dir)
            return try ResumeTests.adapterBytes(model)
        }
        let dirs = [try makeTemporaryDirectory("dp-r0"), try makeTemporaryDirectory("dp-r1")]
        defer { dirs.forEach { try? FileManager.default.removeItem(at: $0) } }
        // Rank 0 alone sees the interrupt at its third check: every rank stops at the same step.
        let stopped = try onRanks(2) { c -> String in
            let model = try Self.makeModel()
            var calls = 0
            do {
                _ = try Trainer(options, collective: c).train(model: model, dataset: data, workDirectory: dirs[c.rank],
                                                            isInterrupted: { calls += 1; return c.rank == 0 && calls > 2 })
                return "finished"
            } catch TrainingError.interrupted(let step) { return "interrupted at \(step)" }
        }
        XCTAssertEqual(stopped, ["interrupted at 2", "interrupted at 2"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dirs[1].path).filter { $0.hasPrefix("checkpoint-") }, [],
                       "only rank 0 writes checkpoints")
        let resumed = try onRanks(2) { c -> (Int?, Data) in
            let model = try Self.makeModel()
            let r = try Trainer(options, collective: c).train(model: model, dataset: data, workDirectory: dirs[c.rank])
            return (r.resumedFromStep, try ResumeTests.adapterBytes(model))
        }
        XCTAssertEqual(resumed.map(\.0), [2, 2])
        XCTAssertEqual(resumed.map(\.1), straight)
    }

    func testCheckpointPackingRoundTripsAndRefusesDamage() throws {
        let dir = try makeTemporaryDirectory("dp-pack"); defer { try? FileManager.default.removeItem(at: dir) }
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("state.json"))
        try Data().write(to: dir.appendingPathComponent("empty.bin"))
        let bytes = try DataParallel.pack(dir, step: 7)
        XCTAssertEqual(bytes.count, 8 + 4 + (4 + 9 + 8 + 0) + (4 + 10 + 8 + 3))
        let (step, files) = try DataParallel.unpack(bytes)
        XCTAssertEqual(step, 7)
        XCTAssertEqual(files.map(\.0), ["empty.bin", "state.json"])
        XCTAssertEqual(files.map(\.1), [[], [1, 2, 3]])
        XCTAssertThrowsError(try DataParallel.unpack(Array(bytes.dropLast()))) { error in
            XCTAssertEqual(error.localizedDescription, "the checkpoint rank 0 sent could not be read: truncated at byte 55")
        }
    }

    func testFingerprintSeesOneBit() throws {
        let model = try Self.makeModel()
        let adapters = Trainer.parameters(model)
        let before = DataParallel.fingerprint(adapters)
        adapters[1].b[3] = Float(bitPattern: adapters[1].b[3].bitPattern ^ 1)
        XCTAssertNotEqual(DataParallel.fingerprint(adapters), before)
    }

    func testLauncherEnvironment() {
        XCTAssertNil(World.launcher([:]))
        XCTAssertNil(World.launcher(["OMPI_COMM_WORLD_SIZE": "1"]), "one rank needs no MPI")
        XCTAssertEqual(World.launcher(["OMPI_COMM_WORLD_SIZE": "4"])?.variable, "OMPI_COMM_WORLD_SIZE")
        XCTAssertEqual(World.launcher(["OMPI_COMM_WORLD_SIZE": "4"])?.size, 4)
        XCTAssertEqual(World.launcher(["PMI_SIZE": "2"])?.size, 2)
        XCTAssertEqual(World.launcher(["PMIX_RANK": "0"])?.variable, "PMIX_RANK")
        XCTAssertEqual(World.rank(["OMPI_COMM_WORLD_RANK": "3"]), 3)
        XCTAssertEqual(World.rank(["PMI_RANK": "1"]), 1)
        XCTAssertEqual(World.rank([:]), 0)
        XCTAssertTrue(try SingleProcess().allEqual(42))
        XCTAssertFalse(try SingleProcess().any(false))
    }
}
