import Foundation
import Distributed
import Kernels

/// The whole of `qlora-run` (Sources/qlora-run/main.swift only calls this): join the MPI job when
/// under a launcher, parse, dispatch, and map every outcome to an exit status (ExitCode.swift).
public enum QloraRun {
    /// Runs the command line `arguments` (after the program name) and returns the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        // First of all: OpenBLAS kernels suited to this CPU (one newer than the library gets generic
        // ones); re-executes this program once when they are not (Kernels/BLASCoreType.swift).
        BLASCoreType.reexecuteIfMisdetected()
        let console = Console()
        var world: (any Collective)?
        let code: ExitCode
        do {
            // Under an MPI launcher: this process is one rank of the job (Distributed/World.swift).
            // A launcher whose MPI cannot be loaded is a problem of the environment: input.
            let started: any Collective
            do { started = try World.start() } catch { throw InputError(message: error.localizedDescription) }
            world = started
            let invocation = try ArgumentParser.parse(arguments)
            code = try Commands(console: console, world: started).run(invocation)
        } catch {
            console.error(error.localizedDescription)
            code = ExitCode(for: error)
        }
        // A failed rank aborts the job: the others would otherwise wait in a collective forever.
        (world as? MPICollective)?.finish(success: code == .ok, exitCode: code.rawValue)
        return code.rawValue
    }
}
