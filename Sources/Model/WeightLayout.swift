import Foundation

/// The seven linear projections of a decoder layer.
public enum Projection: String, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down
}

/// How a checkpoint names its tensors. Modules keep the checkpoint's own names everywhere
/// (logs, adapter keys), so a MiniMind model's query projection is `layers.0.attention.wq`.
public enum WeightLayout: String, Codable, Sendable, Equatable {
    /// transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM names.
    case huggingFace
    /// MiniMind's native (Meta llama-style) names: `tok_embeddings`, `layers.N.attention.wq`,
    /// `layers.N.feed_forward.{w1,w2,w3}`, `attention_norm`, `ffn_norm`, `norm`, `output`.
    /// The feed-forward is `w2(silu(w1 x) * w3 x)`: w1 = gate, w3 = up, w2 = down.
    case miniMind

    public var embedding: String { self == .huggingFace ? "model.embed_tokens" : "tok_embeddings" }
    public var finalNorm: String { self == .huggingFace ? "model.norm" : "norm" }
    public var head: String { self == .huggingFace ? "lm_head" : "output" }

    public func attentionNorm(layer: Int) -> String {
        self == .huggingFace ? "model.layers.\(layer).input_layernorm" : "layers.\(layer).attention_norm"
    }
    /// Qwen3's per-head query/key norms (Hugging Face layout only).
    public func queryNorm(layer: Int) -> String { "model.layers.\(layer).self_attn.q_norm" }
    public func keyNorm(layer: Int) -> String { "model.layers.\(layer).self_attn.k_norm" }
    public func mlpNorm(layer: Int) -> String {
        self == .huggingFace ? "model.layers.\(layer).post_attention_layernorm" : "layers.\(layer).ffn_norm"
    }
    public func projection(_ p: Projection, layer: Int) -> String {
        switch self {
        case .huggingFace:
            let base = "model.layers.\(layer)."
            switch p {
            case .q: return base + "self_attn.q_proj"
            case .k: return base + "self_attn.k_proj"
            case .v: return base + "self_attn.v_proj"
            case .o: return base + "self_attn.o_proj"
            case .gate: return base + "mlp.gate_proj"
            case .up: return base + "mlp.up_proj"
            case .down: return base + "mlp.down_proj"
            }
        case .miniMind:
            let base = "layers.\(layer)."
            switch p {
            case .q: return base + "attention.wq"
            case .k: return base + "attention.wk"
            case .v: return base + "attention.wv"
            case .o: return base + "attention.wo"
            case .gate: return base + "feed_forward.w1"
            case .up: return base + "feed_forward.w3"
            case .down: return base + "feed_forward.w2"
            }
        }
    }

    /// Rotary pairing. HF checkpoints rotate halves (`rotate_half`: element i pairs with i + HS/2,
    /// transformers' modeling_llama.apply_rotary_pos_emb). MiniMind's native model code
    /// (`precompute_pos_cis` + `apply_rotary_emb`) views q/k as complex numbers via
    /// `reshape(..., -1, 2)` and multiplies by `polar(1, t·θ_i)`: element 2i pairs with 2i+1
    /// (interleaved). Frequencies are the same θ_i = theta^(-2i/HS) in both.
    public var rotaryLayout: RotaryLayoutKind { self == .huggingFace ? .rotateHalf : .interleaved }

    /// Picks the layout from the tensor names present in a checkpoint.
    public static func detect(names: [String]) -> WeightLayout? {
        if names.contains(where: { $0.hasPrefix("model.embed_tokens.") || $0.hasPrefix("model.layers.") }) { return .huggingFace }
        if names.contains(where: { $0.hasPrefix("tok_embeddings.") || $0.hasPrefix("layers.") }) { return .miniMind }
        return nil
    }
}

/// Rotary element pairing (see `WeightLayout.rotaryLayout`).
public enum RotaryLayoutKind: Sendable { case rotateHalf, interleaved }
