import XCTest
@testable import Model
import TestSupport

final class GenerationTests: XCTestCase {
    func testGreedyGenerationMatchesTransformers() throws {
        for kit in try Reference.kits() {
            let g = try JSONSerialization.jsonObject(with: Data(contentsOf: kit.file("golden/generate.json"))) as! [String: Any]
            let prompt = (g["prompt_ids"] as! [Int]).map(Int32.init)
            let expected = (g["greedy_ids"] as! [Int]).map(Int32.init)
            XCTAssertEqual(expected.count, 16, "\(kit)")
            XCTAssertFalse(expected.prefix(3).contains(expected[3]), "\(kit): the stop-token check needs a fresh 4th token")
            let model = try referenceModel(kit, "tiny-llama")
            XCTAssertEqual(model.generate(prompt: prompt, maxNewTokens: 16, sampling: .greedy, stopTokens: []), expected, "\(kit)")
            // Stop tokens end generation before the stop token.
            XCTAssertEqual(model.generate(prompt: prompt, maxNewTokens: 16, sampling: .greedy, stopTokens: [expected[3]]),
                           Array(expected.prefix(3)), "\(kit)")
        }
    }

    func testKVCacheLogitsEqualFullForward() {
        let model = LlamaModel.initialized(config: BackwardTests.tinyConfig(), layout: .huggingFace, seed: 2)
        let tokens: [Int32] = [1, 5, 9, 3, 30, 2, 7]
        let full = model.forward(tokens: tokens, batch: 1, length: tokens.count, attentionMask: nil)
        let cache = KVCache(layers: 2, capacity: 8, kvChannels: 2 * 4)
        _ = model.decode(tokens: Array(tokens.prefix(4)), cache: cache)
        var last: [Float] = []
        for t in tokens.suffix(3) { last = model.decode(tokens: [t], cache: cache) }
        XCTAssertLessThan(maxAbsDiff(last, Array(full.suffix(32))), 1e-5)
    }

    func testSeededSamplingIsReproducibleAndTopKOneIsGreedy() throws {
        for kit in try Reference.kits() {
            let model = try referenceModel(kit, "tiny-llama")
            let prompt: [Int32] = [1, 87, 85, 259, 201]
            let s = Sampling(temperature: 0.9, topK: 50, topP: 0.95, seed: 42)
            let a = model.generate(prompt: prompt, maxNewTokens: 12, sampling: s, stopTokens: [])
            XCTAssertEqual(a, model.generate(prompt: prompt, maxNewTokens: 12, sampling: s, stopTokens: []), "\(kit)")
            XCTAssertEqual(a.count, 12, "\(kit)")
            var other = s; other.seed = 43
            XCTAssertNotEqual(a, model.generate(prompt: prompt, maxNewTokens: 12, sampling: other, stopTokens: []), "\(kit)")
            XCTAssertEqual(model.generate(prompt: prompt, maxNewTokens: 8, sampling: Sampling(temperature: 1, topK: 1, seed: 9), stopTokens: []),
                           model.generate(prompt: prompt, maxNewTokens: 8, sampling: .greedy, stopTokens: []), "\(kit)")
        }
    }
}
