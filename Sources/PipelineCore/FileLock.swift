import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory `flock(2)` lock on a file. The kernel releases it when the descriptor is closed,
/// including when the process dies (SIGKILL), so a crashed run never leaves a stale lock.
public final class FileLock: @unchecked Sendable {  // the descriptor is immutable after init
    public enum Mode: Sendable { case shared, exclusive }
    private let fd: Int32
    public let url: URL

    /// Blocks until the lock is acquired.
    public init(url: URL, mode: Mode) throws {
        self.url = url
        fd = open(url.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CacheError.io("cannot open lock file \(url.path): \(String(cString: strerror(errno)))") }
        var rc: Int32
        repeat { rc = flock(fd, mode == .shared ? LOCK_SH : LOCK_EX) } while rc != 0 && errno == EINTR
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw CacheError.io("cannot lock \(url.path): \(message)")
        }
    }

    private init(fd: Int32, url: URL) { self.fd = fd; self.url = url }

    /// Returns the lock if it could be taken without waiting, nil when another process holds it.
    public static func tryLock(url: URL, mode: Mode) -> FileLock? {
        let fd = open(url.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        if flock(fd, (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 { close(fd); return nil }
        return FileLock(fd: fd, url: url)
    }

    deinit { close(fd) }
}

/// Errors of the cache and executor.
public enum CacheError: Error, LocalizedError, Equatable {
    case io(String)
    case corruptRecord(path: String, reason: String)
    case unknownKind(stage: String, kind: String)
    case stageFailed(stage: String, message: String)
    case interrupted(stage: String)
    case unknownStage(String)
    /// Publishing found something at the destination it must not replace.
    case publishRefused(stage: String, path: String, reason: String)
    /// A destination the pipeline must not publish to (found by `run` itself; `load` reports it first).
    case unsafeDestination(field: String, message: String)
    /// A cached object's content does not match its name (found while using it).
    case corruptObject(stage: String, digest: String)
    /// Publishing failed on a system call (permission, space, …).
    case publishFailed(stage: String, path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .io(let m): return m
        case .corruptRecord(let path, let reason): return "cache record \(path) is unreadable (\(reason)); run `qlora-run cache verify` or delete it"
        case .unknownKind(let stage, let kind): return "stage '\(stage)': no runner registered for kind '\(kind)'"
        case .stageFailed(let stage, let message): return "stage '\(stage)' failed: \(message)"
        case .interrupted(let stage): return "stage '\(stage)' was interrupted; its work directory is kept so the next run can resume"
        case .unknownStage(let name): return "no stage named '\(name)' in the pipeline"
        case .publishRefused(let stage, let path, let reason): return "stage '\(stage)': not publishing to \(path): \(reason)"
        case .corruptObject(let stage, let digest):
            return "stage '\(stage)': cached object \(digest.prefix(12))… does not match its SHA-256; it was quarantined. Run again to recompute it"
        case .unsafeDestination(let field, let message): return "\(field): \(message)"
        case .publishFailed(let stage, let path, let reason): return "stage '\(stage)': cannot write \(path): \(reason)"
        }
    }
}
