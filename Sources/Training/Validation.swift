import Foundation
import Kernels

/// Validation inside training: a held-out set evaluated every `every` optimizer steps (and after
/// the last), early stopping on its loss, and the best adapter kept.
///
/// A validation pass is forward-only over its own batches: it draws no random number, touches no
/// gradient or optimizer state and clears nothing training uses, so the adapter after N steps is
/// byte-identical with and without it (ValidationTests pins that).
public struct ValidationOptions: Equatable, Sendable {
    /// Optimizer steps between passes; 0 = only after the last step.
    public var every = 0
    /// Examples per forward batch (does not change the metric beyond summation order).
    public var batchSize = 1
    /// Stop after this many passes in a row without improvement; nil = never stop early.
    public var patience: Int? = nil
    /// An improvement lowers the best eval loss by more than this.
    public var minDelta = 0.0
    /// Output the adapter of the best pass instead of the last step's.
    public var keepBest = false
    public init() {}
}

/// One validation pass: a metrics.jsonl row beside the step rows.
public struct ValidationMetrics: Equatable, Sendable {
    public var step: Int
    public var loss: Double
    public var perplexity: Double
    public var tokenAccuracy: Double
    public var tokens: Int

    public var jsonLine: String {
        "{\"step\":\(step),\"eval_loss\":\(loss),\"eval_perplexity\":\(perplexity),\"eval_token_accuracy\":\(tokenAccuracy),\"eval_tokens\":\(tokens)}"
    }

    /// Parses a line written by `jsonLine` (numbers through `Double(String)`, as StepMetrics).
    static func parse(_ line: String) -> ValidationMetrics? {
        guard let fields = FlatJSONLine.fields(line),
              let s = fields["step"].flatMap({ Int($0) }), let l = fields["eval_loss"].flatMap({ Double($0) }),
              let p = fields["eval_perplexity"].flatMap({ Double($0) }), let a = fields["eval_token_accuracy"].flatMap({ Double($0) }),
              let t = fields["eval_tokens"].flatMap({ Int($0) }) else { return nil }
        return ValidationMetrics(step: s, loss: l, perplexity: p, tokenAccuracy: a, tokens: t)
    }
}

/// Early-stopping state. It is a pure function of the validation rows (replayed on resume from the
/// checkpoint's metrics.jsonl), so best-so-far and the patience counter survive a kill -9 exactly.
public struct EarlyStopping: Equatable, Sendable {
    public private(set) var bestStep: Int? = nil
    public private(set) var bestLoss = Double.infinity
    /// Passes in a row that did not improve on the best.
    public private(set) var passesWithoutImprovement = 0

    public init() {}
    public init(replaying rows: [ValidationMetrics], minDelta: Double) {
        for r in rows { _ = record(r, minDelta: minDelta) }
    }

    /// Records a pass; true when it is the new best. The first finite loss is always the best; a NaN
    /// loss never is.
    public mutating func record(_ r: ValidationMetrics, minDelta: Double) -> Bool {
        if r.loss.isFinite && (bestStep == nil || r.loss < bestLoss - minDelta) {
            bestStep = r.step; bestLoss = r.loss; passesWithoutImprovement = 0
            return true
        }
        passesWithoutImprovement += 1
        return false
    }

    public func shouldStop(patience: Int?) -> Bool {
        guard let patience else { return false }
        return passesWithoutImprovement >= patience
    }
}

/// Why training ended, for the stage summary.
public enum StopReason: Equatable, Sendable {
    case completed
    case earlyStopping(step: Int, passes: Int)

    public var text: String {
        switch self {
        case .completed: return "completed"
        case let .earlyStopping(step, passes):
            return "stopped early at step \(step): eval loss did not improve in \(passes) validation pass\(passes == 1 ? "" : "es")"
        }
    }
}

/// A deterministic held-out split of a dataset, drawn from its own counter-based stream
/// ("eval-split"), so the training shuffle ("shuffle/epoch-N") draws exactly what it would without it.
public enum EvaluationSplit {
    /// Indices (in file order) of the held-out examples: round(fraction × n), at least 1 and at most
    /// n − 1 (training keeps at least one example).
    public static func heldOut(count n: Int, fraction: Double, seed: UInt64) -> [Int] {
        guard n >= 2, fraction > 0 else { return [] }
        let k = min(n - 1, max(1, Int((fraction * Double(n)).rounded())))
        var idx = Array(0..<n)
        var rng = RandomStream(seed: seed, stream: "eval-split")
        for i in stride(from: n - 1, to: 0, by: -1) { idx.swapAt(i, rng.nextInt(below: i + 1)) }
        return idx.prefix(k).sorted()
    }

    /// (training part, held-out part) of `dataset`.
    public static func split(_ dataset: TrainingDataset, fraction: Double, seed: UInt64) -> (train: TrainingDataset, eval: TrainingDataset) {
        let held = Set(heldOut(count: dataset.examples.count, fraction: fraction, seed: seed))
        let train = dataset.examples.indices.filter { !held.contains($0) }.map { dataset.examples[$0] }
        let eval = dataset.examples.indices.filter { held.contains($0) }.map { dataset.examples[$0] }
        return (TrainingDataset(examples: train, padId: dataset.padId, source: dataset.source, mixture: dataset.mixture?.removing(held)),
                TrainingDataset(examples: eval, padId: dataset.padId, source: dataset.source + " (eval_split)"))
    }
}

/// `{"k":v,...}` lines of numbers (metrics.jsonl): key -> value text.
enum FlatJSONLine {
    static func fields(_ line: String) -> [String: String]? {
        let body = line.trimmingCharacters(in: .whitespaces)
        guard body.hasPrefix("{"), body.hasSuffix("}") else { return nil }
        var fields: [String: String] = [:]
        for part in body.dropFirst().dropLast().split(separator: ",") {
            let kv = part.split(separator: ":", maxSplits: 1)
            guard kv.count == 2 else { return nil }
            fields[kv[0].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))] = String(kv[1])
        }
        return fields
    }
}
