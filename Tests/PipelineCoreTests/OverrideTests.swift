import Foundation
import XCTest
@testable import PipelineCore

final class OverrideTests: XCTestCase {
    let text = """
    version: 1
    stages:
      q:
        kind: quantize
        skip: [lm_head, embed]
      train:
        kind: train
        model: q
        optimizer:
    """

    func overridden(_ sets: [String], line: UInt = #line) -> Document? {
        guard let doc = parseYAML(text, line: line) else { return nil }
        do {
            return try Overrides.apply(sets, to: doc)
        } catch {
            XCTFail("unexpected: \(error.description)", line: line)
            return nil
        }
    }

    func overrideErrors(_ sets: [String], line: UInt = #line) -> [String] {
        guard let doc = parseYAML(text, line: line) else { return [] }
        do {
            _ = try Overrides.apply(sets, to: doc)
            XCTFail("expected an error", line: line)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    func testScalarsFlowNodesAndCreatedKeys() throws {
        let doc = try XCTUnwrap(overridden([
            "stages.train.learning_rate=1e-4",
            "stages.train.epochs=3",
            "stages.train.name=\"1e-4\"",
            "stages.q.skip=[lm_head]",
            "stages.q.skip.0=head",
            "stages.train.optimizer.name=sgd",
            "stages.new.kind=quantize",
            "seed=",
        ]))
        let v = doc.value
        XCTAssertEqual(v["stages"]?["train"]?["learning_rate"], .number(1e-4))
        XCTAssertEqual(v["stages"]?["train"]?["epochs"], .integer(3))
        XCTAssertEqual(v["stages"]?["train"]?["name"], .string("1e-4"))
        XCTAssertEqual(v["stages"]?["q"]?["skip"], .array([.string("head")]))
        XCTAssertEqual(v["stages"]?["train"]?["optimizer"], .object(["name": .string("sgd")]))
        XCTAssertEqual(v["stages"]?["new"], .object(["kind": .string("quantize")]))
        XCTAssertEqual(v["seed"], .null)
        // Untouched nodes keep their file positions; overridden ones carry the override.
        XCTAssertEqual(doc.location(of: ["stages", "train", "model"])?.description, "x.yaml:8:12")
        XCTAssertEqual(doc.location(of: ["stages", "train", "epochs"])?.description, "--set stages.train.epochs=3")
        XCTAssertEqual(doc.keyLocation(of: ["stages", "new"])?.description, "--set stages.new.kind=quantize")
        // Later overrides win; the original document is unchanged.
        let twice = try XCTUnwrap(overridden(["seed=1", "seed=2"]))
        XCTAssertEqual(twice.value["seed"], .integer(2))
        XCTAssertNil(parseYAML(text)?.value["seed"])
    }

    func testOverrideErrorsNameTheOverride() {
        XCTAssertEqual(overrideErrors(["stages.train.model.x=1"]),
                       ["error: --set stages.train.model.x=1: 'stages.train.model' is not a mapping (found the string \"q\" at x.yaml:8:12)"])
        XCTAssertEqual(overrideErrors(["stages.q.skip.5=x", "nodots"]), [
            "error: --set stages.q.skip.5=x: 'stages.q.skip' is a list of 2 items; '5' is not an index in it",
            "error: --set nodots: expected PATH=VALUE, e.g. --set stages.train.lr=1e-4",
        ])
        XCTAssertEqual(overrideErrors(["stages..lr=1"]), ["error: --set stages..lr=1: 'stages..lr' is not a dotted path like stages.train.lr"])
        XCTAssertEqual(overrideErrors(["seed=[1, 2"]),
                       ["error: --set seed=[1, 2: the value is not valid YAML: 2:1: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at 1:1)"])
        XCTAssertEqual(overrideErrors(["version.x=1"]),
                       ["error: --set version.x=1: 'version' is not a mapping (found the integer 1 at x.yaml:1:10)"])
    }

    func testOverridesAreValidatedWithTheirOwnLocation() throws {
        let doc = try XCTUnwrap(overridden(["stages.train.learning_rate=fast", "stages.train.learnig_rate=1"]))
        let s = try XCTUnwrap(schema(SchemaValidatorTests.pipeline))
        XCTAssertEqual(s.validate(doc).diagnostics.map(\.description), [
            "--set stages.train.learnig_rate=1: error: stages.train: unknown field 'learnig_rate'; did you mean 'learning_rate'?",
            "--set stages.train.learning_rate=fast: error: stages.train.learning_rate: expected a number, found the string \"fast\"",
            // `optimizer:` is null, not absent: its default does not apply.
            "x.yaml:9:15: error: stages.train.optimizer: expected a mapping, found null",
        ])
    }
}
