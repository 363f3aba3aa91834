import Foundation
import TensorIO

/// Atomic file replacement for training artifacts (TensorIO's `AtomicFile`: a temporary file beside
/// the target, fsync, rename(2) over it), so a crash or a power cut leaves either the old or the new
/// file, never a torn or empty one.
enum AtomicWrite {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        try write(to: url) { append in try bytes.withUnsafeBytes { try append($0) } }
    }

    /// `body` writes the file's bytes in order through `append` (nothing needs to be in memory whole).
    static func write(to url: URL, _ body: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        do {
            try AtomicFile.write(to: url, body)
        } catch let failure as AtomicFile.Failure {
            throw TrainingError.unreadableFile(path: url.path, detail: "write failed: \(failure.reason)")
        }
    }
}
