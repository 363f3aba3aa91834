import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The content-addressed store under a cache directory (default `.qlora` next to the pipeline).
///
/// Layout (modelled on Bazel's CAS + action cache, Nix's store, DVC's run-cache):
/// ```
/// objects/ab/abcdef…      read-only file contents, named by their SHA-256
/// actions/<key>.json      action record of one stage key: output manifest (path -> digest, size),
///                         output digest, fields summary, duration. Written LAST: its presence
///                         is the commit point of a stage run.
/// stages/<pipeline>/<stage>.json  last key + key material of that pipeline's stage (plan reasons)
/// artifacts/<digest>/     an output materialised as hard links to objects (read-only files),
///                         handed to downstream stages; recreated when missing
/// scratch/<key>.<pid>/    output directory of a running stage; swept at the next run start
///                         when its key lock is free (its process is gone)
/// work/<key>/             persistent per-key work dir (training checkpoints), removed after publish
/// locks/<key>.lock        flock per stage key; store.lock: shared by runs, exclusive for gc
/// digests/ab/…            memoized content digests of external inputs (see ContentDigest)
/// runs/<NNNNNN>.json      run records;  logs/<key>.log  per-stage logs
/// quarantine/             objects that failed verification
/// ```
/// Every file is written temp -> fsync -> rename (`AtomicFile`).
public struct CacheStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root.standardizedFileURL }

    var objects: URL { root.appendingPathComponent("objects") }
    var actions: URL { root.appendingPathComponent("actions") }
    var stages: URL { root.appendingPathComponent("stages") }
    var artifacts: URL { root.appendingPathComponent("artifacts") }
    var scratch: URL { root.appendingPathComponent("scratch") }
    var work: URL { root.appendingPathComponent("work") }
    var locks: URL { root.appendingPathComponent("locks") }
    public var runs: URL { root.appendingPathComponent("runs") }
    var logs: URL { root.appendingPathComponent("logs") }
    var quarantine: URL { root.appendingPathComponent("quarantine") }
    public var digests: ContentDigest { ContentDigest(memoDirectory: root.appendingPathComponent("digests")) }

    public func prepare() throws {
        for dir in [objects, actions, stages, artifacts, scratch, work, locks, runs, logs] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
    }

    public func objectURL(_ digest: String) -> URL {
        objects.appendingPathComponent(String(digest.prefix(2))).appendingPathComponent(digest)
    }
    public func actionURL(_ key: String) -> URL { actions.appendingPathComponent("\(key).json") }
    /// The last key of a stage *of this pipeline* (a shared cache holds many pipelines whose
    /// stages may share names): `stages/<pipeline>/<stage>.json`, names percent-escaped.
    public func stageURL(pipeline: String, stage: String) -> URL {
        stages.appendingPathComponent(Self.fileName(pipeline)).appendingPathComponent(Self.fileName(stage) + ".json")
    }

    /// A name as one safe path component: [A-Za-z0-9_-] kept, every other byte %XX.
    static func fileName(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "-"): out.append(Character(UnicodeScalar(byte)))
            default: out += String(format: "%%%02X", byte)
            }
        }
        return out.isEmpty ? "%" : out
    }
    public func artifactURL(_ outputDigest: String) -> URL { artifacts.appendingPathComponent(outputDigest) }
    public func workURL(_ key: String) -> URL { work.appendingPathComponent(key) }
    public func logURL(_ key: String) -> URL { logs.appendingPathComponent("\(key).log") }
    func lockURL(_ key: String) -> URL { locks.appendingPathComponent("\(key).lock") }
    var storeLockURL: URL { locks.appendingPathComponent("store.lock") }

    /// Exclusive lock for one stage key (blocks while another process runs the same key).
    public func lockKey(_ key: String) throws -> FileLock { try FileLock(url: lockURL(key), mode: .exclusive) }

    /// Shared by every run; gc takes it exclusively.
    public func lockStore(exclusive: Bool) throws -> FileLock {
        try FileLock(url: storeLockURL, mode: exclusive ? .exclusive : .shared)
    }

    /// A fresh scratch directory for a stage key, owned by this process.
    public func makeScratch(key: String) throws -> URL {
        let dir = scratch.appendingPathComponent("\(key).\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes scratch dirs whose key lock nobody holds (their process died or finished).
    public func sweepScratch() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: scratch.path) else { return }
        for name in names {
            let key = String(name.prefix { $0 != "." })
            guard let lock = FileLock.tryLock(url: lockURL(key), mode: .exclusive) else { continue }
            Self.removeTree(scratch.appendingPathComponent(name))
            withExtendedLifetime(lock) {}
        }
    }

    // MARK: objects

    /// Moves every file of `directory` into the object store; returns the manifest.
    /// Objects already present are kept (same name = same content).
    public func ingest(directory: URL) throws -> [ContentDigest.Entry] {
        let manifest = try ContentDigest(memoDirectory: nil).manifest(of: directory)
        for entry in manifest {
            let target = objectURL(entry.digest)
            if let attributes = try? FileManager.default.attributesOfItem(atPath: target.path),
               (attributes[.size] as? NSNumber)?.int64Value == entry.size { continue }  // same name = same content
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let source = directory.appendingPathComponent(entry.path)
            let temp = target.deletingLastPathComponent().appendingPathComponent(".\(entry.digest).tmp-\(getpid())")
            Self.removeTree(temp)
            try FileManager.default.copyItem(at: source, to: temp)
            let fd = open(temp.path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { fsync(fd); close(fd) }
            chmod(temp.path, 0o444)
            guard rename(temp.path, target.path) == 0 else { throw CacheError.io("cannot store object \(target.path)") }
        }
        return manifest
    }

    /// True when every object of the record exists with the recorded size.
    public func objectsPresent(_ record: ActionRecord) -> Bool {
        record.files.allSatisfy { entry in
            let attributes = try? FileManager.default.attributesOfItem(atPath: objectURL(entry.digest).path)
            return (attributes?[.size] as? NSNumber)?.int64Value == entry.size
        }
    }

    /// The output as a directory of hard links to objects (`artifacts/<output digest>/`),
    /// rebuilt when a file is missing. Built in a temp sibling and renamed into place.
    public func materialize(_ record: ActionRecord) throws -> URL {
        let target = artifactURL(record.outputDigest)
        let complete = record.files.allSatisfy { entry in
            let attributes = try? FileManager.default.attributesOfItem(atPath: target.appendingPathComponent(entry.path).path)
            return (attributes?[.size] as? NSNumber)?.int64Value == entry.size
        }
        if complete && FileManager.default.fileExists(atPath: target.path) { return target }
        let temp = artifacts.appendingPathComponent(".tmp-\(record.outputDigest.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        for entry in record.files {
            let destination = temp.appendingPathComponent(entry.path)
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            if link(objectURL(entry.digest).path, destination.path) != 0 {
                try FileManager.default.copyItem(at: objectURL(entry.digest), to: destination)  // e.g. cross-device
            }
        }
        if FileManager.default.fileExists(atPath: target.path) { Self.removeTree(target) }
        if rename(temp.path, target.path) != 0 {
            Self.removeTree(temp)  // a concurrent process won the race; its copy is identical
        }
        return target
    }

    // MARK: records

    public func actionRecord(_ key: String) throws -> ActionRecord? {
        guard let json = try AtomicFile.readJSON(actionURL(key)) else { return nil }
        guard let record = ActionRecord(json: json) else {
            throw CacheError.corruptRecord(path: actionURL(key).path, reason: "missing fields")
        }
        return record
    }

    public func write(_ record: ActionRecord) throws { try AtomicFile.write(json: record.json, to: actionURL(record.key)) }

    public func stageRecord(pipeline: String, stage name: String) -> StageRecord? {
        guard let json = try? AtomicFile.readJSON(stageURL(pipeline: pipeline, stage: name)) else { return nil }
        return StageRecord(json: json)
    }

    public func write(_ record: StageRecord, pipeline: String) throws {
        try AtomicFile.write(json: record.json, to: stageURL(pipeline: pipeline, stage: record.stage))
    }

    /// Deletes a tree even when it contains read-only files or directories.
    static func removeTree(_ url: URL) {
        if let walker = FileManager.default.enumerator(atPath: url.path) {
            // Only directories: files may be hard links to read-only objects, whose mode must stay.
            while let relative = walker.nextObject() as? String {
                var isDirectory: ObjCBool = false
                let path = url.path + "/" + relative
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { chmod(path, 0o755) }
            }
        }
        try? FileManager.default.removeItem(at: url)
    }
}
