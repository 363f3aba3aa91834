import Foundation
import Kernels

// Legend: B batch, T time, N = B·T rows, R rows of a head chunk, C hidden, V vocab.

extension LlamaModel {
    /// Next-token cross-entropy summed over the positions whose target has lossWeights[b, t+1] > 0
    /// (each counted once, weight 1), how many of them the argmax predicts, and their count — the
    /// evaluate stage's loss, perplexity and token accuracy. Like training, the head runs only on
    /// those rows and in chunks: never all B·T·V logits (SmolLM-135M, 4 × 512: 400 MB).
    /// `segments`: packed rows (PackedSequences.swift), each example attending only to itself.
    public func evaluationSums(tokens: [Int32], batch B: Int, length T: Int, lossWeights: [Float],
                               segments: [[Range<Int>]]? = nil) -> (lossSum: Double, correct: Int, count: Int) {
        guard B > 0, T > 0, tokens.count == B * T, lossWeights.count == B * T else { return (.nan, 0, 0) }
        let C = config.hiddenSize, V = config.vocabSize
        let rows = Self.lossRows(B: B, T: T, lossWeights: lossWeights)
        if rows.isEmpty { return (0, 0, 0) }
        let p = forwardTrunk(tokens: tokens, B: B, T: T, attentionMask: nil, forTraining: false, segments: segments)
        let chunk = ActivationPlan.headChunkRows(rows.count, vocab: V)
        let scratch = p.headScratch(rows: chunk, C: C, V: V)
        let xs = scratch.inputs, logits = scratch.logits   // (R, C), (R, V)
        var lossSum = 0.0, correct = 0
        var predicted = [Int32](repeating: 0, count: chunk)
        let ones = [Float](repeating: 1, count: chunk)
        var start = 0
        while start < rows.count {
            let R = min(chunk, rows.count - start)
            let targets = gatherHeadInputs(rows[start..<(start + R)], plan: p, into: xs, tokens: tokens)
            head.forward(input: xs.p, output: logits.p, rows: R)
            predicted.withUnsafeMutableBufferPointer { pp in
                Parallel.forEachChunk(R, costPerItem: V) { range in
                    for i in range {
                        let row = logits.p + i * V
                        var best = -Float.infinity, arg = 0
                        for v in 0..<V where row[v] > best { best = row[v]; arg = v }   // first maximum
                        pp[i] = Int32(arg)
                    }
                }
            }
            for i in 0..<R where predicted[i] == targets[i] { correct += 1 }
            lossSum += targets.withUnsafeBufferPointer { tp in
                ones.withUnsafeBufferPointer { wp in
                    CrossEntropy.forwardBackward(logits: logits.p, targets: tp.baseAddress!, weights: wp.baseAddress!,
                                                 rows: R, vocab: V, gradLogits: nil, gradScale: 1)
                }
            }
            start += R
        }
        return (lossSum, correct, rows.count)
    }
}
