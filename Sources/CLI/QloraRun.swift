import Foundation
import Distributed

/// The whole of `qlora-run` (Sources/qlora-run/main.swift only calls this): join the MPI job when
/// under a launcher, parse, dispatch, and map every outcome to an exit status (ExitCode.swift).
public enum QloraRun {
    /// Runs the command line `arguments` (after the program name) and returns the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        let console = Console()
        // Under an MPI launcher: this process is one rank of the job (Distributed/World.swift).
        let world: any Collective
        do {
            world = try World.start()
        } catch {
            console.error(error.localizedDescription)
            return ExitCode.invalidInput.rawValue
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
        return code.rawValue
    }
}
