import Foundation
import TensorIO

/// llama.cpp's conventions for Llama-family GGUF files (convert_hf_to_gguf.py, gguf-py
/// constants.py `MODEL_TENSOR` names, llama-arch.cpp): architecture names, tensor names, and the
/// q/k row permutation of the `llama` architecture.
public enum GGUFLlama {
    /// The GGUF architecture our model type is written as (and read from).
    public static func architecture(modelType: String) -> String? {
        switch modelType {
        case "llama", "mistral", "minimind": return "llama"
        case "qwen2": return "qwen2"
        case "qwen3": return "qwen3"
        default: return nil
        }
    }
    public static let readableArchitectures = ["llama", "mistral", "qwen2", "qwen3"]

    /// The GGUF tensor name of a model tensor (`layout` names → llama.cpp names), or nil.
    public static func tensorName(projection p: Projection, layer l: Int) -> String {
        let suffix: String
        switch p {
        case .q: suffix = "attn_q"
        case .k: suffix = "attn_k"
        case .v: suffix = "attn_v"
        case .o: suffix = "attn_output"
        case .gate: suffix = "ffn_gate"
        case .up: suffix = "ffn_up"
        case .down: suffix = "ffn_down"
        }
        return "blk.\(l).\(suffix)"
    }
    public static let embedding = "token_embd", finalNorm = "output_norm", head = "output"
    public static func attentionNorm(layer l: Int) -> String { "blk.\(l).attn_norm" }
    public static func mlpNorm(layer l: Int) -> String { "blk.\(l).ffn_norm" }
    public static func queryNorm(layer l: Int) -> String { "blk.\(l).attn_q_norm" }
    public static func keyNorm(layer l: Int) -> String { "blk.\(l).attn_k_norm" }

    /// Whether q/k rows are permuted between Hugging Face's rotate-half pairing and llama.cpp's
    /// adjacent pairing: only the `llama` architecture uses adjacent pairs (LLAMA_ROPE_TYPE_NORM);
    /// qwen2/qwen3 use NEOX (rotate-half) rotary, as Hugging Face does.
    public static func permutesQueryKey(architecture: String) -> Bool { architecture == "llama" }

    /// convert_hf_to_gguf.py `LlamaModel.permute`: per head, rows (t·HS/2 + j) move to (2j + t), so
    /// the pair (j, j + HS/2) that rotate-half rotates together becomes adjacent. `rows` = heads·HS,
    /// each row `columns` wide (a bias is columns = 1).
    public static func permuteRows(_ w: [Float], heads: Int, columns: Int) -> [Float] {
        moveRows(w, heads: heads, columns: columns, toStored: true)
    }

    /// The inverse of `permuteRows` (reading a llama GGUF back into rotate-half order).
    public static func unpermuteRows(_ w: [Float], heads: Int, columns: Int) -> [Float] {
        moveRows(w, heads: heads, columns: columns, toStored: false)
    }

    /// One loop for both directions: row `original` = t·HS/2 + j of a head and row `stored` = 2j + t.
    static func moveRows(_ w: [Float], heads: Int, columns: Int, toStored: Bool) -> [Float] {
        var out = w
        let rowsPerHead = w.count / columns / heads, half = rowsPerHead / 2
        for h in 0..<heads {
            for t in 0..<2 {
                for j in 0..<half {
                    let original = h * rowsPerHead + t * half + j, stored = h * rowsPerHead + 2 * j + t
                    let (from, to) = toStored ? (original, stored) : (stored, original)
                    for c in 0..<columns { out[to * columns + c] = w[from * columns + c] }
                }
            }
        }
        return out
    }

    /// The model config a GGUF's `<arch>.*` metadata describes (transformers' GGUF_CONFIG_MAPPING
    /// reading of the same keys), with the special-token ids from `tokenizer.ggml.*`.
    public static func config(from file: GGUFFile) throws -> ModelConfig {
        let path = file.url.path
        guard let arch = file.metadata["general.architecture"]?.string else { throw GGUFError.missingMetadata(file: path, key: "general.architecture") }
        guard readableArchitectures.contains(arch) else {
            throw GGUFError.unsupported(file: path, what: "architecture '\(arch)'", hint: "qlora-run reads " + readableArchitectures.joined(separator: ", ") + " GGUF files")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.int else { throw GGUFError.missingMetadata(file: path, key: "\(arch).\(key)") }
            return v
        }
        func optionalInt(_ key: String) -> Int? { file.metadata["\(arch).\(key)"]?.int }
        func double(_ key: String) -> Double? { file.metadata["\(arch).\(key)"]?.double }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let embeddingRows = file.info(embedding + ".weight")?.shape.first
        guard let vocab = optionalInt("vocab_size") ?? embeddingRows ?? file.metadata["tokenizer.ggml.tokens"]?.array?.count else {
            throw GGUFError.missingMetadata(file: path, key: "\(arch).vocab_size")
        }
        var config = ModelConfig(
            modelType: arch == "llama" ? "llama" : arch, vocabSize: vocab, hiddenSize: hidden,
            intermediateSize: try int("feed_forward_length"), layers: try int("block_count"), heads: heads,
            kvHeads: optionalInt("attention.head_count_kv") ?? heads,
            headDim: optionalInt("attention.key_length") ?? optionalInt("rope.dimension_count") ?? hidden / max(heads, 1),
            rmsNormEps: double("attention.layer_norm_rms_epsilon") ?? 1e-6,
            ropeTheta: double("rope.freq_base") ?? (arch == "qwen2" || arch == "qwen3" ? 1_000_000 : 10000),
            maxPositionEmbeddings: optionalInt("context_length") ?? 2048,
            tieWordEmbeddings: file.info(head + ".weight") == nil,
            attentionBias: file.info("blk.0.attn_o.bias") != nil || file.info("blk.0.attn_output.bias") != nil,
            bosTokenId: file.metadata["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenIds: file.metadata["tokenizer.ggml.eos_token_id"]?.int.map { [$0] } ?? [],
            padTokenId: file.metadata["tokenizer.ggml.padding_token_id"]?.int, dtype: "float32")
        if arch == "llama", file.info("blk.0.attn_q.bias") != nil { config.attentionBias = true }
        if let kind = file.metadata["\(arch).rope.scaling.type"]?.string, kind != "none" {
            guard kind == "linear", let factor = double("rope.scaling.factor") else {
                throw GGUFError.unsupported(file: path, what: "rope scaling '\(kind)'", hint: "only linear rope scaling is read from GGUF")
            }
            config.ropeScaling = .init(type: "linear", factor: factor)
        }
        do { try config.validate() } catch {
            throw GGUFError.corrupt(file: path, detail: "its hyper-parameters do not describe a model qlora-run runs: \(error.localizedDescription)")
        }
        return config
    }
}
