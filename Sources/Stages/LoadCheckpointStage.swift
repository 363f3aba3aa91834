import Foundation
import PipelineCore
import Model
import Tokenizer

/// `load_checkpoint`: the artifact is a self-contained checkpoint directory
/// (config.json + safetensors weights + tokenizer files).
/// - `path:` links (or copies) the directory's config, weights and tokenizer files after checking
///   that config.json parses and the weights load.
/// - `init:` builds a new model from the sizes, normal(0, 0.02) from the pipeline seed
///   (`LlamaModel.initialized`), saves it, and writes a byte-level tokenizer (256 bytes + ChatML specials).
struct LoadCheckpointStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        let out = context.outputDirectory
        if let source = context.inputPaths["path"] {
            let fm = FileManager.default
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return try loadGGUF(source, context)
            }
            let names = try fm.contentsOfDirectory(atPath: source.path).sorted()
            guard names.contains("config.json") else {
                throw StageError.invalidCheckpoint(directory: source.path, reason: "no config.json; expected a Hugging Face model directory")
            }
            let weights = names.filter { $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }
            guard !weights.isEmpty else {
                throw StageError.invalidCheckpoint(directory: source.path, reason: "no *.safetensors weights (PyTorch .bin files are not supported; convert them with safetensors)")
            }
            let model = try LlamaModel.load(directory: source)   // fails early, naming the bad tensor
            // The tokenizer is checked here, where an error can name the user's file (later stages
            // read it from the cache).
            if names.contains("tokenizer.json") {
                let file = source.appendingPathComponent("tokenizer.json")
                let tokenizer: Tokenizer
                do { tokenizer = try Tokenizer(contentsOf: file) } catch {
                    throw StageError.invalidCheckpoint(directory: source.path, reason: "tokenizer.json: \((error as? LocalizedError)?.errorDescription ?? "\(error)")")
                }
                guard tokenizer.vocabularySize <= model.config.vocabSize else {
                    throw StageError.invalidCheckpoint(directory: source.path, reason:
                        "tokenizer.json defines \(tokenizer.vocabularySize) token ids but config.json has vocab_size \(model.config.vocabSize); the tokenizer does not belong to these weights")
                }
            } else {
                context.log("warning: \(source.path) has no tokenizer.json; train, evaluate and generate need it (save it with tokenizer.save_pretrained)")
            }
            for name in weights + ArtifactFiles.companions.filter(names.contains) {
                try ArtifactFiles.linkOrCopy(name, from: source, to: out)
            }
            try ArtifactFiles.writeJSON(.object(["name_or_path": .string(Self.nameOrPath(source, asWritten: context.fields["path"]?.stringValue))]),
                                        to: out.appendingPathComponent(ArtifactFiles.sourceFile))
            context.log("loaded \(source.lastPathComponent): \(model.config.modelType), \(model.config.layers) layers, hidden \(model.config.hiddenSize), vocab \(model.config.vocabSize)")
            return StageResult(summary: ["parameters": .integer(Int64(Self.linearParameterCount(model.config)))])
        }
        guard let initFields = context.fields["init"]?.objectValue else {
            throw StageError.invalidCheckpoint(directory: context.stageName, reason: "needs `path` or `init`")
        }
        let int = { (k: String, d: Int) in initFields[k]?.intValue ?? d }
        let arch = initFields["arch"]?.stringValue ?? "llama"
        var config = ModelConfig(
            modelType: arch == "minimind" ? "minimind" : "llama",
            vocabSize: int("vocab_size", 259), hiddenSize: int("hidden_size", 64),
            intermediateSize: int("intermediate_size", 176), layers: int("num_hidden_layers", 2),
            heads: int("num_attention_heads", 4), kvHeads: int("num_key_value_heads", 2),
            rmsNormEps: initFields["rms_norm_eps"]?.doubleValue ?? 1e-5,
            ropeTheta: initFields["rope_theta"]?.doubleValue ?? 10000,
            maxPositionEmbeddings: int("max_position_embeddings", 512),
            tieWordEmbeddings: initFields["tie_word_embeddings"]?.boolValue ?? true,
            bosTokenId: 1, eosTokenIds: [2], padTokenId: 0)
        config.initializerRange = initFields["initializer_range"]?.doubleValue ?? 0.02
        guard config.hiddenSize % config.heads == 0, config.heads % config.kvHeads == 0 else {
            throw StageError.invalidCheckpoint(directory: context.stageName,
                reason: "init: num_attention_heads (\(config.heads)) must divide hidden_size (\(config.hiddenSize)) and num_key_value_heads (\(config.kvHeads)) must divide num_attention_heads")
        }
        // Refuse before allocating what the machine cannot hold (the schema bounds each size, not their product).
        let estimate = Self.estimatedParameters(config)
        let physical = Self.physicalMemoryBytes()
        if physical > 0, estimate.multipliedReportingOverflow(by: 4).overflow || estimate * 4 > physical {
            throw StageError.invalidCheckpoint(directory: context.stageName, reason: String(format:
                "init: this model has about %.3g parameters, %.1f GB as fp32, more than this machine's %.1f GB of memory; reduce hidden_size, intermediate_size, num_hidden_layers or vocab_size",
                Double(estimate), Double(estimate) * 4 / 1e9, Double(physical) / 1e9))
        }
        let model = LlamaModel.initialized(config: config, layout: arch == "minimind" ? .miniMind : .huggingFace, seed: context.seed)
        try model.save(to: out)
        try ByteLevelTokenizerFiles.write(to: out)
        let count = Self.linearParameterCount(model.config)
        context.log("initialised \(arch): \(config.layers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize), \(count) parameters (seed \(context.seed))")
        return StageResult(summary: ["parameters": .integer(Int64(count))])
    }

    /// `path: model.gguf`: the file becomes a Hugging Face checkpoint directory (fp32 weights,
    /// tokenizer and chat template rebuilt from its metadata). The conversion checked every tensor's
    /// shape against the hyper-parameters and every value for finiteness as it wrote them, so the
    /// fp32 model is not loaded back here (that would hold the whole model in memory once more).
    func loadGGUF(_ source: URL, _ context: StageContext) throws -> StageResult {
        let out = context.outputDirectory
        let summary: GGUFCheckpoint.Summary
        do { summary = try GGUFCheckpoint.convert(source, to: out) } catch {
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            throw StageError.invalidCheckpoint(directory: source.path, reason: text.hasPrefix(source.path + ": ") ? String(text.dropFirst(source.path.count + 2)) : text)
        }
        let c = summary.config
        let tokenizer = try Tokenizer(contentsOf: out.appendingPathComponent("tokenizer.json"))
        guard tokenizer.vocabularySize <= c.vocabSize else {
            throw StageError.invalidCheckpoint(directory: source.path, reason: "its vocabulary has \(tokenizer.vocabularySize) tokens but the embedding \(c.vocabSize) rows")
        }
        var origin: [String: JSONValue] = ["name_or_path": .string(context.fields["path"]?.stringValue ?? source.path)]
        if let pre = summary.tokenizerPre { origin[ArtifactFiles.ggufTokenizerPre] = .string(pre) }
        try ArtifactFiles.writeJSON(.object(origin), to: out.appendingPathComponent(ArtifactFiles.sourceFile))
        let types = summary.types.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        context.log("loaded \(source.lastPathComponent) (GGUF, \(summary.architecture); tensors \(types), dequantized to fp32): \(c.layers) layers, hidden \(c.hiddenSize), vocab \(c.vocabSize)")
        return StageResult(summary: ["parameters": .integer(Int64(Self.linearParameterCount(c)))])
    }

    /// Parameters of a Llama-family model of this shape (embeddings, attention, MLP, norms, head).
    static func estimatedParameters(_ c: ModelConfig) -> Int {
        let kv = c.hiddenSize / max(c.heads, 1) * c.kvHeads
        let perLayer = 2 * c.hiddenSize * c.hiddenSize + 2 * c.hiddenSize * kv + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize
        let (layers, o1) = perLayer.multipliedReportingOverflow(by: c.layers)
        let (embeddings, o2) = (c.vocabSize * c.hiddenSize).multipliedReportingOverflow(by: c.tieWordEmbeddings ? 1 : 2)
        let (total, o3) = layers.addingReportingOverflow(embeddings + c.hiddenSize)
        return o1 || o2 || o3 ? Int.max : total
    }

    static func physicalMemoryBytes() -> Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 0
    }

    /// What PEFT's `base_model_name_or_path` should say: the checkpoint's own `_name_or_path`
    /// (a Hub id such as "HuggingFaceTB/SmolLM2-135M-Instruct") when it has one, else the directory
    /// as the pipeline wrote it, so `AutoPeftModelForCausalLM.from_pretrained(adapter)` finds a base.
    static func nameOrPath(_ source: URL, asWritten: String?) -> String {
        if let data = FileManager.default.contents(atPath: source.appendingPathComponent("config.json").path),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let name = object["_name_or_path"] as? String, !name.isEmpty {
            return name
        }
        return asWritten ?? source.path
    }

    /// Linear-layer parameters (the part quantization and adapters act on), from the hyper-parameters:
    /// every projection of every layer and the head (counted even when tied).
    static func linearParameterCount(_ c: ModelConfig) -> Int {
        c.layers * Projection.allCases.reduce(0) { $0 + LlamaModel.projectionShape($1, c).out * LlamaModel.projectionShape($1, c).in }
            + c.vocabSize * c.hiddenSize
    }
}
