import Foundation
import Kernels

/// Several training files mixed by weight (`data: [{path, weight, max_examples}]`).
///
/// The files' examples sit one after another in the dataset; `sources` says which range is whose.
/// An epoch has N = Σ nᵢ slots (nᵢ: the examples file i holds), and file i gets cᵢ of them, its
/// share wᵢ / Σw of N apportioned by largest remainder (ties to the earlier file) so Σcᵢ = N exactly.
/// File i's draws run on across epochs: its k-th draw overall (k = epoch·cᵢ + j) is example
/// `pass(k / nᵢ)[k % nᵢ]`, where each pass is a fresh seeded permutation of the file (stream
/// "mix/file-i/pass-p"; identity without shuffle). So an up-weighted small file repeats whole
/// passes before any example repeats twice, a down-weighted large file is walked through over
/// several epochs, and every epoch's order is a pure function of (seed, epoch) — resume needs
/// no state. The epoch's slots are then shuffled on the training shuffle's stream, or, without
/// shuffle, interleaved evenly (slot j of file i at (j + ½) / cᵢ).
public struct DataMixture: Equatable, Sendable {
    public struct Source: Equatable, Sendable {
        public var name: String
        public var range: Range<Int>  // indices into the dataset's examples
        public var weight: Double
        public init(name: String, range: Range<Int>, weight: Double) { self.name = name; self.range = range; self.weight = weight }
    }
    public var sources: [Source]
    public init(sources: [Source]) { self.sources = sources }

    public var exampleCount: Int { sources.reduce(0) { $0 + $1.range.count } }

    /// Slots per epoch of each file: N·wᵢ/Σw rounded by largest remainder (sums to N).
    public var slotsPerEpoch: [Int] {
        let total = exampleCount
        // A file left empty (its examples all held out by eval_split) takes no slots.
        let weights = sources.map { $0.range.isEmpty ? 0 : $0.weight }
        let weightSum = weights.reduce(0, +)
        guard total > 0, weightSum > 0 else { return sources.map { _ in 0 } }
        let exact = weights.map { Double(total) * $0 / weightSum }
        var slots = exact.map { Int($0.rounded(.down)) }
        let remainders = exact.enumerated().map { ($0.offset, $0.element - Double(slots[$0.offset])) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        for (index, _) in remainders.prefix(total - slots.reduce(0, +)) { slots[index] += 1 }
        return slots
    }

    /// Dataset indices of one epoch (0-based), in training order.
    public func order(epoch: Int, shuffle: Bool, seed: UInt64) -> [Int] {
        let slots = slotsPerEpoch
        var drawn: [[Int]] = []  // per file, its examples of this epoch in draw order
        for (i, source) in sources.enumerated() {
            let n = source.range.count
            var picks: [Int] = []
            picks.reserveCapacity(slots[i])
            var cachedPass = -1, permutation: [Int] = []
            for k in (epoch * slots[i])..<((epoch + 1) * slots[i]) {
                let pass = k / n
                if pass != cachedPass { permutation = Self.pass(pass, file: i, count: n, shuffle: shuffle, seed: seed); cachedPass = pass }
                picks.append(source.range.lowerBound + permutation[k % n])
            }
            drawn.append(picks)
        }
        if shuffle {
            var fileOfSlot: [Int] = []
            for (i, count) in slots.enumerated() { fileOfSlot += Array(repeating: i, count: count) }
            var rng = RandomStream(seed: seed, stream: "shuffle/epoch-\(epoch)")
            for j in stride(from: fileOfSlot.count - 1, to: 0, by: -1) { fileOfSlot.swapAt(j, rng.nextInt(below: j + 1)) }
            var next = Array(repeating: 0, count: sources.count)
            return fileOfSlot.map { i in defer { next[i] += 1 }; return drawn[i][next[i]] }
        }
        var keyed: [(position: Double, file: Int, index: Int)] = []
        for (i, picks) in drawn.enumerated() {
            for (j, index) in picks.enumerated() { keyed.append(((Double(j) + 0.5) / Double(picks.count), i, index)) }
        }
        keyed.sort { $0.position != $1.position ? $0.position < $1.position : $0.file < $1.file }
        return keyed.map(\.index)
    }

    /// The p-th pass over a file of n examples: a Fisher–Yates permutation on its own stream.
    static func pass(_ p: Int, file: Int, count n: Int, shuffle: Bool, seed: UInt64) -> [Int] {
        var permutation = Array(0..<n)
        guard shuffle, n > 1 else { return permutation }
        var rng = RandomStream(seed: seed, stream: "mix/file-\(file)/pass-\(p)")
        for i in stride(from: n - 1, to: 0, by: -1) { permutation.swapAt(i, rng.nextInt(below: i + 1)) }
        return permutation
    }

    /// The mixture after removing the examples at `removed` (sorted or not): ranges shrink in place.
    public func removing(_ removed: Set<Int>) -> DataMixture {
        var start = 0
        return DataMixture(sources: sources.map { source in
            let kept = source.range.filter { !removed.contains($0) }.count
            defer { start += kept }
            return Source(name: source.name, range: start..<(start + kept), weight: source.weight)
        })
    }
}

extension TrainingDataset {
    /// One dataset of several files mixed by weight; `maxExamples` keeps a file's first N examples.
    public static func mixing(_ parts: [(data: TrainingDataset, weight: Double, maxExamples: Int?)]) -> TrainingDataset {
        var examples: [TokenizedExample] = []
        var sources: [DataMixture.Source] = []
        for part in parts {
            let kept = part.maxExamples.map { Array(part.data.examples.prefix($0)) } ?? part.data.examples
            sources.append(.init(name: part.data.source, range: examples.count..<(examples.count + kept.count), weight: part.weight))
            examples += kept
        }
        var audit = DatasetAudit()
        audit.examples = examples.count
        for e in examples { audit.tokens += e.ids.count; audit.supervisedTokens += e.supervisedTokens; if e.truncated { audit.truncated += 1 } }
        audit.skippedNoSupervision = parts.reduce(0) { $0 + $1.data.audit.skippedNoSupervision }
        audit.sample = parts.first?.data.audit.sample
        return TrainingDataset(examples: examples, padId: parts.first?.data.padId ?? 0,
                               source: parts.map(\.data.source).joined(separator: " + "), audit: audit,
                               mixture: DataMixture(sources: sources))
    }

    /// One line per file of the mix (named by `labels`, else by its source): its examples and its share of an epoch.
    public func mixtureLines(labels: [String]? = nil) -> [String] {
        guard let mixture else { return [] }
        let slots = mixture.slotsPerEpoch
        let total = max(1, slots.reduce(0, +))
        return mixture.sources.enumerated().map { i, source in
            let supervised = examples[source.range].reduce(0) { $0 + $1.supervisedTokens }
            let passes = source.range.isEmpty ? 0 : Double(slots[i]) / Double(source.range.count)
            let label = labels.flatMap { $0.indices.contains(i) ? $0[i] : nil } ?? source.name
            return "  \(label): \(source.range.count) examples, \(supervised) supervised tokens; weight "
                + Self.number(source.weight) + String(format: " -> %d of %d examples per epoch (%.1f%%, %.2f passes over the file)",
                                                      slots[i], total, 100 * Double(slots[i]) / Double(total), passes)
        }
    }

    private static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}
