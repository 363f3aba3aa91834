import Foundation
import PipelineCore
import Stages

/// One run to make: a validated pipeline, the sweep point it is (nil without a sweep) and its
/// manifest (the validated document, defaults filled), which the run record keeps.
struct PlannedRun {
    var point: SweepPoint?
    var pipeline: Pipeline
    var manifest: JSONValue
    var file: String
    /// `reproduce`: the context of the run being reproduced, kept as it was.
    var recordedContext: [String: JSONValue]? = nil

    /// What the run record keeps to list, compare and reproduce the run.
    func context(_ invocation: Invocation) -> [String: JSONValue] {
        if let recordedContext { return recordedContext }
        var context: [String: JSONValue] = [
            "pipeline_file": .string(pipeline.file.standardizedFileURL.path),
            "overrides": .array(invocation.sets.map { .string($0) }),
            "parameters": .object(parameters),
        ]
        if manifest != .null { context["manifest"] = manifest }
        if let point {
            context["point"] = .string(point.name)
            var values: [String: JSONValue] = [:]
            for value in point.values { values[value.path.joined(separator: ".")] = value.node.value }
            context["sweep"] = .object(values)
        }
        return context
    }

    /// Every stage field (defaults filled, destinations left out) and the seed, as
    /// `stages.train.lr` -> the value's canonical JSON: what `runs` compares between runs.
    var parameters: [String: JSONValue] {
        var flat: [String: JSONValue] = ["seed": .string(String(pipeline.seed))]
        func walk(_ value: JSONValue, _ path: String) {
            if case .object(let members) = value, !members.isEmpty {
                for (k, v) in members { walk(v, path + "." + k) }
            } else {
                flat[path] = .string(CanonicalJSON.string(value))
            }
        }
        for stage in pipeline.stages {
            for (field, value) in stage.fields where field != "kind" && stage.outputPaths[field] == nil {
                walk(value, "stages.\(stage.name).\(field)")
            }
        }
        return flat
    }
}

extension PipelineCommands {
    /// The runs a manifest asks for: one, or one per sweep point (file `sweep:` plus `--sweep`), every
    /// point validated before anything runs (a problem written once is reported once).
    func plannedRuns(_ file: String, _ invocation: Invocation) throws -> [PlannedRun] {
        var document = try overridden(try read(file), invocation.sets)
        do { document = try Sweep.merging(invocation.sweeps, into: document) } catch { throw Invalid(diagnostics: error.diagnostics) }
        guard document.root.entry("sweep") != nil else {
            let built = try build(document, file: file, invocation)
            return [PlannedRun(point: nil, pipeline: built.pipeline, manifest: built.value, file: file)]
        }
        let (schemaValue, schema) = try Self.schema()
        // The sweep's shape (schema) and its paths, zip lengths and size, all reported together.
        var structural = schema.validate(document).diagnostics
        var points: [SweepPoint] = []
        do { points = try Sweep.points(of: document) ?? [] } catch { structural += error.diagnostics }
        if !structural.isEmpty { throw Invalid(diagnostics: Self.sorted(structural)) }
        let kinds = StageKindInfo.all(in: schemaValue)
        var runs: [PlannedRun] = [], problems: [Diagnostic] = [], seen = Set<String>()
        for point in points {
            do {
                let pointDocument = try Sweep.document(for: point, of: document, outputFields: { kinds[$0]?.outputPaths ?? [] })
                let built = try build(pointDocument, file: file, invocation)
                runs.append(PlannedRun(point: point, pipeline: built.pipeline, manifest: built.value, file: file))
            } catch let list as DiagnosticList {
                for d in list.diagnostics where seen.insert(d.description).inserted { problems.append(d) }
            } catch let invalid as Invalid {
                for d in invalid.diagnostics where seen.insert(d.description).inserted { problems.append(d) }
            }
        }
        if !problems.isEmpty { throw Invalid(diagnostics: Self.sorted(problems)) }
        return runs
    }

    static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.sorted { ($0.location?.line ?? 0, $0.location?.column ?? 0) < ($1.location?.line ?? 0, $1.location?.column ?? 0) }
    }

    /// A stage's identity across points without running anything: equal signatures give equal keys
    /// (same kind, fields and seed, and upstream stages that are equal in turn; inputs are the same files).
    static func signatures(_ pipeline: Pipeline) -> [String: String] {
        var result: [String: String] = [:]
        for stage in pipeline.stages {  // topological order: upstream signatures exist
            var fields = stage.fields
            for field in stage.outputPaths.keys { fields[field] = nil }
            for (field, upstream) in stage.references { fields[field] = .string(result[upstream] ?? upstream) }
            let material: JSONValue = .object(["kind": .string(stage.kind), "version": .integer(Int64(stage.info.implementationVersion)),
                                               "seed": .string(String(pipeline.seed)), "fields": .object(fields)])
            result[stage.name] = SHA256.hex(CanonicalJSON.data(material))
        }
        return result
    }

    /// `plan` of a sweep: every point and its stages; a stage an earlier point runs is shared.
    func planSweep(_ runs: [PlannedRun], _ invocation: Invocation) throws -> ExitCode {
        var firstRunBy: [String: Int] = [:]
        var runsCount = 0, shared = 0
        for (i, run) in runs.enumerated() {
            console.print("point \(i + 1)/\(runs.count): \(run.point?.name ?? "")")
            let signatures = Self.signatures(run.pipeline)
            for stage in try makeRunner(run, invocation).plan() {
                let signature = signatures[stage.name] ?? stage.name
                if stage.status == .willRun, let first = firstRunBy[signature] {
                    console.print("  [\(stage.index)/\(stage.total)] \(stage.name): shared with point \(first + 1) (runs once)")
                    shared += 1
                } else {
                    console.print("  " + stage.line)
                    if stage.status == .willRun { firstRunBy[signature] = i; runsCount += 1 }
                }
            }
        }
        console.print("\(runs.count) points: \(runsCount) stage runs, \(shared) shared with an earlier point")
        return .ok
    }

    func runSweep(_ runs: [PlannedRun], _ invocation: Invocation) throws -> ExitCode {
        var documents: [JSONValue] = []
        return try runSweep(runs, invocation, documents: &documents)
    }

    /// Runs every point in order; a failing point is reported and the others still run; Ctrl-C stops
    /// the sweep (a new run resumes: finished points are cached, an interrupted train resumes).
    func runSweep(_ runs: [PlannedRun], _ invocation: Invocation, documents: inout [JSONValue]) throws -> ExitCode {
        Interrupt.install()
        var rows: [(name: String, status: String, detail: String)] = []
        let started = Date()
        for (i, run) in runs.enumerated() {
            let name = run.point?.name ?? ""
            console.print((i == 0 ? "" : "\n") + console.styled("point \(i + 1)/\(runs.count): \(name)", "1"))
            let pointStarted = Date()
            do {
                let summary = try makeRunner(run, invocation).run()
                console.status?.finish()
                let seconds = Date().timeIntervalSince(pointStarted)
                printSummary(summary, seconds: seconds)
                var document = Self.json(summary, pipeline: run.pipeline.name, seconds: seconds)
                if case .object(var fields) = document { fields["point"] = .string(name); document = .object(fields) }
                documents.append(document)
                rows.append((name, "ok", Self.headline(summary)))
            } catch {
                console.status?.finish()
                let code = report(error)
                let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                documents.append(.object(["point": .string(name), "status": .string(code == .interrupted ? "interrupted" : "failed"), "error": .string(message)]))
                if code == .interrupted {
                    console.error("sweep stopped at point \(i + 1) of \(runs.count) (\(name)); run the same command again to resume")
                    return .interrupted
                }
                rows.append((name, "failed", message))
            }
        }
        let failed = rows.filter { $0.status != "ok" }.count
        console.print("")
        console.print(console.styled("sweep", "1") + " (\(runs.count) points, \(runs.count - failed) ok, \(failed) failed, \(String(format: "%.2f", Date().timeIntervalSince(started)))s)")
        let width = rows.map(\.name.count).max() ?? 0
        for row in rows {
            console.print("  \(row.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(row.status == "ok" ? "ok    " : "FAILED")  \(row.detail)")
        }
        return failed > 0 ? .stageFailed : .ok
    }

    /// The metrics a person compares points by: train's final loss, evaluate's loss and exact match.
    static func headline(_ summary: RunSummary) -> String {
        var parts: [String] = []
        for s in summary.stages {
            if s.kind == "train", let loss = s.summary["loss_final"]?.doubleValue { parts.append(String(format: "train loss %.4f", loss)) }
            if s.kind == "evaluate" {
                if let loss = s.summary["loss"]?.doubleValue { parts.append(String(format: "eval loss %.4f", loss)) }
                if let exact = s.summary["exact_match"]?.doubleValue { parts.append(String(format: "exact match %.3f", exact)) }
            }
        }
        return parts.joined(separator: " · ")
    }
}
