// qlora-run entry point: parse, dispatch, map every outcome to an exit code (Stages/ExitCode.swift).
import Foundation
import PipelineCore
import Stages
import Distributed
import Kernels

// First of all: OpenBLAS kernels suited to this CPU (a CPU newer than the library gets generic ones).
BLASCoreType.reexecuteIfMisdetected()

let console = Console()
let arguments = Array(CommandLine.arguments.dropFirst())
// Under an MPI launcher: this process is one rank of the job (Distributed/World.swift).
let world: any Collective
do {
    world = try World.start()
} catch {
    console.error(error.localizedDescription)
    exit(ExitCode.invalidInput.rawValue)
}
let code: ExitCode
do {
    let invocation = try ArgumentParser.parse(arguments)
    code = try Commands(console: console, world: world).run(invocation)
} catch let error as ArgumentError {
    console.error(error.localizedDescription)
    code = .invalidInput
} catch {
    console.error(error.localizedDescription)
    code = .stageFailed
}
// A failed rank aborts the job: the others would otherwise wait in a collective forever.
(world as? MPICollective)?.finish(success: code == .ok, exitCode: code.rawValue)
exit(code.rawValue)
