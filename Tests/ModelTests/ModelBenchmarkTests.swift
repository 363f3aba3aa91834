import XCTest
@testable import Model
import Kernels

/// Not a test: prints forward and training-step throughput when QLORA_BENCH=1 (release builds).
final class ModelBenchmarkTests: XCTestCase {
    func testPrintThroughput() throws {
        guard ProcessInfo.processInfo.environment["QLORA_BENCH"] == "1" else { throw XCTSkip("set QLORA_BENCH=1 to run") }
        let shapes: [(String, ModelConfig, Int, Int)] = [
            ("minimind", ModelConfig(modelType: "minimind", vocabSize: 6400, hiddenSize: 512, intermediateSize: 1408, layers: 2,
                                     heads: 8, kvHeads: 2, maxPositionEmbeddings: 512, tieWordEmbeddings: true), 2, 512),
            ("smollm-135m", ModelConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, layers: 30, heads: 9, kvHeads: 3,
                                        maxPositionEmbeddings: 512, tieWordEmbeddings: true), 1, 512),
        ]
        for (name, config, B, T) in shapes {
            let model = LlamaModel.initialized(config: config, layout: name == "minimind" ? .miniMind : .huggingFace, seed: 1)
            var rng = RandomStream(seed: 1, stream: "bench")
            let tokens = (0..<(B * T)).map { _ in Int32(rng.nextInt(below: config.vocabSize)) }
            for m in model.linearModules where m.inFeatures == m.outFeatures {
                m.adapter = LoRAAdapter(rank: 16, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scale: 1,
                                        a: [Float](repeating: 0.01, count: 16 * m.inFeatures))
            }
            model.gradientCheckpointing = config.layers > 8
            let weights = [Float](repeating: 1, count: B * T)
            func time(_ body: () -> Void) -> Double {
                var runs: [Double] = []
                for _ in 0..<3 { let t0 = Date(); body(); runs.append(Date().timeIntervalSince(t0)) }
                return runs.sorted()[1]
            }
            let f = time { _ = model.forward(tokens: tokens, batch: B, length: T, attentionMask: nil) }
            let s = time { _ = model.lossAndGradients(tokens: tokens, batch: B, length: T, lossWeights: weights, gradScale: 1) }
            print("BENCH \(name) B=\(B) T=\(T): forward \(Int(Double(B * T) / f)) tok/s (\(f)s), train step \(Int(Double(B * T) / s)) tok/s (\(s)s)")
        }
    }
}
