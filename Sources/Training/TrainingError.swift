import Foundation

/// Everything that can go wrong while preparing data, attaching adapters, training or evaluating.
/// Each case says what failed, where, and how to fix it.
public enum TrainingError: LocalizedError, Equatable {
    case malformedJSONLine(file: String, line: Int, detail: String)
    case missingField(file: String, line: Int, detail: String)
    case unknownRole(file: String, line: Int, role: String)
    case chatTemplate(file: String, line: Int, detail: String)
    case unsupervisedLine(file: String, line: Int)
    case emptyDataset(file: String)
    case noSupervisedTokens(file: String, examples: Int)
    case unreadableFile(path: String, detail: String)
    case noMatchingModules(targets: String, available: [String])
    case invalidOption(String)
    case adapterMismatch(String)
    case corruptCheckpoint(path: String, detail: String)
    case interrupted(step: Int)

    public var errorDescription: String? {
        switch self {
        case let .malformedJSONLine(file, line, detail):
            return "\(file):\(line): malformed JSON line: \(detail). Each line must be one JSON object."
        case let .missingField(file, line, detail):
            return "\(file):\(line): \(detail). Expected `conversations` or `messages` ([{role, content}] or ShareGPT [{from, value}]), Alpaca `instruction` + `output`, `text`, or `prompt` + `completion`."
        case let .unsupervisedLine(file, line):
            return "\(file):\(line): this example has no supervised token (no assistant reply or completion to learn); add one, or set train_on_prompt: true."
        case let .chatTemplate(file, line, detail):
            return "\(file):\(line): \(detail)"
        case let .unknownRole(file, line, role):
            return "\(file):\(line): unknown role \"\(role)\"; use system, user or assistant."
        case let .emptyDataset(file):
            return "\(file): the dataset has no examples; add JSONL lines."
        case let .noSupervisedTokens(file, examples):
            return "\(file): none of the \(examples) examples has a supervised token (no assistant content within max_seq_len); add assistant replies, raise max_seq_len, or set train_on_prompt: true."
        case let .unreadableFile(path, detail):
            return "cannot read \(path): \(detail)"
        case let .noMatchingModules(targets, available):
            return "adapter targets \(targets) match no module; available modules: \(available.joined(separator: ", "))"
        case let .invalidOption(message):
            return message
        case let .adapterMismatch(message):
            return "adapter does not fit the model: \(message)"
        case let .corruptCheckpoint(path, detail):
            return "training checkpoint \(path) is unreadable (\(detail)); delete it to restart training from scratch."
        case let .interrupted(step):
            return "training interrupted after optimizer step \(step); a checkpoint was written, re-run to resume."
        }
    }
}
