import Foundation
import PipelineCore
import Model
import Tokenizer
import Training

/// `evaluate`: loss, perplexity and token accuracy on supervised tokens (same loader and masks as
/// training, `DatasetLoader`), for the model and, with compare_base, the same model with its
/// adapters removed; greedy generations for `prompts`. All of it is Training's `Evaluator`.
/// Artifact: metrics.json, report.md (+ loss.svg when the model came from train).
/// Gates (`fail_if`) fail the stage after the report is written.
struct EvaluateStage: StageRunner {
    func passes(_ n: Int) -> String { n == 1 ? "1 pass" : "\(n) passes" }

    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"], let data = context.inputPaths["data"] else { throw StageError.missingFile("model/data") }
        let f = context.fields
        let model = try AdaptedModel.load(source)
        let tokenizer = try Tokenizer(contentsOf: source.appendingPathComponent("tokenizer.json"))
        var dataOptions = DatasetOptions()
        dataOptions.maxSeqLen = f["max_seq_len"]?.intValue ?? 512
        dataOptions.trainOnPrompt = false
        dataOptions.systemPrompt = f["system_prompt"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let chat = try ChatFormat.load(directory: source, tokenizer: tokenizer,
                                       choice: context.inputPaths["chat_template"]?.path ?? f["chat_template"]?.stringValue ?? "model")
        context.log("chat template: \(chat.origin)")
        let dataset = try TrainingDataset.load(url: data, tokenizer: tokenizer, options: dataOptions, chat: chat)
        context.log(dataset.audit.line)
        if let sample = dataset.audit.sample {
            context.record("first example as the model sees it, supervised tokens between ⟦ and ⟧:\n" + sample)
        }

        var options = EvaluationOptions()
        options.batchSize = f["batch_size"]?.intValue ?? 4
        // Packing: true/false as asked; auto when it costs fewer passes or positions (Training/Packing.swift).
        let packingField = f["packing"]
        let choice: PackingChoice = packingField?.boolValue.map { $0 ? .on : .off } ?? .auto
        let packing = choice.decide(evaluating: dataset, batchSize: options.batchSize, rowLength: dataOptions.maxSeqLen)
        if packing.pack { options.packRowLength = dataOptions.maxSeqLen }
        context.log(packing.summary(auto: packingField?.boolValue == nil, rowLength: dataOptions.maxSeqLen, passes: passes))
        options.compareBase = f["compare_base"]?.boolValue ?? true
        options.prompts = f["prompts"]?.arrayValue?.compactMap(\.stringValue) ?? []
        options.maxNewTokens = f["max_new_tokens"]?.intValue ?? 32
        options.perplexityAbove = f["fail_if"]?["perplexity_above"]?.doubleValue
        options.exactMatch = f["metrics"]?.arrayValue?.contains(.string("exact_match")) ?? true
        let out = context.outputDirectory
        if FileManager.default.fileExists(atPath: source.appendingPathComponent("loss.svg").path) {
            try ArtifactFiles.linkOrCopy("loss.svg", from: source, to: out)
            options.lossPlotFile = "loss.svg"
        }

        var report = Evaluator.run(model: model, tokenizer: tokenizer, dataset: dataset, options: options,
                                   chat: chat, systemPrompt: dataOptions.systemPrompt, log: context.log)
        let mine = report.metrics
        // The Evaluator gates perplexity only; loss_above is checked here, with the same
        // `!(x <= limit)` form so a NaN loss (no supervised token) fails the gate too.
        if report.gateFailure == nil, let limit = f["fail_if"]?["loss_above"]?.doubleValue, !(mine.loss <= limit) {
            report.gateFailure = String(format: "loss %.4f is above the limit %.4f (fail_if.loss_above)", mine.loss, limit)
        }
        try report.write(to: out, lossPlotFile: options.lossPlotFile)

        // The headline and the generations are what a person re-running looks for: kept in the
        // action record and printed again when the stage comes from the cache.
        var headline: [String] = []
        if let base = report.baseMetrics {
            let exact = zip(base.exactMatches.map { [$0] } ?? [], mine.exactMatches.map { [$0] } ?? [])
                .map { " · exact match \($0)/\(base.pairs) -> \($1)/\(mine.pairs)" }.first ?? ""
            headline.append(String(format: "loss %.4f -> %.4f · perplexity %.3f -> %.3f · token accuracy %.1f%% -> %.1f%%",
                                   base.loss, mine.loss, base.perplexity, mine.perplexity, base.tokenAccuracy * 100, mine.tokenAccuracy * 100)
                            + exact + " (base -> adapted)")
        } else {
            headline.append(String(format: "loss %.4f · perplexity %.3f · token accuracy %.1f%%", mine.loss, mine.perplexity, mine.tokenAccuracy * 100)
                            + mine.exactMatchText)
        }
        for g in report.generations {
            headline.append("\(g.prompt) -> \(g.adapted.debugDescription)" + (g.base.map { " (base: \($0.debugDescription))" } ?? ""))
        }
        for line in headline { context.log(line) }
        if let gate = report.gateFailure { throw StageError.gateFailed(gate) }
        var summary: [String: JSONValue] = ["loss": .number(mine.loss), "perplexity": .number(mine.perplexity),
                                            "token_accuracy": .number(mine.tokenAccuracy)]
        if let base = report.baseMetrics { summary["base_loss"] = .number(base.loss) }
        if let exact = mine.exactMatch { summary["exact_match"] = .number(exact) }
        return StageResult(summary: summary, report: headline)
    }
}
