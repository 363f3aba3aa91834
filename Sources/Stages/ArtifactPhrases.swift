import PipelineCore

/// Readable names of the product's artifact types for diagnostics (the spine takes them as an
/// `ArtifactPhrasing`). Data, not code: add a type here.
public enum ArtifactPhrases {
    /// What a stage "outputs".
    public static let single: [String: String] = [
        "checkpoint": "a checkpoint",
        "quantized": "a quantized model",
        "adapted": "a model with fresh adapters",
        "trained": "a trained model with adapters",
        "adapter": "a saved adapter",
        "report": "an evaluation report",
        "gguf": "a GGUF file",
    ]
    /// What a field "needs", keyed by its sorted accepted types joined with ",".
    public static let groups: [String: String] = [
        "adapted,trained": "a model with adapters",
        "checkpoint,quantized": "a model",
        "adapted,checkpoint,quantized,trained": "a model",
        "adapter,trained": "trained adapters",
        "adapted,checkpoint,trained": "a model",
    ]

    /// The phrases as `Pipeline.load` takes them.
    public static let phrasing = ArtifactPhrasing(single: single, groups: groups)

    public static func outputs(_ type: String) -> String { phrasing.outputs(type) }

    public static func needs(_ accepted: [String]) -> String { phrasing.needs(accepted) }
}
