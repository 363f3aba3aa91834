import XCTest
@testable import PipelineCore

final class SchemaSuggestionTests: XCTestCase {
    func testEditDistance() {
        XCTAssertEqual(Suggestion.editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(Suggestion.editDistance("learnig_rate", "learning_rate"), 1)
        XCTAssertEqual(Suggestion.editDistance("trian", "train"), 1)  // transposition costs 1
        XCTAssertEqual(Suggestion.editDistance("", "abc"), 3)
        XCTAssertEqual(Suggestion.editDistance("same", "same"), 0)
    }

    func testClosest() {
        let fields = ["learning_rate", "epochs", "model", "lr_scheduler"]
        XCTAssertEqual(Suggestion.closest(to: "learnig_rate", among: fields), "learning_rate")
        XCTAssertEqual(Suggestion.closest(to: "epoch", among: fields), "epochs")
        XCTAssertEqual(Suggestion.closest(to: "Model", among: fields), "model")
        XCTAssertEqual(Suggestion.closest(to: "learning", among: fields), "learning_rate")  // prefix
        XCTAssertNil(Suggestion.closest(to: "colour", among: fields))
        XCTAssertNil(Suggestion.closest(to: "lr", among: ["id", "of"]))  // short names need an exact (case) match
        XCTAssertNil(Suggestion.closest(to: "model", among: fields))     // already valid
        XCTAssertEqual(Suggestion.closest(to: "nf5", among: ["nf4", "fp4"]), "nf4")
        XCTAssertNil(Suggestion.closest(to: "c", among: ["a", "b"]))
    }
}
