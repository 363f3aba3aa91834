import Foundation

/// Whether this process is one rank of an MPI job, read from what launchers put in the
/// environment: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), MPICH/Hydra and Slurm's PMI-2 (PMI_SIZE),
/// Slurm's or PRRTE's PMIx (PMIX_RANK, size known only after MPI_Init). Outside a launcher nothing is
/// loaded and training is single-process.
public enum World {
    /// The launcher's variable and its value when one is present, nil when not under a launcher
    /// (or under one with a single rank, which needs no MPI).
    public static func launcher(_ environment: [String: String]) -> (variable: String, size: Int?)? {
        for variable in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let text = environment[variable] {
                let size = Int(text)
                if size == 1 { return nil }
                return (variable, size)
            }
        }
        if environment["PMIX_RANK"] != nil { return ("PMIX_RANK", nil) }
        return nil
    }

    /// This process's rank as the launcher states it (0 outside a launcher): known before MPI is
    /// loaded, so the terminal output can already be rank 0's alone.
    public static func rank(_ environment: [String: String]) -> Int {
        for variable in ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"] {
            if let r = environment[variable].flatMap({ Int($0) }) { return r }
        }
        return 0
    }

    /// The collective for this process: MPI when launched with more than one rank, else one process.
    public static func start(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any Collective {
        guard let launcher = launcher(environment) else { return SingleProcess() }
        do {
            return try MPICollective(environment: environment)
        } catch let error as DistributedError {
            throw DistributedError.underLauncher(variable: launcher.variable, error)
        }
    }
}

public enum DistributedError: LocalizedError, Equatable {
    case noLibrary(tried: [String], reasons: [String])
    case missingSymbol(String, library: String)
    case callFailed(String, code: Int32)
    indirect case underLauncher(variable: String, DistributedError)
    /// Ranks' adapters differ after a step: they must never, so the run stops instead of training on.
    case ranksDiverged(step: Int)
    case checkpointTransfer(String)

    public var errorDescription: String? {
        switch self {
        case let .noLibrary(tried, reasons):
            return "no MPI library could be loaded (tried \(tried.joined(separator: ", ")): \(reasons.last ?? "not found")); "
                + "install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) or set QLORA_MPI_LIBRARY to the libmpi.so to use"
        case let .missingSymbol(name, library):
            return "\(library) has no \(name): it is not an MPI library qlora-run can use; set QLORA_MPI_LIBRARY to Open MPI's or MPICH's libmpi"
        case let .callFailed(name, code):
            return "\(name) failed with MPI error \(code)"
        case let .underLauncher(variable, error):
            return "launched by an MPI launcher (\(variable) is set), but \(error.localizedDescription)"
        case let .ranksDiverged(step):
            return "the ranks' adapters differ after step \(step); every rank must run the same binary on the same pipeline and data "
                + "(same files, same QLORA_THREADS, the same kind of CPU); the run stops here (the last good checkpoint is kept)"
        case let .checkpointTransfer(detail):
            return "the checkpoint rank 0 sent could not be read: \(detail)"
        }
    }
}
