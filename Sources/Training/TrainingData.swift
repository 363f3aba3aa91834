import Foundation
import Kernels

/// One tokenized training example: token ids and the loss weight of each position
/// (1 where the token is a prediction target, i.e. assistant content and its `<|im_end|>`).
public struct TokenizedExample: Equatable, Sendable {
    public var ids: [Int32]
    public var lossMask: [Float]
    public var truncated: Bool
    public init(ids: [Int32], lossMask: [Float], truncated: Bool = false) {
        self.ids = ids; self.lossMask = lossMask; self.truncated = truncated
    }
    /// Supervised targets: mask positions ≥ 1 (position 0 is never predicted).
    public var supervisedTokens: Int { lossMask.dropFirst().reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
}

/// Counts reported once per run.
public struct DatasetAudit: Equatable, Sendable, Codable {
    public var examples = 0
    public var tokens = 0
    public var supervisedTokens = 0
    public var truncated = 0
    public var skippedNoSupervision = 0
    /// The first example as trained: its text with the supervised part between ⟦ and ⟧.
    public var sample: String? = nil
    public init() {}
    public var line: String {
        "data: \(examples) examples, \(tokens) tokens, \(supervisedTokens) supervised, \(truncated) truncated, \(skippedNoSupervision) skipped (no supervised token)"
    }
}

/// A padded micro-batch (B, T) with T = the longest example in the batch (dynamic padding).
public struct Batch: Equatable, Sendable {
    public var tokens: [Int32]      // (B, T)
    public var lossWeights: [Float] // (B, T), 0 on padding
    public var batch: Int
    public var length: Int
    /// Packed rows: each row's examples (and trailing padding) as token ranges (Packing.swift); nil = one example per row.
    public var segments: [[Range<Int>]]? = nil
    public var supervisedTokens: Int { var n = 0; for b in 0..<batch { for t in 1..<max(1, length) where lossWeights[b * length + t] > 0 { n += 1 } }; return n }
}

/// Tokenized examples ready for training or evaluation.
public final class TrainingDataset {
    public let examples: [TokenizedExample]
    public let padId: Int32
    public let audit: DatasetAudit
    public let source: String
    /// Several files mixed by weight (nil: one file, every example once per epoch).
    public let mixture: DataMixture?

    public init(examples: [TokenizedExample], padId: Int32, source: String = "<memory>", audit: DatasetAudit? = nil,
                mixture: DataMixture? = nil) {
        self.examples = examples; self.padId = padId; self.source = source; self.mixture = mixture
        self.audit = audit ?? {
            var a = DatasetAudit()
            a.examples = examples.count
            for e in examples { a.tokens += e.ids.count; a.supervisedTokens += e.supervisedTokens; if e.truncated { a.truncated += 1 } }
            return a
        }()
    }

    /// Example order of an epoch (0-based): identity, or a Fisher–Yates shuffle drawn from the
    /// counter-based stream "shuffle/epoch-N", a pure function of (seed, epoch).
    /// A mixture orders its epochs by weight instead (DataMixture.order).
    public func order(epoch: Int, shuffle: Bool, seed: UInt64) -> [Int] {
        if let mixture { return mixture.order(epoch: epoch, shuffle: shuffle, seed: seed) }
        var idx = Array(0..<examples.count)
        guard shuffle, idx.count > 1 else { return idx }
        var rng = RandomStream(seed: seed, stream: "shuffle/epoch-\(epoch)")
        for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, rng.nextInt(below: i + 1)) }
        return idx
    }

    /// Pads the given examples to the longest one with `padId` (loss weight 0).
    public func batch(_ indices: [Int]) -> Batch {
        let T = indices.map { examples[$0].ids.count }.max() ?? 0
        var tokens = [Int32](repeating: padId, count: indices.count * T)
        var weights = [Float](repeating: 0, count: indices.count * T)
        for (b, i) in indices.enumerated() {
            let e = examples[i]
            for t in 0..<e.ids.count { tokens[b * T + t] = e.ids[t]; weights[b * T + t] = e.lossMask[t] }
        }
        return Batch(tokens: tokens, lossWeights: weights, batch: indices.count, length: T)
    }
}
