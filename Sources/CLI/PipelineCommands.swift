import Foundation
import PipelineCore
import Stages
import Distributed

/// run / plan / validate / cache: YAML -> --set overrides -> JSON Schema -> graph -> executor.
struct PipelineCommands {
    let console: Console
    var world: any Collective = SingleProcess()

    /// Problems found before anything runs (exit 2), printed compiler-style.
    struct Invalid: Error { var diagnostics: [Diagnostic] }

    func run(_ invocation: Invocation) throws -> ExitCode {
        do {
            switch invocation.command {
            case .validate(let file, let schemaFile?):
                return try validateAgainst(file: file, schemaFile: schemaFile, sets: invocation.sets)
            case .validate(let file, nil):
                let pipeline = try load(file, invocation)
                console.print("\(file): valid (\(pipeline.stages.count) stages: \(pipeline.stages.map(\.name).joined(separator: " -> ")))")
                return .ok
            case .plan(let file):
                let runs = try plannedRuns(file, invocation)
                if runs.count == 1 && runs[0].point == nil {
                    let runner = try makeRunner(runs[0], invocation)
                    for stage in try runner.plan() { console.print(stage.line) }
                    return .ok
                }
                return try planSweep(runs, invocation)
            case .run(let file):
                if invocation.json { return try runForJSON(file, invocation) }
                let runs = try plannedRuns(file, invocation)
                if runs.count == 1 && runs[0].point == nil { return try runPipeline(runs[0], file: file, invocation) }
                return try runSweep(runs, invocation)
            case .runs(let options):
                return try RunsCommands(console: console, invocation: invocation).run(options)
            case .reproduce(let id):
                return try reproduce(id, invocation)
            case .cache(let action, let file):
                return try cache(action, file: file, invocation)
            case .generate(var g) where g.pipeline != nil:
                // The model exactly as a stage produced it (the NF4 base with its trained adapters).
                let runner = try makeRunner(g.pipeline ?? "", invocation)
                let planned = try runner.plan()
                let modelKinds: Set<String> = ["train", "attach_adapters", "quantize", "load_checkpoint"]
                guard let stage = g.stage.map({ name in planned.first { $0.name == name } }) ?? planned.last(where: { modelKinds.contains($0.kind) }) else {
                    console.error(g.stage.map { "no stage '\($0)' in \(g.pipeline ?? ""); stages: \(planned.map(\.name).joined(separator: ", "))" }
                                  ?? "\(g.pipeline ?? "") has no stage that produces a model")
                    return .invalidInput
                }
                guard modelKinds.contains(stage.kind) else {
                    console.error("stage '\(stage.name)' (\(stage.kind)) does not produce a model; name a train, attach_adapters, quantize or load_checkpoint stage")
                    return .invalidInput
                }
                guard stage.status == .cached, let key = stage.key, let record = try runner.store.actionRecord(key) else {
                    console.error("stage '\(stage.name)' has not run with this configuration (\(stage.reasons.joined(separator: "; "))); run the pipeline first")
                    return .invalidInput
                }
                g.model = runner.store.artifactURL(record.outputDigest).path
                g.pipeline = nil
                var direct = invocation
                direct.command = .generate(g)
                return try EngineCommands(console: console).run(direct)
            default:
                return try EngineCommands(console: console).run(invocation)
            }
        } catch let error as Invalid {
            return report(error)
        } catch let error as CacheError {
            return report(error)
        }
    }

    /// Prints a pipeline error on stderr and names its exit code (ExitCode(for:)).
    func report(_ error: Error) -> ExitCode {
        if let invalid = error as? Invalid {
            for d in invalid.diagnostics { FileHandle.standardError.write(Data((d.description + "\n").utf8)) }
            let n = invalid.diagnostics.count
            console.error("\(n) problem\(n == 1 ? "" : "s") found; nothing was run")
        } else {
            console.error((error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        return ExitCode(for: error)
    }

    // MARK: loading

    func read(_ file: String) throws -> Document {
        let url = URL(fileURLWithPath: file)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw Invalid(diagnostics: [Diagnostic(location: nil, message: "\(file): no such file")])
        }
        guard !isDirectory.boolValue else {
            throw Invalid(diagnostics: [Diagnostic(location: nil, message: "\(file): is a directory; give the pipeline's YAML or JSON file")])
        }
        do {
            if file.hasSuffix(".json") {
                return try JSONReader.document(bytes: Array(try Data(contentsOf: url)), displayName: file)
            }
            return try YAMLReader.read(contentsOf: url, displayName: file)
        } catch let list as DiagnosticList {
            throw Invalid(diagnostics: list.diagnostics)
        }
    }

    func overridden(_ document: Document, _ sets: [String]) throws -> Document {
        guard !sets.isEmpty else { return document }
        do { return try Overrides.apply(sets, to: document) } catch let list as DiagnosticList { throw Invalid(diagnostics: list.diagnostics) }
    }

    func load(_ file: String, _ invocation: Invocation) throws -> Pipeline {
        try build(try overridden(try read(file), invocation.sets), file: file, invocation).pipeline
    }

    static func schema() throws -> (value: JSONValue, schema: JSONSchema) {
        let schemaValue = try JSONReader.read(text: EmbeddedSchema.text, displayName: "pipeline.schema.json")
        return (schemaValue, try JSONSchema(schemaValue))
    }

    /// Schema and graph checks of one document; the pipeline and the validated value (defaults filled).
    func build(_ document: Document, file: String, _ invocation: Invocation) throws -> (pipeline: Pipeline, value: JSONValue) {
        let (schemaValue, schema) = try Self.schema()
        let (value, diagnostics) = schema.validate(document)
        let order = document.root.child("stages")?.entries?.map(\.key) ?? []
        let (pipeline, issues) = Pipeline.load(value: value, schema: schemaValue, file: URL(fileURLWithPath: file),
                                               displayName: file, stageOrder: order,
                                               cacheOverride: invocation.cacheDirectory.map { URL(fileURLWithPath: $0) },
                                               phrases: ArtifactPhrases.phrasing)
        if !issues.isEmpty || !diagnostics.isEmpty {
            // Schema and graph problems together, sorted by position, like a compiler.
            var diagnostics = diagnostics
            for issue in issues {
                let location = issue.atKey ? document.keyLocation(of: issue.path) : document.location(of: issue.path)
                diagnostics.append(Diagnostic(location: location, path: issue.shownPath, message: issue.message))
            }
            diagnostics.sort { a, b in
                let x = a.location.map { [$0.line, $0.column] } ?? [0, 0], y = b.location.map { [$0.line, $0.column] } ?? [0, 0]
                return x.lexicographicallyPrecedes(y)
            }
            throw Invalid(diagnostics: diagnostics)
        }
        guard let pipeline else { throw Invalid(diagnostics: [Diagnostic(location: nil, message: "\(file): the pipeline could not be built")]) }
        return (pipeline, value)
    }

    func validateAgainst(file: String, schemaFile: String, sets: [String]) throws -> ExitCode {
        let document = try overridden(try read(file), sets)
        let schemaDocument = try read(schemaFile)
        let schema: JSONSchema
        do { schema = try JSONSchema(schemaDocument.value) } catch {
            throw Invalid(diagnostics: [Diagnostic(location: nil, message: "\(schemaFile): \(error.localizedDescription)")])
        }
        let diagnostics = schema.validate(document).diagnostics
        if !diagnostics.isEmpty { throw Invalid(diagnostics: diagnostics) }
        console.print("\(file): valid against \(schemaFile)")
        return .ok
    }

    func makeRunner(_ file: String, _ invocation: Invocation) throws -> PipelineRunner {
        try makeRunner(PlannedRun(point: nil, pipeline: try load(file, invocation), manifest: .null, file: file), invocation)
    }

    func makeRunner(_ planned: PlannedRun, _ invocation: Invocation) throws -> PipelineRunner {
        let pipeline = planned.pipeline
        let console = self.console
        var statusLine: (@Sendable (String) -> Void)? = nil
        if let status = console.status { statusLine = { status.update($0) } }
        var options = RunOptions(force: invocation.force, only: invocation.only, toolVersion: toolVersion, context: planned.context(invocation))
        var cache = invocation.cacheDirectory.map { URL(fileURLWithPath: $0) } ?? pipeline.cacheDirectory
        if world.isDistributed {
            // N ranks train with N times the micro-batches per step: another result, another key.
            options.extraKeyFields["train"] = ["world_size": .integer(Int64(world.size))]
            // All ranks train together, or none does (a rank's cache may hold the result when another's does not).
            options.collectiveKinds = ["train"]
            let world = self.world
            options.agreeToRun = { try world.any($0) }
            if world.rank > 0 {
                // Its own cache (rank 0's plus `.rank<r>`): on a shared filesystem the ranks never wait
                // on each other's stage locks, and only rank 0 publishes.
                cache = URL(fileURLWithPath: cache.standardizedFileURL.path + ".rank\(world.rank)")
                options.publishes = false
            }
        }
        return PipelineRunner(pipeline: pipeline, registry: StageKinds.registry(collective: world), cacheDirectory: cache,
                              options: options, log: { console.print($0) }, progress: statusLine)
    }

    // MARK: run

    func runPipeline(_ planned: PlannedRun, file: String, _ invocation: Invocation) throws -> ExitCode {
        let runner = try makeRunner(planned, invocation)
        Interrupt.install()
        let started = Date()
        let summary = try runner.run()
        console.status?.finish()
        printSummary(summary, seconds: Date().timeIntervalSince(started))
        return .ok
    }

    /// `run --json`: the human log (and summary) on stderr, one JSON document on stdout — the run,
    /// or `{"status": "failed"|"interrupted"|"invalid", "error": ...}` with the same exit code.
    func runForJSON(_ file: String, _ invocation: Invocation) throws -> ExitCode {
        let logging = PipelineCommands(console: Console(logToStandardError: true), world: world)
        var plain = invocation
        plain.json = false
        let started = Date()
        do {
            let runs = try logging.plannedRuns(file, plain)
            if runs.count > 1 || runs.first?.point != nil {
                var documents: [JSONValue] = []
                let code = try logging.runSweep(runs, plain, documents: &documents)
                console.document(CanonicalJSON.string(.object(["pipeline_file": .string(file), "status": .string(code == .ok ? "ok" : "failed"),
                                                              "points": .array(documents), "exit_code": .integer(Int64(code.rawValue))])))
                return code
            }
            let runner = try logging.makeRunner(runs[0], plain)
            Interrupt.install()
            let summary = try runner.run()
            logging.console.status?.finish()
            let seconds = Date().timeIntervalSince(started)
            logging.printSummary(summary, seconds: seconds)
            console.document(CanonicalJSON.string(Self.json(summary, pipeline: runner.pipeline.name, seconds: seconds)))
            return .ok
        } catch {
            let code = logging.report(error)
            let status = code == .interrupted ? "interrupted" : code == .invalidInput ? "invalid" : "failed"
            let message = (error as? Invalid).map { $0.diagnostics.map(\.description).joined(separator: "\n") }
                ?? (error as? LocalizedError)?.errorDescription ?? "\(error)"
            console.document(CanonicalJSON.string(.object(["pipeline_file": .string(file), "status": .string(status),
                                                          "error": .string(message), "exit_code": .integer(Int64(code.rawValue))])))
            return code
        }
    }

    /// The closing table, made to fit a terminal: what was published first, then one row per stage
    /// (its time is the one its `done`/`cached` line gave) with its artifact as a path relative to
    /// here and a 12-hex digest like git's; `cache ls` and the run record keep the full paths.
    func printSummary(_ summary: RunSummary, seconds: Double) {
        console.print("")
        console.print(console.styled("summary", "1") + " (\(summary.executedCount) ran, \(summary.stages.count - summary.executedCount) cached, \(String(format: "%.2f", seconds))s)")
        for s in summary.stages {
            for url in s.published { console.print("  published \(DisplayPath.shown(url)) (\(s.name))") }
        }
        let width = summary.stages.map(\.name.count).max() ?? 0
        for s in summary.stages {
            let status = s.cached ? console.styled("cached", "32") : console.styled("ran   ", "33")
            let name = s.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let location = s.published.first.map { DisplayPath.shown($0) }
                ?? DisplayPath.shown(s.outputDirectory.deletingLastPathComponent()) + "/" + s.outputDigest.prefix(12) + "…"
            console.print("  \(name)  \(status)  \(String(format: "%7.2fs", s.seconds))  \(location)")
            // Headline metrics, wrapped to fit 120 columns.
            var line = ""
            for part in s.summary.keys.sorted().map({ "\($0) \(Self.short(s.summary[$0] ?? .null))" }) {
                if !line.isEmpty && 6 + line.count + 3 + part.count > 120 { console.print("      " + line); line = "" }
                line += (line.isEmpty ? "" : " · ") + part
            }
            if !line.isEmpty { console.print("      " + line) }
        }
        console.print("run record: \(DisplayPath.shown(summary.runRecord))")
    }

    /// `run --json`: the run as one JSON document (stages, status, keys, full paths, headline metrics).
    static func json(_ summary: RunSummary, pipeline: String, seconds: Double) -> JSONValue {
        .object([
            "pipeline": .string(pipeline), "status": .string("ok"), "seconds": .number(seconds),
            "ran": .integer(Int64(summary.executedCount)), "cached": .integer(Int64(summary.stages.count - summary.executedCount)),
            "run_record": .string(summary.runRecord.path),
            "stages": .array(summary.stages.map { s in
                .object(["name": .string(s.name), "kind": .string(s.kind), "status": .string(s.cached ? "cached" : "ran"),
                         "seconds": .number(s.seconds), "key": .string(s.key), "output_digest": .string(s.outputDigest),
                         "artifact": .string(s.outputDirectory.path), "published": .array(s.published.map { .string($0.path) }),
                         "metrics": .object(s.summary), "reasons": .array(s.reasons.map { .string($0) })])
            }),
        ])
    }

    static func short(_ v: JSONValue) -> String {
        switch v {
        case .number(let d): return String(format: abs(d) >= 100 ? "%.1f" : "%.4g", d)
        case .integer(let i): return "\(i)"
        case .string(let s): return s
        case .bool(let b): return "\(b)"
        case .null: return "null"
        case .array, .object: return String(decoding: CanonicalJSON.data(v), as: UTF8.self)
        }
    }

    // MARK: cache

    func cache(_ action: Invocation.CacheAction, file: String?, _ invocation: Invocation) throws -> ExitCode {
        let root: URL
        if let dir = invocation.cacheDirectory { root = URL(fileURLWithPath: dir) }
        else if let file { root = try load(file, invocation).cacheDirectory }
        else { root = URL(fileURLWithPath: ".qlora") }
        let store = CacheStore(root: root)
        guard FileManager.default.fileExists(atPath: root.path) else {
            console.print("\(root.path): no cache yet"); return .ok
        }
        switch action {
        case .ls:
            let entries = try store.list()
            for e in entries {
                console.print("\(e.key.prefix(12))  \(e.stage.padding(toLength: 12, withPad: " ", startingAt: 0)) \(e.kind.padding(toLength: 16, withPad: " ", startingAt: 0)) \(Self.bytes(e.bytes))  \(String(format: "%.2fs", e.seconds))  \(store.artifactURL(e.outputDigest).standardizedFileURL.path)")
            }
            console.print("\(entries.count) entries in \(root.path)")
        case .verify:
            let report = try store.verify()
            for q in report.quarantined { console.warning("corrupt object quarantined: \(q) (its stage will re-run)") }
            for a in report.incompleteActions { console.warning("incomplete action record: \(a)") }
            for a in report.staleActions { console.warning("action record \(a) was built on a repaired output: removed, its stage will re-run") }
            console.print("checked \(report.objectsChecked) objects: " + (report.isClean ? "all good" : "problems found"))
            return report.isClean ? .ok : .stageFailed
        case .gc:
            let report = try store.gc(keepRuns: invocation.keep, dryRun: invocation.dryRun)
            for name in report.unreadableRuns {
                console.print("warning: run record \(name) is unreadable; kept, and not counted as a kept run (delete it by hand if it is garbage)")
            }
            console.print("\(invocation.dryRun ? "would remove" : "removed") \(report.removedActions.count) actions, \(report.removedObjects) objects, \(report.removedRuns) run records, \(report.removedWork) abandoned work directories (\(Self.bytes(report.freedBytes)))")
        }
        return .ok
    }

    static func bytes(_ n: Int64) -> String {
        n >= 1 << 20 ? String(format: "%.1f MB", Double(n) / 1048576) : String(format: "%.1f KB", Double(n) / 1024)
    }
}
