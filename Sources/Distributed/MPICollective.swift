import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// MPI, loaded at run time: the binary links no MPI library, so it builds and runs where none is
/// installed, and one build serves Open MPI and MPICH-family libraries (MPICH, Intel MPI, Cray).
///
/// Only the MPI C API is used (MPI 3.1 §5.9 Allreduce, §5.4 Bcast, §12.4 Init_thread). The two
/// library families differ in how handles look: Open MPI's `MPI_COMM_WORLD` is the address of the
/// exported object `ompi_mpi_comm_world` (its mpi.h), MPICH's is the integer 0x44000000 (its
/// mpi.h, constants fixed by the MPICH ABI initiative). Both are passed here as one pointer-sized
/// integer: on x86-64 (System V) and AArch64 an `int` argument is read from the low half of its
/// register, so a pointer-sized slot holding the int's value is the same call.
public final class MPICollective: Collective, @unchecked Sendable {  // used from the training thread only
    public let rank: Int
    public let size: Int

    private typealias InitThread = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    private typealias Flag = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    private typealias CommInt = @convention(c) (Int, UnsafeMutablePointer<Int32>) -> Int32
    private typealias Allreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int, Int, Int) -> Int32
    private typealias Bcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Int, Int32, Int) -> Int32
    private typealias Finalize = @convention(c) () -> Int32
    private typealias Abort = @convention(c) (Int, Int32) -> Int32

    private struct Handles { var world, byte, float, double, sum, max: Int; var inPlace: UnsafeRawPointer }
    private let handles: Handles
    private let allreduce: Allreduce
    private let bcast: Bcast
    private let finalize: Finalize
    private let abort: Abort
    private var finished = false

    /// Libraries tried in order when QLORA_MPI_LIBRARY is not set (Debian/Ubuntu names first).
    public static let libraryNames = ["libmpi.so.40", "libmpi.so", "libmpich.so.12", "libmpich.so", "libmpi.so.12"]

    /// Loads the library and initialises MPI (thread level FUNNELED: only this thread calls MPI,
    /// while the kernels use their own threads).
    public init(environment: [String: String]) throws {
        let candidates = environment["QLORA_MPI_LIBRARY"].map { [$0] } ?? Self.libraryNames
        var handle: UnsafeMutableRawPointer? = nil
        var loaded = ""
        var reasons: [String] = []
        for name in candidates {
            // RTLD_GLOBAL: Open MPI's components are shared objects that resolve symbols of libmpi.
            if let h = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { handle = h; loaded = name; break }
            reasons.append(dlerror().map { String(cString: $0) } ?? name)
        }
        guard let library = handle else { throw DistributedError.noLibrary(tried: candidates, reasons: reasons) }
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let s = dlsym(library, name) else { throw DistributedError.missingSymbol(name, library: loaded) }
            return unsafeBitCast(s, to: type)
        }
        func address(_ name: String) throws -> Int {
            guard let s = dlsym(library, name) else { throw DistributedError.missingSymbol(name, library: loaded) }
            return Int(bitPattern: s)
        }
        if dlsym(library, "ompi_mpi_comm_world") != nil {
            handles = Handles(world: try address("ompi_mpi_comm_world"), byte: try address("ompi_mpi_byte"),
                              float: try address("ompi_mpi_float"), double: try address("ompi_mpi_double"),
                              sum: try address("ompi_mpi_op_sum"), max: try address("ompi_mpi_op_max"),
                              inPlace: UnsafeRawPointer(bitPattern: 1)!)
        } else {
            handles = Handles(world: 0x4400_0000, byte: 0x4c00_010d, float: 0x4c00_040a, double: 0x4c00_080b,
                              sum: 0x5800_0003, max: 0x5800_0001, inPlace: UnsafeRawPointer(bitPattern: -1)!)
        }
        allreduce = try symbol("MPI_Allreduce", Allreduce.self)
        bcast = try symbol("MPI_Bcast", Bcast.self)
        finalize = try symbol("MPI_Finalize", Finalize.self)
        abort = try symbol("MPI_Abort", Abort.self)
        let initialized = try symbol("MPI_Initialized", Flag.self)
        var flag: Int32 = 0
        _ = initialized(&flag)
        if flag == 0 {
            var provided: Int32 = 0
            let code = try symbol("MPI_Init_thread", InitThread.self)(nil, nil, 1 /* MPI_THREAD_FUNNELED */, &provided)
            guard code == 0 else { throw DistributedError.callFailed("MPI_Init_thread", code: code) }
        }
        var r: Int32 = 0, n: Int32 = 0
        let commRank = try symbol("MPI_Comm_rank", CommInt.self), commSize = try symbol("MPI_Comm_size", CommInt.self)
        guard commRank(handles.world, &r) == 0, commSize(handles.world, &n) == 0 else { throw DistributedError.callFailed("MPI_Comm_rank", code: -1) }
        rank = Int(r); size = Int(n)
    }

    /// MPI's count is an `int`: long buffers go in slices.
    private static let slice = 1 << 30

    private func reduce(_ base: UnsafeMutableRawPointer?, count: Int, stride: Int, type: Int, op: Int, name: String) throws {
        guard let base, count > 0 else { return }
        var done = 0
        while done < count {
            let n = min(Self.slice, count - done)
            let code = allreduce(handles.inPlace, base + done * stride, Int32(n), type, op, handles.world)
            guard code == 0 else { throw DistributedError.callFailed(name, code: code) }
            done += n
        }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        try reduce(UnsafeMutableRawPointer(values.baseAddress), count: values.count, stride: 4, type: handles.float, op: handles.sum, name: "MPI_Allreduce")
    }
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        try reduce(UnsafeMutableRawPointer(values.baseAddress), count: values.count, stride: 8, type: handles.double, op: handles.sum, name: "MPI_Allreduce")
    }
    public func maximum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        try reduce(UnsafeMutableRawPointer(values.baseAddress), count: values.count, stride: 8, type: handles.double, op: handles.max, name: "MPI_Allreduce")
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        var length = [Int64(rank == root ? bytes.count : 0)]
        let lengthCode = length.withUnsafeMutableBytes { bcast($0.baseAddress, 8, handles.byte, Int32(root), handles.world) }
        guard lengthCode == 0 else { throw DistributedError.callFailed("MPI_Bcast", code: lengthCode) }
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length[0]))
        var done = 0
        while done < buffer.count {
            let n = min(Self.slice, buffer.count - done)
            let code = buffer.withUnsafeMutableBytes { bcast($0.baseAddress.map { $0 + done }, Int32(n), handles.byte, Int32(root), handles.world) }
            guard code == 0 else { throw DistributedError.callFailed("MPI_Bcast", code: code) }
            done += n
        }
        return buffer
    }

    /// Ends the job's MPI use: MPI_Finalize after success; MPI_Abort after a failure, so the other
    /// ranks do not wait forever in a collective this rank will never join.
    public func finish(success: Bool, exitCode: Int32) {
        guard !finished else { return }
        finished = true
        if success { _ = finalize() } else { _ = abort(handles.world, exitCode) }
    }
}
