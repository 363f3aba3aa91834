import Foundation
import Model
import Tokenizer

public struct EvaluationOptions: Equatable, Sendable {
    public var batchSize = 4
    /// Pack the examples into rows of this many tokens (Packing.swift), batchSize rows per pass; 0 = off.
    public var packRowLength = 0
    public var compareBase = false
    public var prompts: [String] = []
    public var maxNewTokens = 64
    /// Gate: fail when the (adapted) model's perplexity exceeds this.
    public var perplexityAbove: Double? = nil
    /// Training loss plot to link from report.md (a file name in the same artifact directory).
    public var lossPlotFile: String? = nil
    /// Greedy exact match on the prompt/answer pairs of the data (ExactMatch).
    public var exactMatch = true
    public init() {}
}

public struct EvaluationMetrics: Equatable, Sendable {
    public var loss: Double
    public var perplexity: Double
    public var tokenAccuracy: Double
    public var supervisedTokens: Int
    /// Prompt/answer pairs the model answered exactly, and how many pairs there were (nil: not measured).
    public var exactMatches: Int? = nil
    public var pairs: Int = 0
    public var exactMatch: Double? { exactMatches.map { pairs > 0 ? Double($0) / Double(pairs) : 0 } }
    /// ` · exact match 27/30` (empty when not measured).
    public var exactMatchText: String { exactMatches.map { " · exact match \($0)/\(pairs)" } ?? "" }
}

public struct Generation: Equatable, Sendable {
    public var prompt: String
    public var adapted: String
    public var base: String?
}

public struct EvaluationReport: Sendable {
    public var metrics: EvaluationMetrics
    public var baseMetrics: EvaluationMetrics?
    public var generations: [Generation]
    public var gateFailure: String?

    public var metricsJSON: String {
        func m(_ x: EvaluationMetrics) -> String {
            let exact = x.exactMatches.map { ", \"exact_match\": \(x.exactMatch ?? 0), \"exact_matches\": \($0), \"pairs\": \(x.pairs)" } ?? ""
            return "{\"loss\": \(x.loss), \"perplexity\": \(x.perplexity), \"token_accuracy\": \(x.tokenAccuracy), \"supervised_tokens\": \(x.supervisedTokens)\(exact)}"
        }
        var s = "{\n  \"adapted\": \(m(metrics))"
        if let b = baseMetrics {
            s += ",\n  \"base\": \(m(b))"
            s += ",\n  \"delta\": {\"loss\": \(metrics.loss - b.loss), \"perplexity\": \(metrics.perplexity - b.perplexity), \"token_accuracy\": \(metrics.tokenAccuracy - b.tokenAccuracy)}"
        }
        return s + "\n}\n"
    }

    public func markdown(lossPlotFile: String? = nil) -> String {
        func f(_ x: Double) -> String { String(format: "%.4f", x) }
        var s = "# Evaluation\n\n"
        if let b = baseMetrics {
            s += "| metric | base | adapted | Δ |\n|---|---:|---:|---:|\n"
            s += "| loss | \(f(b.loss)) | \(f(metrics.loss)) | \(f(metrics.loss - b.loss)) |\n"
            s += "| perplexity | \(f(b.perplexity)) | \(f(metrics.perplexity)) | \(f(metrics.perplexity - b.perplexity)) |\n"
            s += "| token accuracy | \(f(b.tokenAccuracy)) | \(f(metrics.tokenAccuracy)) | \(f(metrics.tokenAccuracy - b.tokenAccuracy)) |\n"
            if let a = metrics.exactMatches, let bm = b.exactMatches {
                s += "| exact match | \(bm)/\(b.pairs) | \(a)/\(metrics.pairs) | \(a - bm) |\n"
            }
        } else {
            s += "| metric | value |\n|---|---:|\n| loss | \(f(metrics.loss)) |\n| perplexity | \(f(metrics.perplexity)) |\n| token accuracy | \(f(metrics.tokenAccuracy)) |\n"
            if let a = metrics.exactMatches { s += "| exact match | \(a)/\(metrics.pairs) |\n" }
        }
        s += "\nSupervised tokens evaluated: \(metrics.supervisedTokens)\n"
        if let gate = gateFailure { s += "\n**Gate failed:** \(gate)\n" }
        if !generations.isEmpty {
            s += "\n## Generations (greedy)\n"
            for (i, g) in generations.enumerated() {
                s += "\n### Prompt \(i + 1)\n\n```\n\(g.prompt)\n```\n"
                if let b = g.base { s += "\n**base:**\n\n```\n\(b)\n```\n" }
                s += "\n**adapted:**\n\n```\n\(g.adapted)\n```\n"
            }
        }
        if let plot = lossPlotFile { s += "\n## Training loss\n\n![training loss](\(plot))\n" }
        return s
    }

    /// metrics.json and report.md.
    public func write(to directory: URL, lossPlotFile: String? = nil) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicWrite.write(Array(metricsJSON.utf8), to: directory.appendingPathComponent("metrics.json"))
        try AtomicWrite.write(Array(markdown(lossPlotFile: lossPlotFile).utf8), to: directory.appendingPathComponent("report.md"))
    }
}

public enum Evaluator {
    /// Loss / perplexity / token accuracy over supervised tokens (mask of the target position),
    /// the same weighting as training. The head runs only on supervised rows, in chunks
    /// (`LlamaModel.evaluationSums`).
    public static func metrics(model: LlamaModel, dataset: TrainingDataset, batchSize: Int = 4, packRowLength: Int = 0) -> EvaluationMetrics {
        var lossSum = 0.0, correct = 0, count = 0
        let batches: [Batch]
        if packRowLength > 0 {
            // The same examples and targets, laid out as fuller rows (a segment's first token has no target).
            batches = dataset.packedBatches(Array(dataset.examples.indices), rowLength: packRowLength, rowsPerBatch: max(1, batchSize))
        } else {
            batches = stride(from: 0, to: dataset.examples.count, by: max(1, batchSize)).map {
                dataset.batch(Array($0..<min(dataset.examples.count, $0 + max(1, batchSize))))
            }
        }
        for b in batches {
            let sums = model.evaluationSums(tokens: b.tokens, batch: b.batch, length: b.length, lossWeights: b.lossWeights, segments: b.segments)
            lossSum += sums.lossSum; correct += sums.correct; count += sums.count
        }
        let loss = count > 0 ? lossSum / Double(count) : .nan
        return EvaluationMetrics(loss: loss, perplexity: Foundation.exp(loss), tokenAccuracy: count > 0 ? Double(correct) / Double(count) : 0, supervisedTokens: count)
    }

    /// Greedy exact match over the prompt/answer pairs of `dataset`: examples (not truncated) whose
    /// supervised tokens form one run, i.e. one answer at the end of one prompt — the answer is that
    /// run (with the template's end-of-turn token when it is supervised, so a match also ends the turn).
    /// Multi-turn examples are not pairs and are left out.
    public static func exactMatch(model: LlamaModel, dataset: TrainingDataset) -> (matches: Int, pairs: Int) {
        var matches = 0, pairs = 0
        for e in dataset.examples where !e.truncated {
            guard let answer = answerSpan(e) else { continue }
            pairs += 1
            if model.greedilyReproduces(prompt: Array(e.ids[..<answer.lowerBound]), reference: Array(e.ids[answer])) { matches += 1 }
        }
        return (matches, pairs)
    }

    /// The one run of supervised positions (≥ 1), or nil when there are none or several.
    static func answerSpan(_ e: TokenizedExample) -> Range<Int>? {
        var start: Int? = nil, end: Int? = nil
        for t in 1..<max(1, e.lossMask.count) where e.lossMask[t] > 0 {
            if start == nil { start = t } else if let last = end, t != last { return nil }
            end = t + 1
        }
        guard let s = start, let e = end else { return nil }
        return s..<e
    }

    /// Runs `body` with every adapter detached (the base model), then re-attaches them.
    static func withoutAdapters<T>(_ model: LlamaModel, _ body: () throws -> T) rethrows -> T {
        let saved = model.linearModules.map { ($0, $0.adapter) }
        for (m, _) in saved { m.adapter = nil }
        defer { for (m, a) in saved { m.adapter = a } }
        return try body()
    }

    /// Greedy completion of a user prompt rendered with the chat template, stopping at EOS or the
    /// template's end-of-turn token.
    static func generate(model: LlamaModel, tokenizer: Tokenizer, chat: ChatFormat?, systemPrompt: String?, prompt: String, maxNewTokens: Int) -> String {
        let text: String
        var stop = Set<Int32>()
        if let e = tokenizer.eosTokenId { stop.insert(e) }
        if let chat {
            do { text = try chat.prompt(prompt, systemPrompt: systemPrompt) } catch {
                return "(the chat template cannot render this prompt: \((error as? LocalizedError)?.errorDescription ?? "\(error)"))"
            }
            if let end = chat.endOfTurnToken(specialTokens: tokenizer.specialTokens, eosToken: tokenizer.eosToken), let id = tokenizer.id(of: end) {
                stop.insert(id)
            }
        } else {
            text = ChatTemplate.chatML(messages: [(role: "user", content: prompt)], addGenerationPrompt: true)
        }
        let out = model.generate(prompt: tokenizer.encode(text), maxNewTokens: maxNewTokens, sampling: .greedy, stopTokens: stop)
        return tokenizer.decode(out, skipSpecialTokens: true)
    }

    public static func run(model: LlamaModel, tokenizer: Tokenizer, dataset: TrainingDataset, options: EvaluationOptions,
                           chat: ChatFormat? = nil, systemPrompt: String? = nil, log: (String) -> Void = { _ in }) -> EvaluationReport {
        let hasAdapters = model.linearModules.contains { $0.adapter != nil }
        func measure() -> EvaluationMetrics {
            var m = metrics(model: model, dataset: dataset, batchSize: options.batchSize, packRowLength: options.packRowLength)
            if options.exactMatch {
                let exact = exactMatch(model: model, dataset: dataset)
                if exact.pairs > 0 { m.exactMatches = exact.matches; m.pairs = exact.pairs }
            }
            return m
        }
        let adapted = measure()
        log(String(format: "eval: loss %.4f · perplexity %.3f · token accuracy %.4f over %d tokens", adapted.loss, adapted.perplexity, adapted.tokenAccuracy, adapted.supervisedTokens)
            + adapted.exactMatchText)
        var base: EvaluationMetrics? = nil
        if options.compareBase && hasAdapters {
            let b = withoutAdapters(model) { measure() }
            base = b
            log(String(format: "eval (base): loss %.4f · perplexity %.3f · token accuracy %.4f", b.loss, b.perplexity, b.tokenAccuracy) + b.exactMatchText)
        }
        var gens: [Generation] = []
        for p in options.prompts {
            let a = generate(model: model, tokenizer: tokenizer, chat: chat, systemPrompt: systemPrompt, prompt: p, maxNewTokens: options.maxNewTokens)
            let b: String? = (options.compareBase && hasAdapters) ? withoutAdapters(model) {
                generate(model: model, tokenizer: tokenizer, chat: chat, systemPrompt: systemPrompt, prompt: p, maxNewTokens: options.maxNewTokens)
            } : nil
            gens.append(Generation(prompt: p, adapted: a, base: b))
        }
        var gate: String? = nil
        if let limit = options.perplexityAbove, !(adapted.perplexity <= limit) {
            gate = String(format: "perplexity %.4f is above the limit %.4f (fail_if.perplexity_above)", adapted.perplexity, limit)
        }
        return EvaluationReport(metrics: adapted, baseMetrics: base, generations: gens, gateFailure: gate)
    }
}
