import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Publishing an artifact's single file to a file destination (`export: {to: out/model.gguf}`).
///
/// The rules are the directories' (PublishSafety) for a file: the destination may be absent or a
/// file qlora-run published, recognised by the marker `.<name>.qlora-published` beside it; anything
/// else is refused. The copy goes to `.<name>.tmp-PID` beside the destination, its SHA-256 checked
/// against the object's; the marker is written first, then one rename puts the file in place, so a
/// reader sees the old file or the new one, and a kill leaves a temp file `recoverLeftovers` removes.
extension Publisher {
    static func fileMarker(_ destination: URL) -> URL {
        destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent)\(PublishSafety.markerName)")
    }

    /// Publishes unless the file already holds exactly these bytes; true when it copied.
    func publishFile(stage: String, key: String, record: ActionRecord, to destination: URL) throws -> Bool {
        guard record.files.count == 1, let entry = record.files.first else {
            throw CacheError.publishRefused(stage: stage, path: Self.shown(destination),
                                            reason: "the stage's artifact has \(record.files.count) files, and a file destination takes one. Give a directory instead")
        }
        let marker = PublishSafety.marker(pipeline: pipelineName, stage: stage, key: key, outputDigest: record.outputDigest)
        let markerURL = Self.fileMarker(destination)
        if PublishSafety.occupant(destination) == .file, (try? store.digests.digest(of: destination)) == entry.digest {
            if (try? AtomicFile.readJSON(markerURL)) != marker { try writeMarker(marker, to: markerURL, stage: stage) }
            return false
        }
        if let problem = PublishSafety.fileOccupantProblem(destination) {
            throw CacheError.publishRefused(stage: stage, path: Self.shown(destination), reason: problem)
        }
        let parent = destination.deletingLastPathComponent()
        try makeDirectories(parent, stage: stage)
        let temp = parent.appendingPathComponent(".\(destination.lastPathComponent).tmp-\(getpid())")
        unlink(temp.path)
        do {
            let digest = try copy(store.objectURL(entry.digest), to: temp, shownAs: destination, stage: stage)
            // The object's name is its SHA-256: a mismatch means the cache is damaged; never publish it.
            guard digest == entry.digest else { throw CacheError.corruptObject(stage: stage, digest: entry.digest) }
            try writeMarker(marker, to: markerURL, stage: stage)
        } catch {
            unlink(temp.path)
            throw error
        }
        CrashPoint.here("publish-temp")
        guard rename(temp.path, destination.path) == 0 else {
            let reason = Self.reason(errno)
            unlink(temp.path)
            throw CacheError.publishFailed(stage: stage, path: Self.shown(destination), reason: reason)
        }
        CrashPoint.here("publish-done")
        return true
    }
}

extension PublishSafety {
    /// The refusal for an occupied file destination, nil when publishing there is safe.
    static func fileOccupantProblem(_ url: URL) -> String? {
        if let problem = ancestorProblem(url) { return problem }
        let marker = Publisher.fileMarker(url)
        switch occupant(url) {
        case .nothing: return nil
        case .file:
            if FileManager.default.fileExists(atPath: marker.path) { return nil }
            return "a file is there that qlora-run did not publish (no \(marker.lastPathComponent) beside it). Remove it or choose another path"
        case .symlink: return "a symbolic link is there; qlora-run publishes only to a path it owns. Remove the link or choose another path"
        case .emptyDirectory, .published, .foreignDirectory:
            return "a directory is there, and this destination names a file. Remove the directory or choose another path"
        }
    }
}
