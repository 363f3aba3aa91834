import Foundation
import XCTest

/// One golden reference kit: the project's own (`Tests/Fixtures/reference`, written by
/// `Tests/Fixtures/generate_reference.py`, always present) or the optional shared kit
/// (`../shared/reference`, made with the same methods from other seeds: an independent cross-check).
public struct ReferenceKit: CustomStringConvertible, Sendable {
    public let name: String
    public let directory: URL
    public let isShared: Bool

    /// A file inside the kit, e.g. `kit.file("golden/logits.safetensors")`.
    public func file(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// Names the kit in assertion messages: "own kit (…/Tests/Fixtures/reference)".
    public var description: String { "\(name) (\(directory.path))" }
}

/// Locates the reference kits. Golden tests loop over `Reference.kits()`: the own kit always (missing
/// = failure), the shared kit when present (missing: left out locally; with QLORA_REQUIRE_REFERENCE=1,
/// as `.ci/run` sets it, a recorded failure while the own kit's checks still run).
public enum Reference {
    /// The project root, found from this source file's location (Tests/TestSupport/Reference.swift).
    public static var projectRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The project's own kit directory.
    public static var ownPath: URL { projectRoot.appendingPathComponent("Tests/Fixtures/reference") }

    /// The shared kit: `../shared/reference` relative to the project root, or `QLORA_REFERENCE` if set.
    public static var path: URL {
        if let env = ProcessInfo.processInfo.environment["QLORA_REFERENCE"] { return URL(fileURLWithPath: env) }
        return projectRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The shared kit directory if it exists; nil otherwise.
    public static func directory() -> URL? { isDirectory(path) ? path : nil }

    static var sharedRequired: Bool { ProcessInfo.processInfo.environment["QLORA_REQUIRE_REFERENCE"] == "1" }

    /// The own kit; its absence is an error (never a skip): the fixtures are part of the repository.
    public static func own() throws -> ReferenceKit {
        guard isDirectory(ownPath) else { throw MissingOwnKit(path: ownPath.path) }
        return ReferenceKit(name: "own kit", directory: ownPath, isShared: false)
    }

    /// The shared kit when present; nil when absent, and then under QLORA_REQUIRE_REFERENCE=1 a
    /// failure is recorded against the calling test.
    public static func shared(file: StaticString = #filePath, line: UInt = #line) -> ReferenceKit? {
        if let dir = directory() { return ReferenceKit(name: "shared kit", directory: dir, isShared: true) }
        if sharedRequired { XCTFail(MissingReference().description, file: file, line: line) }
        return nil
    }

    /// The kits a golden test runs against: the own kit, then the shared kit if present.
    public static func kits(file: StaticString = #filePath, line: UInt = #line) throws -> [ReferenceKit] {
        [try own()] + [shared(file: file, line: line)].compactMap { $0 }
    }

    public static let skipMessage = "golden reference kit not found at ../shared/reference (set QLORA_REFERENCE to its path); skipping"

    /// For tests that only have a shared-kit part: a skip, or — with QLORA_REQUIRE_REFERENCE=1 — a failure.
    public static func missing() -> Error {
        if sharedRequired { return MissingReference() }
        return XCTSkip(skipMessage)
    }

    public struct MissingReference: Error, CustomStringConvertible, LocalizedError {
        public var description: String { "golden reference kit not found at ../shared/reference and QLORA_REQUIRE_REFERENCE=1: a golden test may not skip here" }
        public var errorDescription: String? { description }
    }

    public struct MissingOwnKit: Error, CustomStringConvertible, LocalizedError {
        public let path: String
        public var description: String { "the project's own reference kit is missing at \(path); regenerate it with Tests/Fixtures/generate_reference.py" }
        public var errorDescription: String? { description }
    }

    /// A file inside the shared kit, or nil when it is absent.
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
