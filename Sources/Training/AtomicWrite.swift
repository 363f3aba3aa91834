import Foundation

/// Atomic file replacement for training artifacts: write a temporary file beside the target,
/// then rename over it (rename(2) is atomic within a file system), so a crash leaves either the
/// old or the new file, never a torn one.
enum AtomicWrite {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(bytes).write(to: tmp)
            if FileManager.default.fileExists(atPath: url.path) {
                _ = try FileManager.default.replaceItemAt(url, withItemAt: tmp)
            } else {
                try FileManager.default.moveItem(at: tmp, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw TrainingError.unreadableFile(path: url.path, detail: "write failed: \(error.localizedDescription)")
        }
    }
}
