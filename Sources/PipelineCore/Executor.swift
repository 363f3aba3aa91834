import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a pipeline against the cache. `plan()` and `run()` share `decide`, so they never disagree.
public struct PipelineRunner: Sendable {
    public let pipeline: Pipeline
    public let registry: StageRegistry
    public let store: CacheStore
    public let options: RunOptions
    /// Progress lines (`[2/5] quantize: cached (0.00s)`) and stage log lines.
    public let log: @Sendable (String) -> Void
    /// The live status line of a terminal (`  train: [###…] 12/80 …`), nil when not a TTY.
    public let progress: (@Sendable (String) -> Void)?

    public init(pipeline: Pipeline, registry: StageRegistry, cacheDirectory: URL? = nil, options: RunOptions = RunOptions(),
                log: @escaping @Sendable (String) -> Void = { print($0) }, progress: (@Sendable (String) -> Void)? = nil) {
        self.pipeline = pipeline; self.registry = registry; self.options = options; self.log = log; self.progress = progress
        self.store = CacheStore(root: cacheDirectory ?? pipeline.cacheDirectory)
    }

    // MARK: selection

    /// Stages taking part: `--only` restricts to those and their upstream.
    func selectedStages() throws -> [PipelineStage] {
        for name in options.force + options.only where pipeline.stage(named: name) == nil { throw CacheError.unknownStage(name) }
        guard !options.only.isEmpty else { return pipeline.stages }
        var wanted = Set(options.only)
        for stage in pipeline.stages.reversed() where wanted.contains(stage.name) { wanted.formUnion(stage.upstream) }
        return pipeline.stages.filter { wanted.contains($0.name) }
    }

    /// `--force` stages and everything downstream of them.
    func forcedStages() -> Set<String> {
        var forced = Set(options.force)
        for stage in pipeline.stages where stage.upstream.contains(where: forced.contains) { forced.insert(stage.name) }
        return forced
    }

    // MARK: the shared decision

    struct Decision {
        var key: String?
        var flat: [String: String] = [:]
        var record: ActionRecord?      // non-nil = cache hit
        var reasons: [String]
    }

    /// `outputs`: output digests of upstream stages already known (cached or just ran);
    /// `pending`: upstream stages that will run (plan only).
    func decide(_ stage: PipelineStage, outputs: [String: String], pending: Set<String>, forced: Set<String>) throws -> Decision {
        let waiting = stage.upstream.filter { pending.contains($0) }
        if !waiting.isEmpty {
            return Decision(key: nil, reasons: waiting.map { "upstream: \($0) will run" })
        }
        var upstreamDigests: [String: String] = [:]
        for (field, name) in stage.references { upstreamDigests[field] = outputs[name] ?? "" }
        var inputDigests: [String: String] = [:]
        for (field, path) in stage.inputPaths {
            inputDigests[field] = try store.digests.digest(of: URL(fileURLWithPath: path, relativeTo: pipeline.directory))
        }
        let material = StageKey.material(for: stage, seed: pipeline.seed, upstreamDigests: upstreamDigests, inputDigests: inputDigests,
                                         extraFields: options.extraKeyFields[stage.kind] ?? [:])
        let key = StageKey.key(material)
        let flat = StageKey.flatten(material, stage: stage)
        if forced.contains(stage.name) { return Decision(key: key, flat: flat, reasons: ["forced"]) }
        var reasons: [String] = []
        do {
            if let record = try store.actionRecord(key) {
                if store.objectsPresent(record) { return Decision(key: key, flat: flat, record: record, reasons: []) }
                reasons.append("cache object missing/corrupt")
            }
        } catch {
            reasons.append("cache record corrupt")
        }
        if reasons.isEmpty {
            if let previous = store.stageRecord(pipeline: pipeline.name, stage: stage.name) {
                reasons = previous.key == key ? ["cache entry missing"] : StageKey.reasons(current: flat, previous: previous.material, stage: stage)
                if reasons.isEmpty { reasons = ["key format changed"] }
            } else {
                reasons = ["new"]
            }
        }
        return Decision(key: key, flat: flat, reasons: reasons)
    }

    // MARK: plan

    /// For every selected stage in execution order: cached, or will run and why. Writes nothing.
    public func plan() throws -> [PlannedStage] {
        let stages = try selectedStages()
        let forced = forcedStages()
        var outputs: [String: String] = [:]
        var pending = Set<String>()
        var planned: [PlannedStage] = []
        for (i, stage) in stages.enumerated() {
            let decision = try decide(stage, outputs: outputs, pending: pending, forced: forced)
            if let record = decision.record { outputs[stage.name] = record.outputDigest } else { pending.insert(stage.name) }
            planned.append(PlannedStage(name: stage.name, kind: stage.kind, index: i + 1, total: stages.count,
                                        status: decision.record == nil ? .willRun : .cached, reasons: decision.reasons, key: decision.key))
        }
        return planned
    }

    // MARK: run

    /// Runs what `plan` says, in order; throws `CacheError.stageFailed` / `.interrupted` on the
    /// first failing stage (which publishes nothing). A run record is written either way.
    public func run() throws -> RunSummary {
        // `load` refuses unsafe destinations; checked again for the cache this runner really uses.
        if let issue = PublishSafety.issues(pipelineName: pipeline.name, stages: pipeline.stages, pipelineDirectory: pipeline.directory,
                                            cacheDirectory: store.root, shownDirectory: Publisher.shown(pipeline.directory) + "/").first {
            throw CacheError.unsafeDestination(field: issue.shownPath, message: issue.message)
        }
        try store.prepare()
        let storeLock = try store.lockStore(exclusive: false)
        defer { withExtendedLifetime(storeLock) {} }
        store.sweepScratch()
        if options.publishes { recoverPublishLeftovers() }
        let stages = try selectedStages()
        let forced = forcedStages()
        let started = Date()
        var outputs: [String: String] = [:]
        var directories: [String: URL] = [:]
        var records: [String: ActionRecord] = [:]
        var made: [String: (key: String, flat: [String: String], prefix: String)] = [:]
        var outcomes: [StageOutcome] = []
        var repaired = false  // a quarantine drops materialised artifacts: earlier outcomes' directories are rebuilt at the end
        var running: (stage: String, key: String)? = nil
        let recordURL = store.runs.appendingPathComponent(String(format: "%013lld-%d.json", Int64(started.timeIntervalSince1970 * 1000), getpid()))
        // Written before each stage runs (naming it incomplete, so even a kill -9 leaves a record
        // that keeps its work/ checkpoints from `cache gc`) and once more at the end, either way.
        var finished = false, ending = false
        func writeRecord() {
            var record = RunRecord(pipeline: pipeline.name, pipelineDigest: pipeline.digest, toolVersion: options.toolVersion,
                                   startedAt: ISO8601DateFormatter().string(from: started),
                                   stages: outcomes.map { .init(name: $0.name, key: $0.key, outputDigest: $0.outputDigest, cached: $0.cached, seconds: $0.seconds,
                                                                kind: $0.kind, summary: $0.summary, published: $0.published.map(\.path)) },
                                   incomplete: running)
            record.context = options.context
            record.context["seconds"] = .number(Date().timeIntervalSince(started))
            // ok; interrupted (Ctrl-C) or failed while a stage ran; or still running (a kill -9 leaves that).
            record.context["status"] = .string(finished ? "ok" : !ending ? "running" : Interrupt.isInterrupted ? "interrupted" : "failed")
            try? AtomicFile.write(json: record.json, to: recordURL)
        }
        defer { ending = true; writeRecord() }
        /// Re-hashes a finished stage's output; when damaged, repairs its inputs first, then
        /// recomputes it (its damaged objects are quarantined by `verifyObjects`).
        func repairIfDamaged(_ name: String) throws {
            guard let record = records[name], let how = made[name], let stage = pipeline.stage(named: name) else { return }
            let bad = try store.verifyObjects(record)
            guard let first = bad.first else { return }
            log("warning: \(name): cached object \(first.prefix(12))… is missing or does not match its SHA-256 (quarantined); running '\(name)' again")
            for upstream in Set(stage.references.values).sorted() {
                try repairIfDamaged(upstream)
                if let input = records[upstream] { directories[upstream] = try store.materialize(input) }
            }
            let redone = try recompute(stage, key: how.key, flat: how.flat, expected: record.outputDigest, directories: directories, prefix: how.prefix)
            records[name] = redone
            directories[name] = try store.materialize(redone)
            repaired = true
        }
        for (i, stage) in stages.enumerated() {
            let clock = DispatchTime.now().uptimeNanoseconds
            let decision = try decide(stage, outputs: outputs, pending: [], forced: forced)
            guard let key = decision.key else { continue }  // unreachable: upstream outcomes are known
            let prefix = "[\(i + 1)/\(stages.count)] \(stage.name)"
            var record = decision.record
            var reasons = decision.reasons
            let collective = options.collectiveKinds.contains(stage.kind) ? options.agreeToRun : nil
            if let agree = collective, try agree(record == nil), record != nil {
                record = nil
                reasons = ["another process of the job has no cached result and runs it with this one"]
            }
            let cached = record != nil
            if record == nil {
                if reasons.contains(where: { $0.hasPrefix("cache ") }) {
                    log("warning: \(stage.name): the cached output is missing or corrupt (\(key.prefix(12))…); running the stage again")
                }
                log("\(prefix): running — " + reasons.joined(separator: "; "))
                let keyLock = try store.lockKey(key)
                // Another process may have finished this key while we waited for the lock (not taken
                // by a stage run together with partners, who are waiting for this process).
                if !forced.contains(stage.name), collective == nil, let done = try? store.actionRecord(key), store.objectsPresent(done) {
                    record = done
                    log("\(prefix): finished by another process")
                } else {
                    // The stage is about to read its inputs: check them against their content address.
                    for upstream in Set(stage.references.values).sorted() {
                        try repairIfDamaged(upstream)
                        if let input = records[upstream] { directories[upstream] = try store.materialize(input) }
                    }
                    running = (stage.name, key)
                    writeRecord()
                    record = try execute(stage, key: key, flat: decision.flat, directories: directories, prefix: prefix)
                    running = nil
                }
                withExtendedLifetime(keyLock) {}
            }
            guard var record else { continue }
            try store.write(StageRecord(stage: stage.name, key: key, material: decision.flat), pipeline: pipeline.name)
            var published: [URL]
            do {
                published = try publish(stage, key: key, record: record)
            } catch CacheError.corruptObject {
                // Publishing hashes what it copies; a damaged object is never published.
                records[stage.name] = record
                made[stage.name] = (key, decision.flat, prefix)
                try repairIfDamaged(stage.name)
                record = records[stage.name] ?? record
                published = try publish(stage, key: key, record: record)
            }
            let directory = try store.materialize(record)
            records[stage.name] = record
            made[stage.name] = (key, decision.flat, prefix)
            // One clock per stage: from deciding (hashing its inputs) to published; the same number
            // in this line, the summary and the run record. What is not the stage's own work is named.
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
            outputs[stage.name] = record.outputDigest
            directories[stage.name] = directory
            if cached {
                log("\(prefix): cached (\(String(format: "%.2f", seconds))s)")
                for line in record.report { log("  \(stage.name): \(line)") }
            } else {
                let overhead = seconds - record.seconds
                let split = overhead >= 0.5 ? String(format: ": %.2fs in the stage, %.2fs hashing inputs and storing outputs", record.seconds, overhead) : ""
                log("\(prefix): done (\(String(format: "%.2f", seconds))s\(split))")
            }
            outcomes.append(StageOutcome(name: stage.name, kind: stage.kind, cached: cached, seconds: seconds,
                                         key: key, outputDigest: record.outputDigest, outputDirectory: directory,
                                         published: published, summary: record.summary, reasons: reasons))
        }
        if repaired {
            for i in outcomes.indices { if let record = records[outcomes[i].name] { outcomes[i].outputDirectory = try store.materialize(record) } }
        }
        finished = true
        return RunSummary(stages: outcomes, runRecord: recordURL)
    }

    /// Runs a stage again whose cached output was found damaged. Stages are deterministic, so the
    /// output must have the same digest (downstream keys were computed from it); if not, the new
    /// record is committed and the user is asked to run again, which then sees consistent keys.
    func recompute(_ stage: PipelineStage, key: String, flat: [String: String], expected: String,
                   directories: [String: URL], prefix: String) throws -> ActionRecord {
        let keyLock = try store.lockKey(key)
        defer { withExtendedLifetime(keyLock) {} }
        let redone = try execute(stage, key: key, flat: flat, directories: directories, prefix: prefix)
        guard redone.outputDigest == expected else {
            throw CacheError.stageFailed(stage: stage.name, message:
                "re-running it after repairing its cached output gave different bytes (\(redone.outputDigest.prefix(12))… instead of \(expected.prefix(12))…); run the pipeline again")
        }
        return redone
    }

    /// Runs one stage in scratch; on success ingests the output and commits the action record.
    func execute(_ stage: PipelineStage, key: String, flat: [String: String], directories: [String: URL], prefix: String) throws -> ActionRecord {
        guard let runner = registry.runner(for: stage.kind) else { throw CacheError.unknownKind(stage: stage.name, kind: stage.kind) }
        let scratch = try store.makeScratch(key: key)
        defer { CacheStore.removeTree(scratch) }
        let work = store.workURL(key)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let logFile = StageLogFile(url: store.logURL(key))
        let sink = log
        let name = stage.name
        var statusLine: (@Sendable (String) -> Void)? = nil
        if let status = progress { statusLine = { line in status("  \(name): \(line)") } }
        var inputs: [String: URL] = [:]
        for (field, upstream) in stage.references { inputs[field] = directories[upstream] }
        let context = StageContext(
            stageName: stage.name, kind: stage.kind, fields: .object(stage.fields), inputs: inputs,
            inputPaths: stage.inputPaths.mapValues { URL(fileURLWithPath: $0, relativeTo: pipeline.directory).standardizedFileURL },
            outputDirectory: scratch, workDirectory: work, pipelineDirectory: pipeline.directory, seed: pipeline.seed,
            log: { line in logFile.write(line); sink("  \(name): \(line)") },
            isInterrupted: { Interrupt.isInterrupted },
            progress: statusLine,
            record: { line in logFile.write(line) },
            logFile: store.logURL(key))
        let clock = DispatchTime.now().uptimeNanoseconds
        let result: StageResult
        do {
            result = try runner.run(context)
        } catch is StageInterrupted {
            logFile.write("interrupted")
            throw CacheError.interrupted(stage: stage.name)
        } catch {
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            logFile.write("failed: \(message)")
            throw CacheError.stageFailed(stage: stage.name, message: message)
        }
        if Interrupt.isInterrupted { throw CacheError.interrupted(stage: stage.name) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        let manifest = try store.ingest(directory: scratch)
        CrashPoint.here("ingest")
        let record = ActionRecord(stage: stage.name, kind: stage.kind, key: key, outputDigest: ContentDigest.manifestDigest(manifest),
                                  files: manifest, material: flat, summary: result.summary, seconds: seconds, report: result.report)
        try store.write(record)  // the commit point
        CrashPoint.here("commit")
        CacheStore.removeTree(work)
        return record
    }

    /// Publishes the artifact to each x-output-path destination (see `Publisher`), unless the
    /// destination already holds exactly these bytes.
    func publish(_ stage: PipelineStage, key: String, record: ActionRecord) throws -> [URL] {
        guard options.publishes else { return [] }
        let publisher = Publisher(store: store, pipelineName: pipeline.name)
        var published: [URL] = []
        for field in stage.outputPaths.keys.sorted() {
            guard let text = stage.outputPaths[field] else { continue }
            let destination = URL(fileURLWithPath: text, relativeTo: pipeline.directory).standardizedFileURL
            published.append(destination)
            let copied = stage.publishesFile(field)
                ? try publisher.publishFile(stage: stage.name, key: key, record: record, to: destination)
                : try publisher.publish(stage: stage.name, key: key, record: record, to: destination)
            if copied {
                log("  \(stage.name): published \(Publisher.shown(destination))")
            }
        }
        return published
    }

    /// Repairs what killed publishes of this pipeline left beside its destinations.
    func recoverPublishLeftovers() {
        for stage in pipeline.stages {
            for text in stage.outputPaths.values.sorted() {
                let destination = URL(fileURLWithPath: text, relativeTo: pipeline.directory).standardizedFileURL
                for line in PublishSafety.recoverLeftovers(of: destination) { log("note: \(stage.name): \(line)") }
            }
        }
    }
}
