import Foundation
import PipelineCore
import Model
import Training

/// `save_adapter`: writes only the PEFT adapter (adapter_config.json + adapter_model.safetensors)
/// into its artifact; the executor publishes it atomically to `to:` (and again on a cache hit).
struct SaveAdapterStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"] else { throw StageError.missingFile("model") }
        for name in [PEFTAdapter.configFile, PEFTAdapter.weightsFile] {
            guard FileManager.default.fileExists(atPath: source.appendingPathComponent(name).path) else {
                throw StageError.missingFile(source.appendingPathComponent(name).path)
            }
            try ArtifactFiles.linkOrCopy(name, from: source, to: context.outputDirectory)
        }
        let config = try PEFTAdapter.readConfig(context.outputDirectory)
        context.log("adapter: rank \(config.rank), alpha \(config.alpha), \(config.targetModules.count) target modules")
        return StageResult(summary: ["rank": .integer(Int64(config.rank))])
    }
}
