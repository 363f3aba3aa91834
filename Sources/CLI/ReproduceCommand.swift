import Foundation
import PipelineCore
import Stages

extension PipelineCommands {
    /// The recorded manifest of a run with absolute paths, pretty-printed (nil: the record predates manifests).
    func standaloneManifest(_ run: RecordedRun) throws -> String? {
        guard let manifest = run.record.context["manifest"], let file = run.record.context["pipeline_file"]?.stringValue else { return nil }
        let (schemaValue, _) = try Self.schema()
        let absolute = Pipeline.absolutizingPaths(manifest, schema: schemaValue, directory: URL(fileURLWithPath: file).deletingLastPathComponent())
        let object = try JSONSerialization.jsonObject(with: CanonicalJSON.data(absolute))
        let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: pretty, as: UTF8.self)
    }

    /// `reproduce ID`: runs the recorded manifest again in the cache it was recorded in, training stages
    /// forced, and says whether every stage output (published ones included) has the recorded bytes.
    func reproduce(_ id: String, _ invocation: Invocation) throws -> ExitCode {
        let cache = invocation.cacheDirectory.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: ".qlora")
        let runs = RecordedRun.all(in: cache)
        guard let run = RunsCommands.find(id, in: runs) else {
            console.error("no run '\(id)' in \(DisplayPath.shown(cache)); `qlora-run runs --cache DIR` lists them"); return .invalidInput
        }
        guard let manifest = run.record.context["manifest"], let file = run.record.context["pipeline_file"]?.stringValue else {
            console.error("run \(run.id) was recorded before run records kept their manifest; it cannot be reproduced"); return .invalidInput
        }
        let document = try JSONReader.document(bytes: Array(CanonicalJSON.data(manifest)), displayName: file)
        var direct = invocation
        direct.cacheDirectory = cache.path
        direct.sets = []
        let built = try build(document, file: file, direct)
        direct.force = built.pipeline.stages.filter { $0.kind == "train" }.map(\.name)
        var planned = PlannedRun(point: nil, pipeline: built.pipeline, manifest: built.value, file: file)
        // The new record is the same run again: same point, overrides and parameters.
        planned.recordedContext = run.record.context.filter { ["pipeline_file", "overrides", "point", "sweep", "parameters", "manifest"].contains($0.key) }
        console.print("reproducing run \(run.id)\(run.point.isEmpty ? "" : " (point \(run.point))") of '\(run.record.pipeline)'"
                      + (direct.force.isEmpty ? "" : ", forcing \(direct.force.joined(separator: ", "))"))
        let runner = try makeRunner(planned, direct)
        Interrupt.install()
        let summary = try runner.run()
        console.status?.finish()
        var different: [String] = []
        for stage in summary.stages {
            guard let recorded = run.record.stages.first(where: { $0.name == stage.name }) else { continue }
            let same = recorded.outputDigest == stage.outputDigest
            if !same { different.append(stage.name) }
            let published = stage.published.map { " -> " + DisplayPath.shown($0) }.joined()
            console.print("  \(stage.name): \(same ? "identical" : "DIFFERENT") (\(stage.outputDigest.prefix(12))… \(same ? "=" : "vs recorded \(recorded.outputDigest.prefix(12))…"))\(published)")
        }
        if different.isEmpty {
            console.print("reproduced: every stage output is byte-identical to run \(run.id)")
            return .ok
        }
        console.error("not reproduced: \(different.joined(separator: ", ")) gave different bytes than run \(run.id)")
        return .stageFailed
    }
}
