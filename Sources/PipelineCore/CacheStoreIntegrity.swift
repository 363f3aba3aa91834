import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Objects are named by their SHA-256; these checks re-hash them where their content matters
/// (a stage about to read its inputs, `cache verify`), because a size check cannot see a flipped bit.
extension CacheStore {
    /// Moves an object whose content does not match its name to `quarantine/` and drops every
    /// materialised artifact (they are hard links to the same inodes; rebuilt on demand).
    func quarantine(_ digest: String) throws {
        let url = objectURL(digest)
        try FileManager.default.createDirectory(at: quarantine, withIntermediateDirectories: true)
        let target = quarantine.appendingPathComponent("\(digest).\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
        guard rename(url.path, target.path) == 0 else { throw CacheError.io("cannot quarantine \(url.path): \(String(cString: strerror(errno)))") }
        Self.removeTree(artifacts)
        try prepare()
    }

    /// Re-hashes every object of `record`; quarantines those that do not match and returns their
    /// digests (empty: the output is intact). Missing objects count as corrupt.
    public func verifyObjects(_ record: ActionRecord) throws -> [String] {
        var bad: [String] = []
        for digest in Set(record.files.map(\.digest)).sorted() {
            let url = objectURL(digest)
            guard FileManager.default.fileExists(atPath: url.path) else { bad.append(digest); continue }
            if (try? ContentDigest.hashFile(url)) == digest { continue }
            try quarantine(digest)
            bad.append(digest)
        }
        return bad
    }

    /// Action records whose results may have been computed from the outputs `digests` names,
    /// directly or through other stages (an upstream output digest is part of a stage's material).
    func downstream(ofOutputs digests: Set<String>, in records: [ActionRecord]) -> [ActionRecord] {
        var tainted = digests, found: [ActionRecord] = [], seen = Set<String>()
        var changed = true
        while changed {
            changed = false
            // Flattened material holds canonical JSON: an upstream digest is a quoted string.
            for record in records where !seen.contains(record.key)
                && record.material.values.contains(where: { tainted.contains(String($0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))) }) {
                seen.insert(record.key); found.append(record)
                tainted.insert(record.outputDigest); changed = true
            }
        }
        return found.sorted { $0.key < $1.key }
    }
}
