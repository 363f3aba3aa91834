import Foundation
import XCTest

/// Locates the shared golden reference kit (`../shared/reference` next to the project root).
/// Tests that need it call `Reference.directory()` and skip with a clear message when absent.
public enum Reference {
    /// The project root, found from this source file's location (Tests/TestSupport/Reference.swift).
    public static var projectRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `../shared/reference` relative to the project root, or `QLORA_REFERENCE` if set.
    public static var path: URL {
        if let env = ProcessInfo.processInfo.environment["QLORA_REFERENCE"] { return URL(fileURLWithPath: env) }
        return projectRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
    }

    /// The reference directory if it exists; nil otherwise (callers skip with `skipMessage`).
    public static func directory() -> URL? {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) && isDir.boolValue ? path : nil
    }

    public static let skipMessage = "golden reference kit not found at ../shared/reference (set QLORA_REFERENCE to its path); skipping"

    /// What a golden test throws when the reference kit is missing: a skip, or — with
    /// QLORA_REQUIRE_REFERENCE=1, as `.ci/run` sets it — a failure, so CI never passes a golden
    /// test by skipping it.
    public static func missing() -> Error {
        if ProcessInfo.processInfo.environment["QLORA_REQUIRE_REFERENCE"] == "1" { return MissingReference() }
        return XCTSkip(skipMessage)
    }

    public struct MissingReference: Error, CustomStringConvertible, LocalizedError {
        public var description: String { "golden reference kit not found at ../shared/reference and QLORA_REQUIRE_REFERENCE=1: a golden test may not skip here" }
        public var errorDescription: String? { description }
    }

    /// A file inside the reference kit, e.g. `Reference.file("golden/logits.safetensors")`.
    public static func file(_ relative: String) -> URL? {
        guard let dir = directory() else { return nil }
        return dir.appendingPathComponent(relative)
    }
}

/// A fresh temporary directory, removed by the caller with `try? FileManager.default.removeItem(at:)`.
public func makeTemporaryDirectory(_ prefix: String = "qlora-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
