import XCTest
import Foundation
import Model
@testable import Training

/// evaluate's exact match (issue 18): which examples are prompt/answer pairs, and that a match is
/// exactly what greedy generation produces.
final class ExactMatchTests: XCTestCase {
    func testAnswerSpanIsTheOneSupervisedRun() {
        func span(_ mask: [Float]) -> Range<Int>? {
            Evaluator.answerSpan(TokenizedExample(ids: mask.map { _ in 1 }, lossMask: mask))
        }
        XCTAssertEqual(span([0, 0, 0, 1, 1, 0]), 3..<5)
        XCTAssertEqual(span([0, 0, 1]), 2..<3)
        XCTAssertNil(span([0, 1, 0, 1]))   // two assistant turns: not a pair
        XCTAssertNil(span([0, 0, 0]))
        XCTAssertNil(span([1, 0, 0]))      // position 0 is never a target
    }

    func testMatchIsGreedyGenerationTokenForToken() throws {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        let prompt: [Int32] = [5, 9, 2, 33, 7]
        let greedy = model.generate(prompt: prompt, maxNewTokens: 4, sampling: .greedy, stopTokens: [])
        XCTAssertEqual(greedy.count, 4)
        XCTAssertTrue(model.greedilyReproduces(prompt: prompt, reference: greedy))
        XCTAssertTrue(model.greedilyReproduces(prompt: prompt, reference: Array(greedy.prefix(2))))
        var wrong = greedy
        wrong[3] = (wrong[3] + 1) % Int32(model.config.vocabSize)
        XCTAssertFalse(model.greedilyReproduces(prompt: prompt, reference: wrong))
        XCTAssertFalse(model.greedilyReproduces(prompt: prompt, reference: [greedy[0], -1]))

        // A dataset of two pairs (one the model answers, one it does not), a multi-turn example
        // (left out) and a truncated pair (left out).
        let mask: [Float] = [0, 0, 0, 0, 0, 1, 1, 1, 1]
        var wrongAnswer = greedy; wrongAnswer[0] = (wrongAnswer[0] + 1) % Int32(model.config.vocabSize)
        let examples = [
            TokenizedExample(ids: prompt + greedy, lossMask: mask),
            TokenizedExample(ids: prompt + wrongAnswer, lossMask: mask),
            TokenizedExample(ids: prompt + greedy, lossMask: [0, 0, 1, 0, 0, 1, 1, 1, 1]),
            TokenizedExample(ids: prompt + greedy, lossMask: mask, truncated: true),
        ]
        let result = Evaluator.exactMatch(model: model, dataset: TrainingDataset(examples: examples, padId: 0))
        XCTAssertEqual(result.matches, 1)
        XCTAssertEqual(result.pairs, 2)
        var m = EvaluationMetrics(loss: 1, perplexity: 2, tokenAccuracy: 0.5, supervisedTokens: 8)
        XCTAssertEqual(m.exactMatchText, "")
        m.exactMatches = 1; m.pairs = 2
        XCTAssertEqual(m.exactMatchText, " · exact match 1/2")
        XCTAssertEqual(EvaluationReport(metrics: m, baseMetrics: nil, generations: [], gateFailure: nil).metricsJSON,
                       "{\n  \"adapted\": {\"loss\": 1.0, \"perplexity\": 2.0, \"token_accuracy\": 0.5, \"supervised_tokens\": 8, \"exact_match\": 0.5, \"exact_matches\": 1, \"pairs\": 2}\n}\n")
    }
}
