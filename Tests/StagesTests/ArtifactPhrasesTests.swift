import XCTest
import PipelineCore
@testable import Stages

/// The product's artifact words, which the spine takes as an `ArtifactPhrasing` (issue 12 §3:
/// PipelineCore keeps no ML vocabulary).
final class ArtifactPhrasesTests: XCTestCase {
    func testPhrases() {
        XCTAssertEqual(ArtifactPhrases.needs(["quantized"]), "a quantized model (quantized)")
        XCTAssertEqual(ArtifactPhrases.needs(["trained", "adapted"]), "a model with adapters (adapted or trained)")
        XCTAssertEqual(ArtifactPhrases.outputs("checkpoint"), "a checkpoint")
        XCTAssertEqual(ArtifactPhrases.phrasing.outputs("report"), "an evaluation report")
    }
}
