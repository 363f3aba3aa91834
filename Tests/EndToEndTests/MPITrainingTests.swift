import Foundation
import XCTest
import TestSupport
import TensorIO

/// Data-parallel training over MPI (issue 17), through the CLI under `mpirun -np 2 --oversubscribe`
/// on loopback: two ranks with batch b equal one process with grad_accum 2 (same global batch), the
/// ranks hold bit-identical adapters, only rank 0 prints and publishes, and a job killed with -9 as a
/// whole resumes from rank 0's checkpoint to the same bytes as a job never killed.
/// Skipped when mpirun is absent (`.ci/run` installs Open MPI and sets QLORA_REQUIRE_MPI=1, which
/// turns the skip into a failure).
final class MPITrainingTests: XCTestCase {
    var project: URL!
    override func setUpWithError() throws { project = try CLI.projectCopy("qlora-e2e-mpi") }
    override func tearDownWithError() throws {
        if let project { try? FileManager.default.removeItem(at: project) }
    }

    static var mpirun: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func launcher() throws -> [String] {
        guard let mpirun = Self.mpirun else {
            if ProcessInfo.processInfo.environment["QLORA_REQUIRE_MPI"] == "1" {
                XCTFail("mpirun not found and QLORA_REQUIRE_MPI=1: install openmpi-bin libopenmpi-dev"); throw XCTSkip("failed")
            }
            throw XCTSkip("mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev); skipping the MPI tests")
        }
        // --timeout: a job that hangs (ranks waiting on each other) fails the test instead of CI.
        return [mpirun, "-np", "2", "--oversubscribe", "--timeout", "300"]
    }

    /// Open MPI refuses root without these (CI runs as root); they change nothing else.
    let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,tcp",
                       "OMPI_MCA_btl_tcp_if_include": "lo", "OMPI_MCA_oob_tcp_if_include": "lo"]

    func arguments(cache: String, out: String, _ extra: [String] = []) -> [String] {
        ["run", "pipelines/toy.yaml", "--cache", project.appendingPathComponent(cache).path, "--only", "save",
         "--set", "stages.save.to=\(project.appendingPathComponent("out-" + out).path)", "--set", "stages.train.epochs=2"] + extra
    }

    static func losses(_ artifact: URL) throws -> [Double] {
        let text = try String(contentsOf: artifact.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        // Step rows (validation rows have no "lr").
        return try text.split(separator: "\n").filter { $0.contains("\"lr\":") }.map { line in
            let field = try XCTUnwrap(line.components(separatedBy: "\"loss\":").last?.split(separator: ",").first)
            return try XCTUnwrap(Double(field))
        }
    }

    static func adapter(_ directory: URL) throws -> [String: [Float]] {
        let file = try SafeTensorsFile(url: directory.appendingPathComponent("adapter_model.safetensors"))
        var out: [String: [Float]] = [:]
        for name in file.names { out[name] = try file.floats(name) }
        return out
    }

    func testTwoRanksEqualOneProcessWithTwiceTheAccumulation() throws {
        let mpi = try launcher()
        let single = try CLI.run(arguments(cache: "single", out: "single", ["--set", "stages.train.grad_accum=2"]), in: project)
        XCTAssertEqual(single.status, 0, single.stderr)
        let job = try CLI.run(arguments(cache: "mpi", out: "mpi"), in: project, signal: SIGKILL, when: nil, environment: environment, launcher: mpi)
        XCTAssertEqual(job.status, 0, job.stdout + job.stderr)
        // Rank 0's log is the job's log: each stage line once, the split and the all-reduce cost said.
        XCTAssertEqual(job.stdout.components(separatedBy: "[4/5] train: running").count, 2, job.stdout)
        XCTAssertTrue(job.stdout.contains("  train: data-parallel over 2 ranks (MPI): each step takes grad_accum × 2 = 2 micro-batches of 4, "
                                          + "rank 0 computes micro-batches 0, 2, …\n"), job.stdout)
        XCTAssertTrue(job.stdout.contains("  train: all-reduce of the gradients: "), job.stdout)
        XCTAssertTrue(job.stdout.contains(" ms per step ("), job.stdout)
        XCTAssertTrue(job.stdout.contains("  train: 72 steps in "), job.stdout)

        // Same global batch: 72 steps with losses equal to float tolerance. The gradients are summed in
        // another order (rank partial sums, then the all-reduce), a relative change of order 1e-7 per step
        // that the 72 Adam steps carry into the weights; measured 5.7e-7 (losses) and 5.5e-6 (weights).
        let singleTrain = try CLI.artifact(of: "train", in: single.stdout, directory: project)
        let mpiTrain = try CLI.artifact(of: "train", in: job.stdout, directory: project)
        let expected = try Self.losses(singleTrain), actual = try Self.losses(mpiTrain)
        XCTAssertEqual(actual.count, 72)
        assertClose(actual, expected, rtol: 2e-5, atol: 0, "per-step loss, 2 ranks vs grad_accum 2")
        assertClose([actual[0]], [expected[0]], rtol: 1e-6, atol: 0, "the first step, before any update")
        let a = try Self.adapter(project.appendingPathComponent("out-mpi")), b = try Self.adapter(project.appendingPathComponent("out-single"))
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for name in b.keys.sorted() {
            let scale = Double(b[name]!.map { abs($0) }.max() ?? 1)
            assertClose(a[name]!, b[name]!, rtol: 0, atol: 1e-4 * scale, name)
        }
        // Rank 1 kept its own cache beside rank 0's, with the same adapter bit for bit, and published nothing.
        let rank1Train = project.appendingPathComponent("mpi.rank1/artifacts").appendingPathComponent(mpiTrain.lastPathComponent)
        XCTAssertEqual(try Data(contentsOf: rank1Train.appendingPathComponent("adapter_model.safetensors")),
                       try Data(contentsOf: mpiTrain.appendingPathComponent("adapter_model.safetensors")))

        // Rank 0's cache lost, rank 1's kept: rank 1 trains again with rank 0 instead of leaving it waiting.
        try FileManager.default.removeItem(at: project.appendingPathComponent("mpi"))
        let rerun = try CLI.run(arguments(cache: "mpi", out: "mpi"), in: project, signal: SIGKILL, when: nil, environment: environment, launcher: mpi)
        XCTAssertEqual(rerun.status, 0, rerun.stdout + rerun.stderr)
        XCTAssertTrue(rerun.stdout.contains("[4/5] train: running — new\n"), rerun.stdout)
        XCTAssertEqual(try Data(contentsOf: project.appendingPathComponent("mpi.rank1/artifacts").appendingPathComponent(mpiTrain.lastPathComponent)
                                .appendingPathComponent("adapter_model.safetensors")),
                       try Data(contentsOf: mpiTrain.appendingPathComponent("adapter_model.safetensors")))

        // The rank count is part of the train key: one process on the job's cache re-runs train, saying why.
        let again = try CLI.run(arguments(cache: "mpi", out: "mpi"), in: project)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("[4/5] train: running — config: world_size 2 -> (unset)\n"), again.stdout)
    }

    func testAJobKilledWholeResumesFromRankZerosCheckpointToTheSameBytes() throws {
        let mpi = try launcher()
        let settings = ["--set", "stages.train.checkpoint_every=10", "--set", "stages.train.log_every=10", "--set", "stages.train.epochs=4"]
        let whole = try CLI.run(arguments(cache: "whole", out: "whole", settings), in: project, signal: SIGKILL, when: nil,
                                environment: environment, launcher: mpi)
        XCTAssertEqual(whole.status, 0, whole.stdout + whole.stderr)
        // kill -9 of mpirun and both ranks once step 60 is logged (checkpoint 50 exists, maybe 60 or a later one).
        let killed = try CLI.run(arguments(cache: "killed", out: "killed", settings), in: project, signal: SIGKILL,
                                 when: { $0.contains("step 60/144") }, environment: environment, launcher: mpi, killingTree: true)
        XCTAssertNotEqual(killed.status, 0, killed.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: project.appendingPathComponent("out-killed").path), "nothing published by a killed job")
        let resumed = try CLI.run(arguments(cache: "killed", out: "killed", settings), in: project, signal: SIGKILL, when: nil,
                                  environment: environment, launcher: mpi)
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        let line = try XCTUnwrap(resumed.stdout.split(separator: "\n").first { $0.contains("train: resuming from checkpoint at step ") }, resumed.stdout)
        let step = try XCTUnwrap(Int(line.components(separatedBy: "at step ").last?.split(separator: " ").first ?? ""))
        XCTAssertTrue(step >= 50 && step < 144 && step % 10 == 0, String(line))  // the kill lands a few steps after step 60's line
        // Same N, same reductions: the resumed job's adapter and metrics are the uninterrupted job's bytes.
        XCTAssertEqual(try Data(contentsOf: project.appendingPathComponent("out-killed/adapter_model.safetensors")),
                       try Data(contentsOf: project.appendingPathComponent("out-whole/adapter_model.safetensors")))
        XCTAssertEqual(try Data(contentsOf: CLI.artifact(of: "train", in: resumed.stdout, directory: project).appendingPathComponent("metrics.jsonl")),
                       try Data(contentsOf: CLI.artifact(of: "train", in: whole.stdout, directory: project).appendingPathComponent("metrics.jsonl")))
    }

    /// Under a launcher with no loadable MPI library: a named error and exit 2, before anything runs.
    func testALauncherWithoutALoadableLibraryIsANamedError() throws {
        let result = try CLI.run(arguments(cache: "none", out: "none"), in: project,
                                 environment: ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0", "QLORA_MPI_LIBRARY": "/nonexistent/libmpi.so"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, "")
        XCTAssertEqual(result.stderr, "error: launched by an MPI launcher (OMPI_COMM_WORLD_SIZE is set), but no MPI library could be loaded "
                       + "(tried /nonexistent/libmpi.so: /nonexistent/libmpi.so: cannot open shared object file: No such file or directory); "
                       + "install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) or set QLORA_MPI_LIBRARY to the libmpi.so to use\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: project.appendingPathComponent("none").path), "no cache made")
    }
}
