import Foundation

/// Every failure of the Model target: each case says what failed, where, and how to fix it.
public enum ModelError: LocalizedError, Equatable {
    /// config.json could not be read or parsed.
    case unreadableConfig(file: String, reason: String)
    /// A config field holds a value we do not support (e.g. `hidden_act: gelu`).
    case unsupportedConfig(field: String, value: String, hint: String)
    /// A config field is missing and has no default.
    case missingConfigField(field: String)
    /// A config field is inconsistent with another.
    case invalidConfig(field: String, reason: String)
    /// The checkpoint's tensors do not match the architecture.
    case tensorMismatch(directory: String, missing: [String], unexpected: [String], misshaped: [String])
    /// A checkpoint could not be read.
    case checkpoint(directory: String, reason: String)
    /// Bad arguments to forward/backward/generation (shapes, token ids).
    case invalidInput(String)
    /// A weight that is NaN or infinite: the file is damaged or was exported from a diverged run.
    case nonFiniteWeight(directory: String, tensor: String, index: Int, value: Float)

    public var errorDescription: String? {
        switch self {
        case let .unreadableConfig(file, reason):
            return "cannot read model config \(file): \(reason)"
        case let .unsupportedConfig(field, value, hint):
            return "config.json: unsupported value \(value) for field '\(field)': \(hint)"
        case let .missingConfigField(field):
            return "config.json: required field '\(field)' is missing"
        case let .invalidConfig(field, reason):
            return "config.json: invalid field '\(field)': \(reason)"
        case let .tensorMismatch(directory, missing, unexpected, misshaped):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { parts.append("unexpected tensors: " + unexpected.joined(separator: ", ")) }
            if !misshaped.isEmpty { parts.append("mis-shaped tensors: " + misshaped.joined(separator: ", ")) }
            return "checkpoint \(directory) does not match its config.json (" + parts.joined(separator: "; ")
                + "); check that config.json belongs to these weights"
        case let .checkpoint(directory, reason):
            return "cannot load checkpoint \(directory): \(reason)"
        case let .invalidInput(message):
            return message
        case let .nonFiniteWeight(directory, tensor, index, value):
            return "checkpoint \(directory): tensor '\(tensor)' holds \(value) at element \(index); weights must be finite " +
                "(the file is damaged, or was saved from a run that diverged): re-download or re-export it"
        }
    }
}
