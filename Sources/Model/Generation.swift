import Foundation
import Kernels

/// Decoding strategy: greedy (temperature 0) or seeded sampling with temperature, top-k, top-p.
public struct Sampling: Sendable, Equatable {
    public var temperature: Float   // 0 = greedy (argmax, first index on ties, like torch.argmax)
    public var topK: Int            // 0 = no top-k filter
    public var topP: Float          // 1 = no nucleus filter
    public var seed: UInt64
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }
    public static let greedy = Sampling()
    public var isGreedy: Bool { temperature <= 0 }
}

/// Per-layer key/value cache for one sequence: k/v (capacity, KVH·HS), rotary already applied to k.
final class KVCache {
    let capacity: Int
    var length = 0
    let keys: [FloatBuffer]     // per layer (capacity, KVH·HS)
    let values: [FloatBuffer]   // per layer (capacity, KVH·HS)
    init(layers: Int, capacity: Int, kvChannels: Int) {
        self.capacity = capacity
        keys = (0..<layers).map { _ in FloatBuffer(capacity * kvChannels) }
        values = (0..<layers).map { _ in FloatBuffer(capacity * kvChannels) }
    }
}

extension LlamaModel {
    /// Generates up to `maxNewTokens` tokens after `prompt` with a KV cache. Stops early after
    /// producing a token in `stopTokens` (that token is NOT included in the result).
    /// Returns only the new tokens. Invalid prompt ids give an empty result (validate first).
    public func generate(prompt: [Int32], maxNewTokens requested: Int, sampling: Sampling, stopTokens: Set<Int32>) -> [Int32] {
        // Sliding-window attention is not implemented: generation stops at the window, where it
        // would start to differ from the model.
        let maxNewTokens = min(requested, config.slidingWindow.map { $0 - prompt.count } ?? requested)
        guard !prompt.isEmpty, maxNewTokens > 0,
              !prompt.contains(where: { $0 < 0 || Int($0) >= config.vocabSize }) else { return [] }
        let cache = KVCache(layers: layers.count, capacity: prompt.count + maxNewTokens,
                            kvChannels: config.kvHeads * config.headDim)
        var rng = RandomStream(seed: sampling.seed, stream: "generate/sample")
        var logits = decode(tokens: prompt, cache: cache)
        var out: [Int32] = []
        while out.count < maxNewTokens {
            let next = Int32(pick(logits, sampling: sampling, rng: &rng))
            if stopTokens.contains(next) { break }
            out.append(next)
            if out.count == maxNewTokens { break }
            logits = decode(tokens: [next], cache: cache)
        }
        return out
    }

    /// Whether greedy decoding after `prompt` produces exactly `reference` (as `generate` with
    /// `.greedy` would, token for token); stops at the first token that differs, so a miss costs
    /// only the tokens up to it.
    public func greedilyReproduces(prompt: [Int32], reference: [Int32]) -> Bool {
        guard !prompt.isEmpty, !reference.isEmpty,
              !(prompt + reference).contains(where: { $0 < 0 || Int($0) >= config.vocabSize }) else { return false }
        if let window = config.slidingWindow, prompt.count + reference.count > window { return false }
        let cache = KVCache(layers: layers.count, capacity: prompt.count + reference.count, kvChannels: config.kvHeads * config.headDim)
        var rng = RandomStream(seed: 0, stream: "generate/sample")
        var logits = decode(tokens: prompt, cache: cache)
        for (j, expected) in reference.enumerated() {
            guard Int32(pick(logits, sampling: .greedy, rng: &rng)) == expected else { return false }
            if j + 1 < reference.count { logits = decode(tokens: [expected], cache: cache) }
        }
        return true
    }

    /// Runs `tokens` (one sequence, n new positions) through the model, appending to the cache.
    /// Returns the logits (V) of the last position.
    func decode(tokens: [Int32], cache: KVCache) -> [Float] {
        let c = config
        let n = tokens.count, C = c.hiddenSize, NH = c.heads, KVH = c.kvHeads, HS = c.headDim, I = c.intermediateSize
        let p0 = cache.length, L = p0 + n
        let eps = Float(c.rmsNormEps)
        let table = rotaryTable(positions: L)
        let rotLayout: Rotary.Layout = layout.rotaryLayout == .rotateHalf ? .rotateHalf : .interleaved
        let positions = (0..<n).map { Int32(p0 + $0) }          // (1, n)
        let x = FloatBuffer(n * C), h = FloatBuffer(n * C), rstd = FloatBuffer(n)   // (n, C), (n, C), (n)
        let q = FloatBuffer(n * NH * HS), att = FloatBuffer(n * NH * HS)            // (n, NH·HS)
        let gate = FloatBuffer(n * I), up = FloatBuffer(n * I)                      // (n, I)
        let tmp = FloatBuffer(n * C)                                                // (n, C)
        let scores = FloatBuffer(L)                                                 // (L)
        embed(tokens, into: x.p)
        let scale = 1 / Float(HS).squareRoot()
        let group = NH / KVH, kvs = KVH * HS
        positions.withUnsafeBufferPointer { pos in
            for (l, layer) in layers.enumerated() {
                let K = cache.keys[l].p, Vc = cache.values[l].p   // (capacity, KVH·HS)
                layer.attentionNorm.withUnsafeBufferPointer { w in
                    RMSNorm.forward(output: h.p, rstd: rstd.p, input: x.p, weight: w.baseAddress!, rows: n, channels: C, eps: eps)
                }
                layer.q.forward(input: h.p, output: q.p, rows: n)
                layer.k.forward(input: h.p, output: K + p0 * kvs, rows: n)
                layer.v.forward(input: h.p, output: Vc + p0 * kvs, rows: n)
                if let qn = layer.queryNorm, let kn = layer.keyNorm {   // Qwen3: in place, per head
                    let headRstd = FloatBuffer(n * NH)
                    qn.withUnsafeBufferPointer { w in
                        RMSNorm.forward(output: q.p, rstd: headRstd.p, input: q.p, weight: w.baseAddress!, rows: n * NH, channels: HS, eps: eps)
                    }
                    kn.withUnsafeBufferPointer { w in
                        RMSNorm.forward(output: K + p0 * kvs, rstd: headRstd.p, input: K + p0 * kvs, weight: w.baseAddress!, rows: n * KVH, channels: HS, eps: eps)
                    }
                }
                Rotary.forward(q.p, positions: pos.baseAddress!, table: table, B: 1, T: n, H: NH, HS: HS, layout: rotLayout)
                Rotary.forward(K + p0 * kvs, positions: pos.baseAddress!, table: table, B: 1, T: n, H: KVH, HS: HS, layout: rotLayout)
                // Causal attention of the n new queries over the L cached keys.
                for i in 0..<n {
                    let last = p0 + i
                    for hd in 0..<NH {
                        let qv = q.p + i * NH * HS + hd * HS, kh = hd / group
                        var mx = -Float.infinity
                        for j in 0...last {
                            let kv = K + j * kvs + kh * HS
                            var s: Float = 0
                            for d in 0..<HS { s += qv[d] * kv[d] }
                            s *= scale
                            scores.p[j] = s
                            mx = max(mx, s)
                        }
                        var sum: Float = 0
                        for j in 0...last { let e = expf(scores.p[j] - mx); scores.p[j] = e; sum += e }
                        let o = att.p + i * NH * HS + hd * HS
                        for d in 0..<HS { o[d] = 0 }
                        for j in 0...last {
                            let pj = scores.p[j] / sum
                            let vv = Vc + j * kvs + kh * HS
                            for d in 0..<HS { o[d] += pj * vv[d] }
                        }
                    }
                }
                layer.o.forward(input: att.p, output: tmp.p, rows: n)
                add(output: x.p, x.p, tmp.p, count: n * C)
                layer.mlpNorm.withUnsafeBufferPointer { w in
                    RMSNorm.forward(output: h.p, rstd: rstd.p, input: x.p, weight: w.baseAddress!, rows: n, channels: C, eps: eps)
                }
                layer.gate.forward(input: h.p, output: gate.p, rows: n)
                layer.up.forward(input: h.p, output: up.p, rows: n)
                SwiGLU.forward(output: gate.p, gate: gate.p, up: up.p, count: n * I)
                layer.down.forward(input: gate.p, output: tmp.p, rows: n)
                add(output: x.p, x.p, tmp.p, count: n * C)
            }
        }
        cache.length = L
        // Final norm and head on the last position only.
        finalNorm.withUnsafeBufferPointer { w in
            RMSNorm.forward(output: h.p, rstd: rstd.p, input: x.p + (n - 1) * C, weight: w.baseAddress!, rows: 1, channels: C, eps: eps)
        }
        var logits = [Float](repeating: 0, count: c.vocabSize)
        logits.withUnsafeMutableBufferPointer { lp in head.forward(input: h.p, output: lp.baseAddress!, rows: 1) }
        return logits
    }

    /// Greedy argmax, or temperature → top-k → top-p (nucleus, Holtzman et al. 2020 §3.1) sampling.
    func pick(_ logits: [Float], sampling s: Sampling, rng: inout RandomStream) -> Int {
        if s.isGreedy || s.topK == 1 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if s.topK > 0 && s.topK < order.count { order = Array(order.prefix(s.topK)) }
        let mx = Double(logits[order[0]])
        var probs = order.map { Foundation.exp((Double(logits[$0]) - mx) / Double(s.temperature)) }
        var total = probs.reduce(0, +)
        if s.topP < 1 {
            var cumulative = 0.0, keep = 0
            for p in probs { cumulative += p / total; keep += 1; if cumulative >= Double(s.topP) { break } }
            order = Array(order.prefix(max(1, keep))); probs = Array(probs.prefix(max(1, keep)))
            total = probs.reduce(0, +)
        }
        let u = rng.nextUniform() * total
        var acc = 0.0
        for (i, p) in probs.enumerated() {
            acc += p
            if u < acc { return order[i] }
        }
        return order[order.count - 1]
    }
}
