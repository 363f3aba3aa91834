import Foundation

/// Atomic file replacement for training artifacts: write a temporary file beside the target,
/// fsync it, then rename(2) over the target (atomic within a file system), so a crash or a power
/// cut leaves either the old or the new file, never a torn or empty one.
enum AtomicWrite {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(bytes).write(to: tmp)
            let fd = open(tmp.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fsync(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                if fd >= 0 { close(fd) }
                throw TrainingError.unreadableFile(path: url.path, detail: "write failed: cannot sync \(tmp.lastPathComponent): \(reason)")
            }
            close(fd)
            guard rename(tmp.path, url.path) == 0 else {
                throw TrainingError.unreadableFile(path: url.path, detail: "write failed: \(String(cString: strerror(errno)))")
            }
        } catch let error as TrainingError {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw TrainingError.unreadableFile(path: url.path, detail: "write failed: \(error.localizedDescription)")
        }
    }
}
