import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qlora-run cache ls | verify | gc`.
extension CacheStore {
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var stage: String
        public var kind: String
        public var outputDigest: String
        public var bytes: Int64
        public var seconds: Double
    }

    public struct VerifyReport: Sendable, Equatable {
        public var objectsChecked = 0
        /// Object digests whose content did not match; moved to `quarantine/`.
        public var quarantined: [String] = []
        /// Action keys referring to an object that is missing (they will re-run).
        public var incompleteActions: [String] = []
        /// Action records built on an output that had to be repaired: removed, so they re-run.
        public var staleActions: [String] = []
        public var isClean: Bool { quarantined.isEmpty && incompleteActions.isEmpty && staleActions.isEmpty }
    }

    public struct GCReport: Sendable, Equatable {
        public var removedActions: [String] = []
        public var removedObjects = 0
        public var removedRuns = 0
        /// `work/<key>` directories removed: checkpoints no kept run can resume from.
        public var removedWork = 0
        /// Run records that could not be read: left in place, and not counted as kept runs.
        public var unreadableRuns: [String] = []
        public var freedBytes: Int64 = 0
    }

    /// Every action record, sorted by stage name then key.
    /// The run records (`runs/*.json`) in name order, which is start order; names of those that
    /// cannot be read are returned apart (gc keeps them out of its decisions, `runs` out of its table).
    public func runRecords() -> (readable: [(name: String, run: RunRecord)], unreadable: [String]) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        var readable: [(name: String, run: RunRecord)] = [], unreadable: [String] = []
        for name in names {
            if let json = try? AtomicFile.readJSON(runs.appendingPathComponent(name)), let run = RunRecord(json: json) {
                readable.append((name, run))
            } else {
                unreadable.append(name)
            }
        }
        return (readable, unreadable)
    }

    public func list() throws -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: actions.path)) ?? []
        var entries: [Entry] = []
        for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard let record = try actionRecord(String(name.dropLast(5))) else { continue }
            entries.append(Entry(key: record.key, stage: record.stage, kind: record.kind, outputDigest: record.outputDigest,
                                 bytes: record.files.reduce(0) { $0 + $1.size }, seconds: record.seconds))
        }
        return entries.sorted { ($0.stage, $0.key) < ($1.stage, $1.key) }
    }

    /// All object files as (digest, url).
    func allObjects() -> [(String, URL)] {
        var result: [(String, URL)] = []
        for prefix in ((try? FileManager.default.contentsOfDirectory(atPath: objects.path)) ?? []).sorted() {
            let dir = objects.appendingPathComponent(prefix)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                result.append((name, dir.appendingPathComponent(name)))
            }
        }
        return result
    }

    /// Re-hashes every object; corrupt ones go to `quarantine/` so the stages using them re-run.
    public func verify() throws -> VerifyReport {
        try prepare()
        var report = VerifyReport()
        for (digest, url) in allObjects() {
            report.objectsChecked += 1
            if (try? ContentDigest.hashFile(url)) == digest { continue }
            try quarantine(digest)
            report.quarantined.append(digest)
        }
        var records: [ActionRecord] = []
        for entry in try list() { if let record = try actionRecord(entry.key) { records.append(record) } }
        // An output with a repaired object re-runs; so must every result that may have been built on it.
        let damaged = records.filter { !objectsPresent($0) }
        report.incompleteActions = damaged.map(\.key)
        for record in downstream(ofOutputs: Set(damaged.map(\.outputDigest)), in: records) where objectsPresent(record) {
            try? FileManager.default.removeItem(at: actionURL(record.key))
            report.staleActions.append(record.key)
        }
        return report
    }

    /// Keeps the action records (and their objects and artifacts) referenced by the last
    /// `keepRuns` readable run records, and the `work/` checkpoints of the stage each of them left
    /// incomplete; removes everything else, including older run records. Unreadable run records
    /// are reported and left alone (a damaged record must not make everything look unreferenced).
    public func gc(keepRuns: Int, dryRun: Bool) throws -> GCReport {
        try prepare()
        let lock = try lockStore(exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        var report = GCReport()
        let (readable, unreadable) = runRecords()
        report.unreadableRuns = unreadable
        let kept = readable.suffix(max(0, keepRuns))
        var keepKeys = Set<String>(), keepWork = Set<String>()
        for (_, run) in kept {
            keepKeys.formUnion(run.stages.map(\.key))
            if let incomplete = run.incomplete { keepWork.insert(incomplete.key) }
        }
        var keepObjects = Set<String>(), keepArtifacts = Set<String>()
        for entry in try list() {
            if keepKeys.contains(entry.key), let record = try actionRecord(entry.key) {
                keepObjects.formUnion(record.files.map(\.digest)); keepArtifacts.insert(record.outputDigest)
                continue
            }
            report.removedActions.append(entry.key)
            if !dryRun { try? FileManager.default.removeItem(at: actionURL(entry.key)) }
        }
        for (digest, url) in allObjects() where !keepObjects.contains(digest) {
            report.removedObjects += 1
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
            report.freedBytes += size
            if !dryRun { try? FileManager.default.removeItem(at: url) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: artifacts.path)) ?? [] where !keepArtifacts.contains(name) {
            if !dryRun { Self.removeTree(artifacts.appendingPathComponent(name)) }
        }
        for (name, _) in readable.dropLast(max(0, keepRuns)) {
            report.removedRuns += 1
            if !dryRun { try? FileManager.default.removeItem(at: runs.appendingPathComponent(name)) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? [] where !keepWork.contains(name) {
            report.removedWork += 1
            if !dryRun { Self.removeTree(work.appendingPathComponent(name)) }
        }
        return report
    }
}
