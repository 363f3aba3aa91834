import Foundation
import PipelineCore
import Stages

/// A run record read back from `<cache>/runs/<id>.json`.
struct RecordedRun {
    var id: String
    var record: RunRecord
    var url: URL

    var point: String { record.context["point"]?.stringValue ?? "" }
    var parameters: [String: String] { (record.context["parameters"]?.objectValue ?? [:]).compactMapValues(\.stringValue) }
    func stage(kind: String) -> RunRecord.Stage? { record.stages.last { $0.kind == kind } }

    /// Headline metrics, named as in `runs` columns (absent ones left out).
    var metrics: [String: Double] {
        var m: [String: Double] = [:]
        if let train = stage(kind: "train")?.summary {
            m["train_loss"] = train["loss_final"]?.doubleValue
            m["tokens_per_s"] = train["tokens_per_second"]?.doubleValue
            m["val_loss"] = train["eval_loss_kept"]?.doubleValue
        }
        if let evaluate = stage(kind: "evaluate")?.summary {
            m["eval_loss"] = evaluate["loss"]?.doubleValue
            m["perplexity"] = evaluate["perplexity"]?.doubleValue
            m["token_accuracy"] = evaluate["token_accuracy"]?.doubleValue
            m["exact_match"] = evaluate["exact_match"]?.doubleValue
        }
        m["seconds"] = record.context["seconds"]?.doubleValue ?? record.stages.reduce(0) { $0 + $1.seconds }
        return m
    }

    static func all(in cache: URL) -> [RecordedRun] {
        let store = CacheStore(root: cache)
        return store.runRecords().readable.map { name, record in
            RecordedRun(id: String(name.dropLast(".json".count)), record: record, url: store.runs.appendingPathComponent(name))
        }
    }
}

/// `runs`: the recorded runs of a pipeline (or of a cache) as a table, their differences, their curves.
struct RunsCommands {
    let console: Console
    let invocation: Invocation
    static let metricColumns = ["train_loss", "val_loss", "eval_loss", "perplexity", "token_accuracy", "exact_match", "tokens_per_s", "seconds"]
    /// Short headers of the text table (JSON and CSV use the full metric names).
    static let columnLabels = ["train_loss": "train", "val_loss": "val", "eval_loss": "eval", "perplexity": "ppl",
                               "token_accuracy": "tok_acc", "exact_match": "exact", "tokens_per_s": "tok/s", "seconds": "time"]

    func cacheAndRuns(_ file: String?) throws -> (URL, [RecordedRun]) {
        let commands = PipelineCommands(console: console)
        var cache = invocation.cacheDirectory.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: ".qlora")
        var name: String? = nil
        if let file {
            // Only the name and the cache: the runs of a pipeline are listed whatever its destinations hold now.
            let value = try commands.overridden(try commands.read(file), invocation.sets).value
            let directory = URL(fileURLWithPath: file).deletingLastPathComponent()
            if invocation.cacheDirectory == nil { cache = URL(fileURLWithPath: value["cache"]?.stringValue ?? ".qlora", relativeTo: directory).standardizedFileURL }
            name = value["name"]?.stringValue ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        }
        var runs = RecordedRun.all(in: cache).filter { name == nil || $0.record.pipeline == name }
        // Runs that got as far as a stage (a run refused before any stage has nothing to compare).
        runs = runs.filter { !$0.record.stages.isEmpty }
        return (cache, runs)
    }

    func run(_ options: Invocation.RunsOptions) throws -> ExitCode {
        switch options.action {
        case .list: return try list(options)
        case .diff: return try diff(options)
        case .plot: return try plot(options)
        case .show: return try show(options)
        }
    }

    /// Finds a run by id (or a unique prefix of it) or by point name (its most recent run).
    static func find(_ text: String, in runs: [RecordedRun]) -> RecordedRun? {
        if let exact = runs.first(where: { $0.id == text }) { return exact }
        let prefixed = runs.filter { $0.id.hasPrefix(text) }
        if prefixed.count == 1 { return prefixed[0] }
        return runs.last { $0.point == text }
    }

    /// Parameters whose values differ between the runs (missing counts as a value). Records written
    /// before run records kept parameters have none and are left out of the comparison.
    static func differing(_ runs: [RecordedRun]) -> [String] {
        let compared = runs.filter { !$0.parameters.isEmpty }
        let keys = Set(compared.flatMap { $0.parameters.keys })
        return keys.filter { key in Set(compared.map { $0.parameters[key] ?? "—" }).count > 1 }.sorted()
    }

    static func shortName(_ parameter: String) -> String {
        let parts = parameter.split(separator: ".")
        return parts.count >= 3 && parts[0] == "stages" ? parts.dropFirst(2).joined(separator: ".") : parameter
    }

    static func format(_ metric: String, _ value: Double?) -> String {
        guard let value else { return "—" }
        switch metric {
        case "tokens_per_s": return String(format: "%.0f", value)
        case "seconds": return String(format: "%.1fs", value)
        case "exact_match", "token_accuracy": return String(format: "%.3f", value)
        default: return String(format: "%.4f", value)
        }
    }

    func selected(_ options: Invocation.RunsOptions, _ runs: [RecordedRun]) throws -> [RecordedRun] {
        var runs = runs
        if let last = options.last { runs = Array(runs.suffix(last)) }
        if let metric = options.sort {
            guard Self.metricColumns.contains(metric) else {
                throw PipelineCommands.Invalid(diagnostics: [Diagnostic(location: nil, message:
                    "--sort \(metric): not a metric; one of \(Self.metricColumns.joined(separator: ", "))")])
            }
            runs.sort { ($0.metrics[metric] ?? .infinity) < ($1.metrics[metric] ?? .infinity) }
        }
        return runs
    }

    func list(_ options: Invocation.RunsOptions) throws -> ExitCode {
        let (cache, all) = try cacheAndRuns(options.file)
        let runs = try selected(options, all)
        let parameters = Self.differing(runs)
        let metrics = Self.metricColumns.filter { m in runs.contains { $0.metrics[m] != nil } }
        if invocation.json {
            let document: JSONValue = .object(["cache": .string(cache.standardizedFileURL.path), "runs": .array(runs.map { run in
                .object(["id": .string(run.id), "started_at": .string(run.record.startedAt), "pipeline": .string(run.record.pipeline),
                         "point": run.point.isEmpty ? .null : .string(run.point),
                         "status": run.record.context["status"] ?? .null,
                         "parameters": .object(Dictionary(uniqueKeysWithValues: parameters.map { ($0, run.parameters[$0].map { JSONValue.string($0) } ?? .null) })),
                         "metrics": .object(run.metrics.mapValues { JSONValue.number($0) })])
            })])
            console.document(CanonicalJSON.string(document))
            return .ok
        }
        // A sweep point's name already says its swept values: those get no column of their own.
        let hasPoints = runs.contains { !$0.point.isEmpty }
        // A run that did not finish says so in its own column (its missing metrics are not a result).
        let unfinished = runs.contains { ($0.record.context["status"]?.stringValue ?? "ok") != "ok" }
        let swept = Set(runs.flatMap { ($0.record.context["sweep"]?.objectValue ?? [:]).keys })
        let columns = hasPoints ? parameters.filter { !swept.contains($0) } : parameters
        var header = ["run", "started"] + (hasPoints ? ["point"] : []) + columns.map(Self.shortName) + metrics.map { Self.columnLabels[$0] ?? $0 }
            + (unfinished ? ["status"] : [])
        var rows: [[String]] = runs.map { run in
            var row = [run.id, Self.when(run.record.startedAt)]
            if hasPoints { row.append(run.point.isEmpty ? "—" : run.point) }
            row += columns.map { Self.clip(run.parameters[$0] ?? "—", 16) }
            row += metrics.map { Self.format($0, run.metrics[$0]) }
            if unfinished { row.append(run.record.context["status"]?.stringValue ?? "ok") }
            return row
        }
        if options.csv {
            header = ["run", "started", "point"] + parameters + metrics
            rows = runs.map { run in
                [run.id, run.record.startedAt, run.point] + parameters.map { run.parameters[$0] ?? "" } + metrics.map { run.metrics[$0].map { "\($0)" } ?? "" }
            }
            for row in [header] + rows { console.print(row.map(Self.csvField).joined(separator: ",")) }
            return .ok
        }
        guard !runs.isEmpty else { console.print("no recorded runs in \(DisplayPath.shown(cache))"); return .ok }
        let table = [header] + rows
        let widths: [Int] = header.indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        let leftAligned = hasPoints ? 3 : 2   // run, started (, point): text; parameters and metrics right-aligned
        for row in table {
            var cells: [String] = []
            for c in row.indices {
                let pad = String(repeating: " ", count: widths[c] - row[c].count)
                cells.append(c < leftAligned ? row[c] + pad : pad + row[c])
            }
            console.print(cells.joined(separator: "  "))
        }
        return .ok
    }

    static func when(_ iso: String) -> String {
        // 2026-12-07T02:10:00Z -> 12-07 02:10
        guard iso.count >= 16 else { return iso }
        let s = Array(iso)
        return String(s[5..<10]) + " " + String(s[11..<16])
    }

    static func clip(_ text: String, _ width: Int) -> String { text.count <= width ? text : String(text.prefix(width - 1)) + "…" }

    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    func diff(_ options: Invocation.RunsOptions) throws -> ExitCode {
        let (_, runs) = try cacheAndRuns(nil)
        var pair: [RecordedRun] = []
        for id in options.ids {
            guard let run = Self.find(id, in: runs) else {
                console.error("no run '\(id)' in the cache; `qlora-run runs` lists them (an id, its prefix, or a point name)")
                return .invalidInput
            }
            pair.append(run)
        }
        let (a, b) = (pair[0], pair[1])
        let parameters = Self.differing([a, b])
        if invocation.json {
            console.document(CanonicalJSON.string(.object([
                "a": .string(a.id), "b": .string(b.id),
                "parameters": .object(Dictionary(uniqueKeysWithValues: parameters.map { ($0, JSONValue.array([a.parameters[$0].map { .string($0) } ?? .null, b.parameters[$0].map { .string($0) } ?? .null])) })),
                "metrics": .object(Dictionary(uniqueKeysWithValues: Self.metricColumns.compactMap { m -> (String, JSONValue)? in
                    guard a.metrics[m] != nil || b.metrics[m] != nil else { return nil }
                    return (m, .array([a.metrics[m].map { .number($0) } ?? .null, b.metrics[m].map { .number($0) } ?? .null]))
                })),
            ])))
            return .ok
        }
        console.print("\(a.id)\(a.point.isEmpty ? "" : " (\(a.point))") -> \(b.id)\(b.point.isEmpty ? "" : " (\(b.point))")")
        console.print("parameters:" + (parameters.isEmpty ? " identical" : ""))
        for p in parameters { console.print("  \(p): \(a.parameters[p] ?? "—") -> \(b.parameters[p] ?? "—")") }
        console.print("metrics:")
        let (ma, mb) = (a.metrics, b.metrics)
        for m in Self.metricColumns where ma[m] != nil || mb[m] != nil {
            var delta = ""
            if let x = ma[m], let y = mb[m] { delta = String(format: " (%+.4g)", y - x) }
            let shown = "  \(m): " + Self.format(m, ma[m]) + " -> " + Self.format(m, mb[m])
            console.print(shown + (m == "seconds" ? "" : delta))
        }
        return .ok
    }

    func plot(_ options: Invocation.RunsOptions) throws -> ExitCode {
        let (cache, all) = try cacheAndRuns(options.file)
        let runs = try selected(options, all)
        let store = CacheStore(root: cache)
        var series: [RunsPlot.Series] = []
        for run in runs {
            guard let train = run.stage(kind: "train") else { continue }
            let file = store.artifactURL(train.outputDigest).appendingPathComponent("metrics.jsonl")
            guard let text = try? String(contentsOf: file, encoding: .utf8) else {
                console.warning("run \(run.id): its training metrics are no longer in the cache (cache gc); left out")
                continue
            }
            series.append(RunsPlot.Series(label: run.point.isEmpty ? run.id : run.point, metricsJSONL: text))
        }
        guard !series.isEmpty else { console.error("no recorded run with training metrics to plot"); return .invalidInput }
        let output = URL(fileURLWithPath: options.output ?? "curves.svg")
        try Data(RunsPlot.svg(series).utf8).write(to: output, options: .atomic)
        console.print("wrote \(DisplayPath.shown(output)): \(series.count) runs")
        return .ok
    }

    /// The recorded manifest, as a file that runs on its own: JSON (so YAML too) with every path absolute.
    func show(_ options: Invocation.RunsOptions) throws -> ExitCode {
        let (_, runs) = try cacheAndRuns(nil)
        guard let run = Self.find(options.ids[0], in: runs) else {
            console.error("no run '\(options.ids[0])' in the cache; `qlora-run runs` lists them"); return .invalidInput
        }
        guard let manifest = try PipelineCommands(console: console).standaloneManifest(run) else {
            console.error("run \(run.id) was recorded before run records kept their manifest; it cannot be shown"); return .invalidInput
        }
        console.print("# run \(run.id) of pipeline '\(run.record.pipeline)'\(run.point.isEmpty ? "" : ", point \(run.point)"), \(run.record.startedAt), \(run.record.toolVersion)")
        console.print("# JSON is YAML: save this as a .yaml file and `qlora-run` runs it as recorded")
        console.print(manifest)
        return .ok
    }
}
