import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that a crash or power cut leaves the old file or the new one, never a torn one:
/// a temporary file beside the target (O_EXCL, a name of its own), the bytes streamed into it, fsync,
/// rename(2) over the target, fsync of the directory. Used by the safetensors and GGUF writers and the
/// trainer's checkpoint files, each naming the file in its own error type.
public enum AtomicFile {
    /// Why the file system refused; errors thrown by the caller's `body` pass through unchanged.
    public struct Failure: Error { public let reason: String }

    /// `body` gets `append`, which writes raw bytes to the temporary file in order.
    public static func write(to url: URL, _ body: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let directory = url.deletingLastPathComponent().path
        let temp = directory + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw Failure(reason: String(cString: strerror(errno))) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            try body { raw in
                var done = 0
                while done < raw.count {
                    let r = systemWrite(fd, raw.baseAddress!.advanced(by: done), raw.count - done)
                    if r < 0 {
                        if errno == EINTR { continue }
                        throw Failure(reason: String(cString: strerror(errno)))
                    }
                    done += r
                }
            }
            if fsync(fd) != 0 { throw Failure(reason: "fsync: \(String(cString: strerror(errno)))") }
        }
        if rename(temp, url.path) != 0 { throw Failure(reason: "rename: \(String(cString: strerror(errno)))") }
        ok = true
        // Persist the rename itself.
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
