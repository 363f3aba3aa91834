import Foundation

/// Errors of the stage plug-ins and the CLI glue: what failed, where, and how to fix it.
public enum StageError: LocalizedError, Equatable {
    case invalidSchema(String)
    case unknownKind(String, suggestion: String?)
    case unsupported(field: String, value: String, hint: String)
    case gateFailed(String)
    case missingFile(String)
    case invalidCheckpoint(directory: String, reason: String)
    case invalidField(field: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .invalidSchema(let why): return "the embedded pipeline schema is invalid: \(why)"
        case .unknownKind(let k, let s):
            return "unknown stage kind '\(k)'" + (s.map { "; did you mean '\($0)'?" } ?? "; kinds: " + StageKinds.names.joined(separator: ", "))
        case .unsupported(let f, let v, let hint): return "\(f): \(v) is not supported yet; \(hint)"
        case .gateFailed(let m): return "evaluation gate failed: \(m)"
        case .missingFile(let p): return "\(p): no such file or directory"
        case .invalidCheckpoint(let dir, let reason): return "checkpoint \(dir): \(reason)"
        case .invalidField(let field, let reason): return "\(field): \(reason)"
        }
    }
}
