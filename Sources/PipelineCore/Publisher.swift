import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Copies a stage's artifact to its `to:` destination: into a `.<name>.tmp-PID` sibling, marker
/// last, then two renames (destination -> `.old-PID`, temp -> destination), so a reader sees the
/// old or the new directory and a kill at any moment leaves something `recoverLeftovers` repairs.
/// Every failure names the stage and the path with the system's reason.
struct Publisher {
    let store: CacheStore
    let pipelineName: String

    /// Publishes unless the destination already holds exactly these bytes; true when it copied.
    func publish(stage: String, key: String, record: ActionRecord, to destination: URL) throws -> Bool {
        let marker = PublishSafety.marker(pipeline: pipelineName, stage: stage, key: key, outputDigest: record.outputDigest)
        let markerURL = destination.appendingPathComponent(PublishSafety.markerName)
        // Already there (or published by a version without the marker): only the marker may need writing.
        switch PublishSafety.occupant(destination) {
        case .published, .foreignDirectory:
            if try holds(record, at: destination) {
                if (try? AtomicFile.readJSON(markerURL)) != marker { try writeMarker(marker, to: markerURL, stage: stage) }
                return false
            }
        default: break
        }
        if let problem = PublishSafety.occupantProblem(destination) {
            throw CacheError.publishRefused(stage: stage, path: Self.shown(destination), reason: problem)
        }
        let parent = destination.deletingLastPathComponent()
        try makeDirectories(parent, stage: stage)
        let temp = parent.appendingPathComponent(".\(destination.lastPathComponent).tmp-\(getpid())")
        CacheStore.removeTree(temp)
        try makeDirectories(temp, stage: stage, shownAs: destination)
        do {
            for entry in record.files {
                let target = temp.appendingPathComponent(entry.path)
                try makeDirectories(target.deletingLastPathComponent(), stage: stage, shownAs: destination)
                let digest = try copy(store.objectURL(entry.digest), to: target, shownAs: destination.appendingPathComponent(entry.path), stage: stage)
                // The object's name is its SHA-256: a mismatch means the cache is damaged; never publish it.
                guard digest == entry.digest else { throw CacheError.corruptObject(stage: stage, digest: entry.digest) }
            }
            try writeMarker(marker, to: temp.appendingPathComponent(PublishSafety.markerName), stage: stage)
        } catch {
            CacheStore.removeTree(temp)
            throw error
        }
        CrashPoint.here("publish-temp")
        let old = parent.appendingPathComponent(".\(destination.lastPathComponent).old-\(getpid())")
        if PublishSafety.occupant(destination) != .nothing {
            guard rename(destination.path, old.path) == 0 else {
                let reason = Self.reason(errno)
                CacheStore.removeTree(temp)
                throw CacheError.publishFailed(stage: stage, path: Self.shown(destination), reason: reason)
            }
        }
        CrashPoint.here("publish-swap")
        guard rename(temp.path, destination.path) == 0 else {
            let reason = Self.reason(errno)
            _ = rename(old.path, destination.path)
            CacheStore.removeTree(temp)
            throw CacheError.publishFailed(stage: stage, path: Self.shown(destination), reason: reason)
        }
        CrashPoint.here("publish-done")
        CacheStore.removeTree(old)
        return true
    }

    /// Whether `directory` holds exactly the artifact's files (the marker aside).
    func holds(_ record: ActionRecord, at directory: URL) throws -> Bool {
        let entries = try store.digests.manifest(of: directory).filter { $0.path != PublishSafety.markerName }
        return ContentDigest.manifestDigest(entries) == record.outputDigest
    }

    func writeMarker(_ marker: JSONValue, to url: URL, stage: String) throws {
        do { try AtomicFile.write(json: marker, to: url) } catch {
            throw CacheError.publishFailed(stage: stage, path: Self.shown(url), reason: Self.reason(errno))
        }
    }

    func makeDirectories(_ url: URL, stage: String, shownAs: URL? = nil) throws {
        var missing: [URL] = []
        var probe = url.standardizedFileURL
        while probe.path != "/" && !FileManager.default.fileExists(atPath: probe.path) {
            missing.insert(probe, at: 0)
            probe.deleteLastPathComponent()
        }
        for directory in missing where mkdir(directory.path, 0o755) != 0 && errno != EEXIST {
            throw CacheError.publishFailed(stage: stage, path: Self.shown(shownAs ?? directory), reason: Self.reason(errno))
        }
    }

    /// A plain read/write copy (not a hard link: published files are the user's to change,
    /// objects must stay read-only); returns the SHA-256 of the bytes copied, memoized for the
    /// copy (its mtime set `ContentDigest.racyWindow` back), so the next run's check is a stat.
    func copy(_ source: URL, to target: URL, shownAs: URL, stage: String) throws -> String {
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw CacheError.publishFailed(stage: stage, path: Self.shown(source), reason: Self.reason(errno)) }
        defer { close(input) }
        let output = open(target.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw CacheError.publishFailed(stage: stage, path: Self.shown(shownAs), reason: Self.reason(errno)) }
        var failure: Int32 = 0
        var hasher = SHA256()
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        copying: while true {
            let n = read(input, buffer, size)
            if n < 0 { if errno == EINTR { continue }; failure = errno; break }
            if n == 0 { break }
            hasher.update(bytes: UnsafeRawBufferPointer(start: buffer, count: n))
            var offset = 0
            while offset < n {
                let w = write(output, buffer + offset, n - offset)
                if w < 0 { if errno == EINTR { continue }; failure = errno; break copying }
                offset += w
            }
        }
        if failure == 0 && !ContentDigest.backdate(output) { failure = errno }   // see backdate: memoized below
        if close(output) != 0 && failure == 0 { failure = errno }
        if failure != 0 { throw CacheError.publishFailed(stage: stage, path: Self.shown(shownAs), reason: Self.reason(failure)) }
        let digest = hasher.finalize().hexString
        store.digests.remember(digest, for: target)   // the inode and mtime survive the rename into place
        return digest
    }

    /// strerror in the lower case of a sentence fragment ("permission denied").
    static func reason(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// A path as a person wants to read it: relative to the current directory when below it.
    static func shown(_ url: URL) -> String { DisplayPath.shown(url) }
}

/// Paths as the user reads them in logs and summaries.
public enum DisplayPath {
    /// Relative to the current directory when inside it, else absolute.
    public static func shown(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        let here = FileManager.default.currentDirectoryPath
        return path.hasPrefix(here + "/") ? String(path.dropFirst(here.count + 1)) : path
    }
}
