import Foundation

/// How graph diagnostics name artifact types: "stage 'base' outputs a checkpoint, but this field
/// needs a model with adapters (adapted or trained)". The spine knows no artifact types; whoever
/// registers the stage kinds gives the words (the product's are Stages/ArtifactPhrases.swift).
/// A type without words is named as written: "a 'report' artifact".
public struct ArtifactPhrasing: Sendable, Equatable {
    /// What a stage "outputs", by artifact type.
    public var single: [String: String]
    /// What a field "needs", keyed by its sorted accepted types joined with ",".
    public var groups: [String: String]

    public init(single: [String: String] = [:], groups: [String: String] = [:]) {
        self.single = single
        self.groups = groups
    }

    public func outputs(_ type: String) -> String { single[type] ?? "a '\(type)' artifact" }

    public func needs(_ accepted: [String]) -> String {
        let sorted = accepted.sorted()
        let phrase = groups[sorted.joined(separator: ",")]
            ?? sorted.map(outputs).joined(separator: " or ")
        return "\(phrase) (\(sorted.joined(separator: " or ")))"
    }
}
