import Foundation
import TensorIO

/// Atomic file replacement for training artifacts (TensorIO's `AtomicFile`: a temporary file beside
/// the target, fsync, rename(2) over it), so a crash or a power cut leaves either the old or the new
/// file, never a torn or empty one.
enum AtomicWrite {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        do {
            try AtomicFile.write(to: url) { append in try bytes.withUnsafeBytes { try append($0) } }
        } catch let failure as AtomicFile.Failure {
            throw TrainingError.unreadableFile(path: url.path, detail: "write failed: \(failure.reason)")
        }
    }
}
