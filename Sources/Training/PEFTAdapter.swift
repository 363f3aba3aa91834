import Foundation
import Model
import TensorIO

/// PEFT LoRA adapter files: `adapter_config.json` + `adapter_model.safetensors` with keys
/// `base_model.model.<module>.lora_A.weight` (r, in) and `.lora_B.weight` (out, r), as written by
/// peft 0.21 `save_pretrained` (golden/lora_train/adapter_final).
public enum PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    static func key(_ module: String, _ part: String) -> String { "base_model.model.\(module).lora_\(part).weight" }

    /// target_modules as PEFT records them: the distinct last name components, sorted.
    static func targetModules(_ names: [String]) -> [String] {
        Array(Set(names.map { String($0.split(separator: ".").last ?? Substring($0)) })).sorted()
    }

    /// Writes the adapters of `model` into `directory` (created if needed). Deterministic bytes.
    public static func save(_ model: LlamaModel, to directory: URL, baseModelNameOrPath: String, options: LoRAOptions? = nil) throws {
        let modules = LoRAAttacher.adapted(model)
        guard let first = modules.first?.adapter else { throw TrainingError.invalidOption("the model has no adapters to save; attach adapters first") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for m in modules {
            guard let ad = m.adapter else { continue }
            writer.add(key(m.name, "A"), floats: ad.a, shape: [ad.rank, m.inFeatures])
            writer.add(key(m.name, "B"), floats: ad.b, shape: [m.outFeatures, ad.rank])
        }
        try writer.write(to: directory.appendingPathComponent(weightsFile))
        let rank = first.rank
        let rslora = options?.rslora ?? false
        // alpha from the scale: scale = alpha/r (or alpha/√r with rsLoRA)
        let alpha = options?.alpha ?? (rslora ? Double(first.scale) * Double(rank).squareRoot() : Double(first.scale) * Double(rank))
        // The adapter's own rate (what training used; a caller's options may carry the default 0),
        // as the shortest decimal of the Float (0.1, not 0.10000000149011612), so it round-trips.
        let dropout = Double(String(first.dropout)) ?? Double(first.dropout)
        let config = configJSON(rank: rank, alpha: alpha, dropout: dropout, rslora: rslora,
                                targets: targetModules(modules.map(\.name)), baseModel: baseModelNameOrPath)
        try AtomicWrite.write(Array(config.utf8), to: directory.appendingPathComponent(configFile))
    }

    /// The field set of peft 0.21.2's LoraConfig, `json.dumps(indent=2, sort_keys=True)` style.
    static func configJSON(rank: Int, alpha: Double, dropout: Double, rslora: Bool, targets: [String], baseModel: String) -> String {
        func num(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
        func float(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(format: "%.1f", x) : String(x) }
        // Python json.dumps' default ensure_ascii escaping (non-ASCII as \uXXXX), as PEFT writes it.
        func str(_ s: String) -> String {
            var o = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": o += "\\\""; case "\\": o += "\\\\"; case "\n": o += "\\n"; case "\r": o += "\\r"; case "\t": o += "\\t"
                case "\u{08}": o += "\\b"; case "\u{0C}": o += "\\f"
                default:
                    if u.value > 0xFFFF {   // UTF-16 surrogate pair, as Python writes it
                        let v = u.value - 0x10000
                        o += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else if u.value < 0x20 || u.value > 0x7f {
                        o += String(format: "\\u%04x", u.value)
                    } else { o.unicodeScalars.append(u) }
                }
            }
            return o + "\""
        }
        let fields: [(String, String)] = [
            ("alora_invocation_tokens", "null"), ("alpha_pattern", "{}"), ("arrow_config", "null"), ("auto_mapping", "null"),
            ("base_model_name_or_path", str(baseModel)), ("bias", "\"none\""), ("corda_config", "null"),
            ("ensure_weight_tying", "false"), ("eva_config", "null"), ("exclude_modules", "null"), ("fan_in_fan_out", "false"),
            ("inference_mode", "true"), ("init_lora_weights", "true"), ("kasa_config", "null"), ("layer_replication", "null"),
            ("layers_pattern", "null"), ("layers_to_transform", "null"), ("loftq_config", "{}"),
            ("lora_alpha", num(alpha)), ("lora_bias", "false"), ("lora_dropout", float(dropout)), ("lora_ga_config", "null"),
            ("megatron_config", "null"), ("megatron_core", "\"megatron.core\""), ("modules_to_save", "null"),
            ("monteclora_config", "null"), ("peft_type", "\"LORA\""), ("peft_version", "\"0.21.2\""), ("qalora_group_size", "16"),
            ("r", String(rank)), ("rank_pattern", "{}"), ("revision", "null"),
            ("target_modules", "[\n" + targets.map { "    " + str($0) }.joined(separator: ",\n") + "\n  ]"),
            ("target_parameters", "null"), ("task_type", "\"CAUSAL_LM\""), ("trainable_token_indices", "null"),
            ("use_bdlora", "null"), ("use_dora", "false"), ("use_qalora", "false"), ("use_rslora", rslora ? "true" : "false"),
            ("velora_config", "null"),
        ]
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}"
    }

    public struct Config: Equatable, Sendable {
        public var rank: Int; public var alpha: Double; public var dropout: Double; public var rslora: Bool
        public var targetModules: [String]; public var baseModel: String?
        public var scale: Double { rslora ? alpha / Double(rank).squareRoot() : alpha / Double(rank) }
    }

    public static func readConfig(_ directory: URL) throws -> Config {
        let url = directory.appendingPathComponent(configFile)
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TrainingError.unreadableFile(path: url.path, detail: error.localizedDescription) }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TrainingError.adapterMismatch("\(url.path) is not a JSON object")
        }
        if let t = obj["peft_type"] as? String, t != "LORA" { throw TrainingError.adapterMismatch("\(url.path): peft_type \(t) is not LORA") }
        guard let r = (obj["r"] as? NSNumber)?.intValue, r > 0 else { throw TrainingError.adapterMismatch("\(url.path): missing positive integer \"r\"") }
        let alpha = (obj["lora_alpha"] as? NSNumber)?.doubleValue ?? Double(r)
        let targets: [String]
        if let list = obj["target_modules"] as? [String] { targets = list } else if let s = obj["target_modules"] as? String { targets = [s] } else { targets = [] }
        return Config(rank: r, alpha: alpha, dropout: (obj["lora_dropout"] as? NSNumber)?.doubleValue ?? 0,
                      rslora: (obj["use_rslora"] as? Bool) ?? false, targetModules: targets,
                      baseModel: obj["base_model_name_or_path"] as? String)
    }

    /// Attaches the adapters stored in `directory` to the matching modules of `model`, with the
    /// file's lora_dropout (used only while training), or `dropout` when given, 0 included
    /// (attach_adapters `dropout:` written next to `init: {from: DIR}`).
    @discardableResult
    public static func load(from directory: URL, into model: LlamaModel, dropout: Double? = nil,
                            log: (String) -> Void = { _ in }) throws -> [String] {
        let config = try readConfig(directory)
        let p = dropout ?? config.dropout
        guard p >= 0 && p < 1 else {
            throw TrainingError.adapterMismatch("\(directory.appendingPathComponent(configFile).path): lora_dropout \(p) is out of range; use a probability with 0 <= lora_dropout < 1")
        }
        let file = try SafeTensorsFile(url: directory.appendingPathComponent(weightsFile))
        let byName = Dictionary(uniqueKeysWithValues: model.linearModules.map { ($0.name, $0) })
        var names: [String] = []
        for k in file.names where k.hasSuffix(".lora_A.weight") && k.hasPrefix("base_model.model.") {
            names.append(String(k.dropFirst("base_model.model.".count).dropLast(".lora_A.weight".count)))
        }
        guard !names.isEmpty else { throw TrainingError.adapterMismatch("\(file.url.path) holds no lora_A tensors") }
        var done: [String] = []
        for m in model.linearModules where names.contains(m.name) {
            let ka = key(m.name, "A"), kb = key(m.name, "B")
            guard let ia = file.info(ka), let ib = file.info(kb) else { throw TrainingError.adapterMismatch("missing \(kb)") }
            guard ia.shape == [config.rank, m.inFeatures], ib.shape == [m.outFeatures, config.rank] else {
                throw TrainingError.adapterMismatch("\(m.name): lora_A \(ia.shape) / lora_B \(ib.shape), expected [\(config.rank), \(m.inFeatures)] / [\(m.outFeatures), \(config.rank)]")
            }
            m.adapter = LoRAAdapter(rank: config.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                    scale: Float(config.scale), dropout: Float(p), a: try file.floats(ka), b: try file.floats(kb))
            log(LoRAAttacher.adapterLine(m.name, m.inFeatures, m.outFeatures, rank: config.rank, dropout: p))
            done.append(m.name)
        }
        let missing = names.filter { byName[$0] == nil }
        if !missing.isEmpty {
            throw TrainingError.adapterMismatch("modules \(missing.joined(separator: ", ")) of \(directory.path) are not in the model; available modules: \(model.linearModules.map(\.name).joined(separator: ", "))")
        }
        log(LoRAAttacher.summary(model).line)
        return done
    }
}
