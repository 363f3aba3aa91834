import Foundation

/// A Hugging Face `config.json` for the Llama family (llama, mistral, qwen2, minimind).
///
/// Reads both transformers 4 (top-level `rope_theta`, `torch_dtype`) and transformers 5
/// (`rope_parameters: {rope_theta, rope_type}`, `dtype`) spellings, HF's defaults via
/// `decodeIfPresent`, and MiniMind's legacy `LMConfig` keys (`dim`, `n_layers`, `n_heads`,
/// `n_kv_heads`, `hidden_dim`, `multiple_of`, `norm_eps`, `max_seq_len`) next to the HF-style
/// keys newer MiniMind (`MiniMindConfig`) writes. Unknown fields are ignored; unsupported values
/// (`hidden_act` other than silu, rope scaling other than linear) are errors naming the field.
public struct ModelConfig: Codable, Sendable, Equatable {
    public struct RopeScaling: Codable, Sendable, Equatable {
        public var type: String      // "linear" or "llama3"
        public var factor: Double
        /// llama3 only (transformers `_compute_llama3_parameters`).
        public var lowFreqFactor: Double = 1
        public var highFreqFactor: Double = 4
        public var originalMaxPositionEmbeddings: Int = 8192
        public init(type: String = "linear", factor: Double) { self.type = type; self.factor = factor }
    }

    /// bitsandbytes `quantization_config` as transformers writes it for a 4-bit checkpoint.
    public struct QuantizationConfig: Codable, Sendable, Equatable {
        public var quantType: String            // "nf4" | "fp4"
        public var useDoubleQuant: Bool
        public var computeDtype: String         // "float32"
        public var skipModules: [String]
        public init(quantType: String, useDoubleQuant: Bool, computeDtype: String = "float32", skipModules: [String]) {
            self.quantType = quantType; self.useDoubleQuant = useDoubleQuant
            self.computeDtype = computeDtype; self.skipModules = skipModules
        }
    }

    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var maxPositionEmbeddings: Int
    /// Mistral/Qwen2 sliding-window attention: a token sees at most this many positions (itself
    /// included). Not implemented: longer sequences are refused, never silently attended in full.
    public var slidingWindow: Int?
    public var tieWordEmbeddings: Bool
    /// q/k/v (and for llama/mistral also o) projections carry biases. qwen2 always has q/k/v biases.
    public var attentionBias: Bool
    public var hiddenAct: String
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?
    /// Storage dtype named by the checkpoint ("float32", "bfloat16", ...), informational.
    public var dtype: String?
    public var quantization: QuantizationConfig?
    /// Standard deviation of the normal initialisation of a freshly initialised model (HF
    /// `initializer_range`); no effect on loaded weights.
    public var initializerRange: Double = 0.02

    public var eosTokenId: Int? { eosTokenIds.first }

    /// q, k, v projections have a bias.
    public var qkvBias: Bool { modelType == "qwen2" || attentionBias }
    /// Qwen3: RMSNorm over each head's query and key (q_norm/k_norm, weight (HS)) before rotary.
    public var qkNorm: Bool { modelType == "qwen3" }
    /// o projection has a bias (transformers' LlamaAttention uses `attention_bias` for all four;
    /// Qwen2Attention hard-codes bias=True for q/k/v and False for o).
    public var outputBias: Bool { modelType != "qwen2" && attentionBias }

    public static let supportedModelTypes = ["llama", "mistral", "qwen2", "qwen3", "minimind"]

    public init(modelType: String = "llama", vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int,
                heads: Int, kvHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double = 1e-6,
                ropeTheta: Double = 10000, ropeScaling: RopeScaling? = nil, maxPositionEmbeddings: Int = 2048,
                tieWordEmbeddings: Bool = false, attentionBias: Bool = false, hiddenAct: String = "silu",
                bosTokenId: Int? = 1, eosTokenIds: [Int] = [2], padTokenId: Int? = 0, dtype: String? = "float32",
                quantization: QuantizationConfig? = nil) {
        self.modelType = modelType; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.layers = layers; self.heads = heads
        self.kvHeads = kvHeads ?? heads; self.headDim = headDim ?? (heads > 0 ? hiddenSize / heads : 0)
        self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta; self.ropeScaling = ropeScaling
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias; self.hiddenAct = hiddenAct; self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds; self.padTokenId = padTokenId; self.dtype = dtype
        self.quantization = quantization
    }

    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> ModelConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.unreadableConfig(file: url.path, reason: error.localizedDescription)
        }
        do {
            return try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let e as ModelError {
            throw e
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
                let DecodingError.dataCorrupted(ctx) {
            let path = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw ModelError.unreadableConfig(file: url.path, reason: (path.isEmpty ? "" : "field '\(path)': ") + ctx.debugDescription)
        } catch {
            throw ModelError.unreadableConfig(file: url.path, reason: "\(error)")
        }
    }

    /// Writes `config.json` (sorted keys, so identical configs give identical bytes).
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    public func validate() throws {
        func positive(_ v: Int, _ f: String) throws {
            if v <= 0 { throw ModelError.invalidConfig(field: f, reason: "must be positive, found \(v)") }
        }
        try positive(vocabSize, "vocab_size"); try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size"); try positive(layers, "num_hidden_layers")
        try positive(heads, "num_attention_heads"); try positive(kvHeads, "num_key_value_heads")
        try positive(headDim, "head_dim"); try positive(maxPositionEmbeddings, "max_position_embeddings")
        if heads % kvHeads != 0 {
            throw ModelError.invalidConfig(field: "num_key_value_heads",
                                           reason: "\(kvHeads) does not divide num_attention_heads \(heads)")
        }
        if headDim % 2 != 0 { throw ModelError.invalidConfig(field: "head_dim", reason: "rotary embeddings need an even head_dim, found \(headDim)") }
        if hiddenAct != "silu" {
            throw ModelError.unsupportedConfig(field: "hidden_act", value: "\"\(hiddenAct)\"", hint: "only silu (SwiGLU) is supported")
        }
        if !ModelConfig.supportedModelTypes.contains(modelType) {
            throw ModelError.unsupportedConfig(field: "model_type", value: "\"\(modelType)\"",
                                               hint: "supported: " + ModelConfig.supportedModelTypes.joined(separator: ", "))
        }
        if let w = slidingWindow, w <= 0 { throw ModelError.invalidConfig(field: "sliding_window", reason: "must be positive, found \(w)") }
        if let s = ropeScaling, !(s.factor > 0) {
            throw ModelError.invalidConfig(field: "rope_scaling.factor", reason: "must be positive, found \(s.factor)")
        }
    }

    // MARK: Codable

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case kvHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings", tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias", hiddenAct = "hidden_act", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", padTokenId = "pad_token_id", dtype, torchDtype = "torch_dtype"
        case quantizationConfig = "quantization_config", architectures, initializerRange = "initializer_range"
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window"
        // MiniMind legacy LMConfig keys.
        case dim, nLayers = "n_layers", nHeads = "n_heads", nKvHeads = "n_kv_heads", hiddenDim = "hidden_dim"
        case multipleOf = "multiple_of", normEps = "norm_eps", maxSeqLen = "max_seq_len"
    }

    /// Either rope_parameters (transformers 5) or rope_scaling (transformers 4): both name the type
    /// as `rope_type` or (older) `type`.
    struct RopeDict: Decodable {
        var ropeTheta: Double?; var ropeType: String?; var type: String?; var factor: Double?
        var lowFreqFactor: Double?; var highFreqFactor: Double?; var originalMaxPositionEmbeddings: Int?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type, factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        }
    }

    struct QuantDict: Codable {
        var quantMethod: String?; var loadIn4bit: Bool?; var quantType: String?; var doubleQuant: Bool?
        var computeDtype: String?; var skip: [String]?
        enum CodingKeys: String, CodingKey {
            case quantMethod = "quant_method", loadIn4bit = "load_in_4bit", quantType = "bnb_4bit_quant_type"
            case doubleQuant = "bnb_4bit_use_double_quant", computeDtype = "bnb_4bit_compute_dtype"
            case skip = "llm_int8_skip_modules"
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func int(_ keys: CodingKeys...) throws -> Int? {
            for k in keys { if let v = try c.decodeIfPresent(Int.self, forKey: k) { return v } }
            return nil
        }
        func required(_ v: Int?, _ field: String) throws -> Int {
            guard let v else { throw ModelError.missingConfigField(field: field) }
            return v
        }
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        vocabSize = try required(try int(.vocabSize), "vocab_size")
        hiddenSize = try required(try int(.hiddenSize, .dim), "hidden_size")
        layers = try required(try int(.layers, .nLayers), "num_hidden_layers")
        heads = try required(try int(.heads, .nHeads), "num_attention_heads")
        kvHeads = try int(.kvHeads, .nKvHeads) ?? heads
        headDim = try int(.headDim) ?? (heads > 0 ? hiddenSize / heads : 0)
        if let v = try int(.intermediateSize, .hiddenDim) {
            intermediateSize = v
        } else if modelType == "minimind" {
            // MiniMind: int(hidden·8/3) rounded up to a multiple of 64 (LMConfig: 4·dim·2/3, multiple_of 64).
            let m = try int(.multipleOf) ?? 64
            let raw = Int(Double(hiddenSize) * 8.0 / 3.0)
            intermediateSize = m * ((raw + m - 1) / m)
        } else {
            throw ModelError.missingConfigField(field: "intermediate_size")
        }
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps)
            ?? c.decodeIfPresent(Double.self, forKey: .normEps) ?? (modelType == "minimind" ? 1e-5 : 1e-6)
        maxPositionEmbeddings = try int(.maxPositionEmbeddings, .maxSeqLen) ?? (modelType == "minimind" ? 32768 : 2048)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? (modelType == "minimind")
        // Mistral: sliding_window (null: none). Qwen2: only with use_sliding_window: true.
        let window = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        let useWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? (modelType != "qwen2" && modelType != "qwen3")
        slidingWindow = useWindow ? window : nil
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? 0.02
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenId) ?? []
        }
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype) ?? c.decodeIfPresent(String.self, forKey: .torchDtype)

        // Rotary: transformers 5 rope_parameters {rope_theta, rope_type, factor}; transformers 4 rope_theta + rope_scaling.
        var theta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        var scalingDict: RopeDict? = nil
        var scalingField = "rope_scaling"
        if let p = try c.decodeIfPresent(RopeDict.self, forKey: .ropeParameters) {
            if let t = p.ropeTheta { theta = t }
            scalingDict = p; scalingField = "rope_parameters"
        }
        if let s = try c.decodeIfPresent(RopeDict.self, forKey: .ropeScaling) {
            scalingDict = s; scalingField = "rope_scaling"
        }
        ropeTheta = theta ?? (modelType == "minimind" ? 1e6 : 10000)
        ropeScaling = nil
        if let s = scalingDict {
            let kind = s.ropeType ?? s.type ?? "default"
            switch kind {
            case "default":
                break
            case "linear":
                guard let f = s.factor else { throw ModelError.missingConfigField(field: "\(scalingField).factor") }
                ropeScaling = RopeScaling(type: "linear", factor: f)
            case "llama3":
                guard let f = s.factor else { throw ModelError.missingConfigField(field: "\(scalingField).factor") }
                var r = RopeScaling(type: "llama3", factor: f)
                guard let low = s.lowFreqFactor else { throw ModelError.missingConfigField(field: "\(scalingField).low_freq_factor") }
                guard let high = s.highFreqFactor else { throw ModelError.missingConfigField(field: "\(scalingField).high_freq_factor") }
                guard let original = s.originalMaxPositionEmbeddings else {
                    throw ModelError.missingConfigField(field: "\(scalingField).original_max_position_embeddings")
                }
                guard high > low else {
                    throw ModelError.invalidConfig(field: "\(scalingField).high_freq_factor", reason: "must exceed low_freq_factor \(low), found \(high)")
                }
                r.lowFreqFactor = low; r.highFreqFactor = high; r.originalMaxPositionEmbeddings = original
                ropeScaling = r
            default:
                throw ModelError.unsupportedConfig(field: "\(scalingField).rope_type", value: "\"\(kind)\"",
                                                   hint: "supported rotary scaling: default, linear, llama3")
            }
        }
        if let q = try c.decodeIfPresent(QuantDict.self, forKey: .quantizationConfig) {
            guard q.quantMethod == nil || q.quantMethod == "bitsandbytes", q.loadIn4bit ?? true else {
                throw ModelError.unsupportedConfig(field: "quantization_config.quant_method", value: "\"\(q.quantMethod ?? "")\"",
                                                   hint: "only bitsandbytes 4-bit checkpoints are supported")
            }
            quantization = QuantizationConfig(quantType: q.quantType ?? "nf4", useDoubleQuant: q.doubleQuant ?? false,
                                              computeDtype: q.computeDtype ?? "float32", skipModules: q.skip ?? [])
        } else {
            quantization = nil
        }
        try validate()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        let arch: String
        switch modelType {
        case "qwen2": arch = "Qwen2ForCausalLM"
        case "qwen3": arch = "Qwen3ForCausalLM"
        case "mistral": arch = "MistralForCausalLM"
        case "minimind": arch = "MiniMindForCausalLM"
        default: arch = "LlamaForCausalLM"
        }
        try c.encode([arch], forKey: .architectures)
        try c.encode(vocabSize, forKey: .vocabSize); try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize); try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads); try c.encode(kvHeads, forKey: .kvHeads); try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        // Both spellings: transformers 4 reads the top-level rope_theta/rope_scaling, 5 reads rope_parameters.
        try c.encode(ropeTheta, forKey: .ropeTheta)
        var params = c.nestedContainer(keyedBy: RopeDict.CodingKeys.self, forKey: .ropeParameters)
        try params.encode(ropeTheta, forKey: .ropeTheta)
        try params.encode(ropeScaling?.type ?? "default", forKey: .ropeType)
        if let s = ropeScaling {
            try params.encode(s.factor, forKey: .factor)
            var sc = c.nestedContainer(keyedBy: RopeDict.CodingKeys.self, forKey: .ropeScaling)
            try sc.encode(s.type, forKey: .ropeType); try sc.encode(s.factor, forKey: .factor)
            if s.type == "llama3" {
                try params.encode(s.lowFreqFactor, forKey: .lowFreqFactor); try sc.encode(s.lowFreqFactor, forKey: .lowFreqFactor)
                try params.encode(s.highFreqFactor, forKey: .highFreqFactor); try sc.encode(s.highFreqFactor, forKey: .highFreqFactor)
                try params.encode(s.originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
                try sc.encode(s.originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
            }
        }
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        if let w = slidingWindow { try c.encode(w, forKey: .slidingWindow); if modelType == "qwen2" || modelType == "qwen3" { try c.encode(true, forKey: .useSlidingWindow) } }
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias); try c.encode(hiddenAct, forKey: .hiddenAct)
        if initializerRange != 0.02 { try c.encode(initializerRange, forKey: .initializerRange) }
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenId) }
        else if !eosTokenIds.isEmpty { try c.encode(eosTokenIds, forKey: .eosTokenId) }
        try c.encodeIfPresent(padTokenId, forKey: .padTokenId)
        try c.encodeIfPresent(dtype, forKey: .dtype)
        try c.encodeIfPresent(dtype, forKey: .torchDtype)
        if let q = quantization {
            try c.encode(QuantDict(quantMethod: "bitsandbytes", loadIn4bit: true, quantType: q.quantType,
                                   doubleQuant: q.useDoubleQuant, computeDtype: q.computeDtype, skip: q.skipModules),
                         forKey: .quantizationConfig)
        }
    }
}
