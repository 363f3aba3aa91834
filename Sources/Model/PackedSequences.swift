import Kernels

/// Packed rows: several examples concatenated into one row of the batch, each a *segment* that
/// sees only itself — block-diagonal causal attention, rotary positions restarting at 0 at each
/// segment start. Everything else in a decoder layer is per token and needs no change.
///
/// Attention runs per segment on its own (B = 1, T = the segment's length, pointers offset to its
/// first token), so the blocks between segments are never computed: the cost is Σ len², not T².
/// A row's segments cover 0..<T in order; the padding after its last example is a segment of its
/// own (it sees only padding, so its values are finite and reach no loss).
extension LlamaModel {
    /// True when every row's segments are non-empty, in order, and cover 0..<T exactly.
    public static func segmentsCover(_ segments: [[Range<Int>]], B: Int, T: Int) -> Bool {
        guard segments.count == B else { return false }
        for row in segments {
            var next = 0
            for r in row {
                guard r.lowerBound == next, !r.isEmpty else { return false }
                next = r.upperBound
            }
            guard next == T else { return false }
        }
        return true
    }

    /// Rotary positions (B, T): t within its segment, or t when the rows are not packed.
    func setPositions(_ p: ActivationPlan) {
        let T = p.T
        guard let segments = p.segments else {
            for n in 0..<(p.B * T) { p.positions[n] = Int32(n % T) }
            return
        }
        for (b, row) in segments.enumerated() {
            for r in row { for t in r { p.positions[b * T + t] = Int32(t - r.lowerBound) } }
        }
    }

    /// The attention calls of one layer: the whole batch, or one per segment, each as
    /// (first token of the span in the (B·T) rows, rows B, length T).
    func attentionSpans(_ p: ActivationPlan) -> [(first: Int, B: Int, T: Int)] {
        guard let segments = p.segments else { return [(0, p.B, p.T)] }
        return segments.enumerated().flatMap { b, row in row.map { (b * p.T + $0.lowerBound, 1, $0.count) } }
    }

    /// Attention forward of one layer, span by span (`mask` only with whole rows: segments take none).
    func attentionForward(_ a: LayerActivations, plan p: ActivationPlan, mask: UnsafePointer<Float>?) {
        let c = config, NH = c.heads, KVH = c.kvHeads, HS = c.headDim, qs = NH * HS, kvs = KVH * HS
        for s in attentionSpans(p) {
            let n = s.first
            Attention.forward(output: a.attention.p + n * qs, probs: nil, q: a.q.p + n * qs, k: a.k.p + n * kvs, v: a.v.p + n * kvs,
                              keyMask: mask, B: s.B, T: s.T, NH: NH, KVH: KVH, HS: HS)
        }
    }

    /// Attention backward of one layer (accumulates into g.q, g.k, g.v), over the same spans.
    func attentionBackward(_ a: LayerActivations, _ g: GradientBuffers, plan p: ActivationPlan, mask: UnsafePointer<Float>?) {
        let c = config, NH = c.heads, KVH = c.kvHeads, HS = c.headDim, qs = NH * HS, kvs = KVH * HS
        for s in attentionSpans(p) {
            let n = s.first
            Attention.backward(gradQ: g.q.p + n * qs, gradK: g.k.p + n * kvs, gradV: g.v.p + n * kvs, gradOutput: g.attention.p + n * qs,
                               probs: nil, q: a.q.p + n * qs, k: a.k.p + n * kvs, v: a.v.p + n * kvs,
                               keyMask: mask, B: s.B, T: s.T, NH: NH, KVH: KVH, HS: HS)
        }
    }
}
