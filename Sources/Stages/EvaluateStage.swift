import Foundation
import PipelineCore
import Model
import Tokenizer
import Training

/// `evaluate`: loss, perplexity and token accuracy on supervised tokens (same masks as training),
/// for the model and, with compare_base, the same model with its adapters removed; greedy
/// generations for `prompts`. Artifact: metrics.json, report.md (+ loss.svg when the model came
/// from train). Gates (`fail_if`) fail the stage after the report is written to the log.
struct EvaluateStage: StageRunner {
    struct Metrics { var loss: Double; var perplexity: Double; var accuracy: Double; var tokens: Int }

    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"], let data = context.inputPaths["data"] else { throw StageError.missingFile("model/data") }
        let f = context.fields
        let model = try AdaptedModel.load(source)
        let tokenizer = try Tokenizer(contentsOf: source.appendingPathComponent("tokenizer.json"))
        let dataset = try ChatData.load(data, tokenizer: tokenizer, maxSeqLen: f["max_seq_len"]?.intValue ?? 512, trainOnPrompt: false)
        let prompts = f["prompts"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let maxNew = f["max_new_tokens"]?.intValue ?? 32
        let adapted = model.linearModules.filter { $0.adapter != nil }
        let compare = (f["compare_base"]?.boolValue ?? true) && !adapted.isEmpty

        let mine = Self.evaluate(model, dataset)
        let generations = prompts.map { Inference.complete(model: model, tokenizer: tokenizer, prompt: $0, chat: true, maxNewTokens: maxNew, sampling: Sampling()) }
        var base: Metrics?, baseGenerations: [String] = []
        if compare {
            let saved = adapted.map { ($0, $0.adapter) }
            for m in adapted { m.adapter = nil }
            base = Self.evaluate(model, dataset)
            baseGenerations = prompts.map { Inference.complete(model: model, tokenizer: tokenizer, prompt: $0, chat: true, maxNewTokens: maxNew, sampling: Sampling()) }
            for (m, a) in saved { m.adapter = a }
        }

        func json(_ m: Metrics) -> JSONValue {
            .object(["loss": .number(m.loss), "perplexity": .number(m.perplexity), "token_accuracy": .number(m.accuracy), "tokens": .integer(Int64(m.tokens))])
        }
        var metrics: [String: JSONValue] = ["model": json(mine), "examples": .integer(Int64(dataset.examples.count))]
        if let base { metrics["base"] = json(base) }
        metrics["generations"] = .array(prompts.indices.map { i in
            var o: [String: JSONValue] = ["prompt": .string(prompts[i]), "model": .string(generations[i])]
            if compare { o["base"] = .string(baseGenerations[i]) }
            return .object(o)
        })
        let out = context.outputDirectory
        try ArtifactFiles.writeJSON(.object(metrics), to: out.appendingPathComponent("metrics.json"))
        var report = "# Evaluation: \(context.stageName)\n\n\(dataset.examples.count) examples, \(mine.tokens) supervised tokens.\n\n"
        report += "| model | loss | perplexity | token accuracy |\n|---|---|---|---|\n"
        if let base { report += String(format: "| base (no adapters) | %.4f | %.3f | %.2f%% |\n", base.loss, base.perplexity, base.accuracy * 100) }
        report += String(format: "| %@ | %.4f | %.3f | %.2f%% |\n", adapted.isEmpty ? "model" : "adapted", mine.loss, mine.perplexity, mine.accuracy * 100)
        if !prompts.isEmpty {
            report += "\n## Generations (greedy, \(maxNew) new tokens)\n\n"
            for i in prompts.indices {
                report += "**\(prompts[i])**\n\n"
                if compare { report += "- base: `\(baseGenerations[i].replacingOccurrences(of: "`", with: "'"))`\n" }
                report += "- adapted: `\(generations[i].replacingOccurrences(of: "`", with: "'"))`\n\n"
            }
        }
        if FileManager.default.fileExists(atPath: source.appendingPathComponent("loss.svg").path) {
            try ArtifactFiles.linkOrCopy("loss.svg", from: source, to: out)
            report += "\n## Training loss\n\n![loss](loss.svg)\n"
        }
        try Data(report.utf8).write(to: out.appendingPathComponent("report.md"), options: .atomic)

        if let base { context.log(String(format: "loss %.4f -> %.4f · perplexity %.3f -> %.3f · token accuracy %.1f%% -> %.1f%% (base -> adapted)",
                                         base.loss, mine.loss, base.perplexity, mine.perplexity, base.accuracy * 100, mine.accuracy * 100)) }
        else { context.log(String(format: "loss %.4f · perplexity %.3f · token accuracy %.1f%%", mine.loss, mine.perplexity, mine.accuracy * 100)) }
        for i in prompts.indices {
            context.log("\(prompts[i]) -> \(generations[i].debugDescription)" + (compare ? " (base: \(baseGenerations[i].debugDescription))" : ""))
        }
        if let gate = f["fail_if"]?["perplexity_above"]?.doubleValue, mine.perplexity > gate {
            throw StageError.gateFailed(String(format: "perplexity %.3f is above %g (fail_if.perplexity_above)", mine.perplexity, gate))
        }
        if let gate = f["fail_if"]?["loss_above"]?.doubleValue, mine.loss > gate {
            throw StageError.gateFailed(String(format: "loss %.4f is above %g (fail_if.loss_above)", mine.loss, gate))
        }
        var summary: [String: JSONValue] = ["loss": .number(mine.loss), "perplexity": .number(mine.perplexity)]
        if let base { summary["base_loss"] = .number(base.loss) }
        return StageResult(summary: summary)
    }

    /// Mean cross-entropy over supervised next-token targets, in fp64, one example at a time.
    static func evaluate(_ model: LlamaModel, _ dataset: TrainingDataset) -> Metrics {
        let V = model.config.vocabSize
        var sum = 0.0, count = 0, correct = 0
        for ex in dataset.examples where ex.ids.count > 1 {
            let T = ex.ids.count
            let logits = model.forward(tokens: ex.ids, batch: 1, length: T, attentionMask: nil)  // (1, T, V)
            for t in 0..<(T - 1) where ex.lossMask[t + 1] > 0 {
                let row = logits[(t * V)..<((t + 1) * V)]
                let m = Double(row.max() ?? 0)
                var z = 0.0
                for x in row { z += Foundation.exp(Double(x) - m) }
                let target = Int(ex.ids[t + 1])
                sum += m + Foundation.log(z) - Double(row[row.startIndex + target])
                if row.firstIndex(of: row.max() ?? 0) == row.startIndex + target { correct += 1 }
                count += 1
            }
        }
        let loss = count > 0 ? sum / Double(count) : .nan
        return Metrics(loss: loss, perplexity: Foundation.exp(loss), accuracy: count > 0 ? Double(correct) / Double(count) : 0, tokens: count)
    }
}
