import Foundation
import XCTest
@testable import PipelineCore

/// Reads YAML text, failing the test with the diagnostics if it does not parse.
func parseYAML(_ text: String, file: String = "x.yaml", line: UInt = #line) -> Document? {
    do {
        return try YAMLReader.read(text: text, displayName: file)
    } catch {
        XCTFail("unexpected diagnostics:\n\(error.description)", line: line)
        return nil
    }
}

/// The diagnostics' descriptions for text that must NOT parse.
func yamlErrors(_ text: String, file: String = "x.yaml", line: UInt = #line) -> [String] {
    do {
        _ = try YAMLReader.read(text: text, displayName: file)
        XCTFail("expected diagnostics", line: line)
        return []
    } catch {
        return error.diagnostics.map(\.description)
    }
}

final class YAMLReaderTests: XCTestCase {
    func testLocationsOfNodesAndKeys() throws {
        let text = """
        version: 1
        stages:
          train:
            kind: train
            lr: 0.001
            skip: [lm_head, "q"]
        """
        let doc = try XCTUnwrap(parseYAML(text, file: "pipelines/x.yaml"))
        XCTAssertEqual(doc.location(of: ["stages", "train", "lr"]), SourceLocation(file: "pipelines/x.yaml", line: 5, column: 9))
        XCTAssertEqual(doc.keyLocation(of: ["stages", "train", "lr"]), SourceLocation(file: "pipelines/x.yaml", line: 5, column: 5))
        XCTAssertEqual(doc.location(of: ["stages", "train"]), SourceLocation(file: "pipelines/x.yaml", line: 4, column: 5))
        XCTAssertEqual(doc.location(of: ["stages", "train", "skip", "1"])?.lineColumn, "6:21")
        // Nearest existing ancestor for a missing path; keyLocation is nil for a missing key.
        XCTAssertEqual(doc.location(of: ["stages", "train", "nope", "deeper"])?.lineColumn, "4:5")
        XCTAssertNil(doc.keyLocation(of: ["stages", "nope"]))
        XCTAssertEqual(doc.root.location.lineColumn, "1:1")
        // Key order is preserved.
        XCTAssertEqual(doc.node(at: ["stages", "train"])?.entries?.map(\.key), ["kind", "lr", "skip"])
        XCTAssertEqual(doc.value["stages"]?["train"]?["skip"], .array([.string("lm_head"), .string("q")]))
    }

    func testCoreSchemaScalarResolution() throws {
        let text = """
        a: null
        b: ~
        c:
        d: true
        e: True
        f: FALSE
        g: 42
        h: -7
        i: 0x1F
        j: 0o17
        k: 1.5
        l: 1e-4
        m: .inf
        n: -.Inf
        o: yes
        p: "42"
        q: 'true'
        r: 1_000
        s: 0777
        t: .5
        u: +12
        v: 99999999999999999999
        w: |
          block
        x: 1.
        """
        let v = try XCTUnwrap(parseYAML(text)).value
        XCTAssertEqual(v["a"], .null)
        XCTAssertEqual(v["b"], .null)
        XCTAssertEqual(v["c"], .null)
        XCTAssertEqual(v["d"], .bool(true))
        XCTAssertEqual(v["e"], .bool(true))
        XCTAssertEqual(v["f"], .bool(false))
        XCTAssertEqual(v["g"], .integer(42))
        XCTAssertEqual(v["h"], .integer(-7))
        XCTAssertEqual(v["i"], .integer(31))
        XCTAssertEqual(v["j"], .integer(15))
        XCTAssertEqual(v["k"], .number(1.5))
        XCTAssertEqual(v["l"], .number(1e-4))
        XCTAssertEqual(v["m"], .number(.infinity))
        XCTAssertEqual(v["n"], .number(-.infinity))
        XCTAssertEqual(v["o"], .string("yes"))  // YAML 1.2: not a boolean
        XCTAssertEqual(v["p"], .string("42"))   // quoted: always a string
        XCTAssertEqual(v["q"], .string("true"))
        XCTAssertEqual(v["r"], .string("1_000"))
        XCTAssertEqual(v["s"], .integer(777))   // 1.2 core: decimal, not octal
        XCTAssertEqual(v["t"], .number(0.5))
        XCTAssertEqual(v["u"], .integer(12))
        XCTAssertEqual(v["v"], .number(1e20))
        XCTAssertEqual(v["w"], .string("block\n"))
        XCTAssertEqual(v["x"], .number(1))
        let nan = try XCTUnwrap(parseYAML("a: .nan")).value["a"]?.doubleValue
        XCTAssertTrue(nan?.isNaN == true)
    }

    func testExplicitTags() throws {
        let v = try XCTUnwrap(parseYAML("a: !!str 12\nb: !!int \"7\"\nc: !!float 3\nd: !!bool \"true\"\ne: !!null ''\nf: ! 12")).value
        XCTAssertEqual(v["a"], .string("12"))
        XCTAssertEqual(v["b"], .integer(7))
        XCTAssertEqual(v["c"], .number(3))
        XCTAssertEqual(v["d"], .bool(true))
        XCTAssertEqual(v["e"], .null)
        XCTAssertEqual(v["f"], .string("12"))
        XCTAssertEqual(yamlErrors("a: !!int abc"), ["x.yaml:1:4: error: a: \"abc\" is not a valid !!int value"])
        XCTAssertEqual(yamlErrors("a: !custom 1"),
                       ["x.yaml:1:4: error: a: unsupported tag '!custom' (only the YAML core tags !!str, !!int, !!float, !!bool, !!null are understood)"])
    }

    func testDuplicateKeysReportedAtSecondKey() {
        let text = """
        stages:
          train:
            lr: 1
            epochs: 2
            lr: 3
        seed: 1
        seed: 2
        """
        XCTAssertEqual(yamlErrors(text), [
            "x.yaml:5:5: error: stages.train: duplicate key 'lr' (first defined at 3:5)",
            "x.yaml:7:1: error: duplicate key 'seed' (first defined at 6:1)",
        ])
    }

    func testNonScalarKeyIsAnError() {
        XCTAssertEqual(yamlErrors("? [a, b]\n: 1\n"), ["x.yaml:1:3: error: a mapping key must be a scalar, found a list"])
        XCTAssertEqual(try XCTUnwrap(parseYAML("1: one\ntrue: yes\n")).value, .object(["1": .string("one"), "true": .string("yes")]))
    }

    func testAnchorsAndAliases() throws {
        let text = """
        base: &b {lr: 0.1, epochs: 2}
        train: *b
        list: [&x 1, *x]
        """
        let v = try XCTUnwrap(parseYAML(text)).value
        XCTAssertEqual(v["train"], .object(["lr": .number(0.1), "epochs": .integer(2)]))
        XCTAssertEqual(v["list"], .array([.integer(1), .integer(1)]))
        XCTAssertEqual(yamlErrors("a: *nope"), ["x.yaml:1:4: error: a: undefined alias '*nope' (anchors must be defined with '&nope' before use)"])
    }

    func testAliasBombIsBoundedError() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<10 {
            let prev = "*a\(i - 1)"
            text += "a\(i): &a\(i) [\(Array(repeating: prev, count: 10).joined(separator: ", "))]\n"
        }
        let errors = yamlErrors(text)
        // a4 expands to 10^5 scalars: the parse stops there, at the alias that crosses the bound.
        XCTAssertEqual(errors, ["x.yaml:5:45: error: a4: alias expansion exceeds 100000 nodes (an alias bomb?)"])
    }

    func testSyntaxErrorUsesLibyamlProblemAndMark() {
        XCTAssertEqual(yamlErrors("a: 1\nb: [1, 2\nc: 3\n"),
                       ["x.yaml:3:2: error: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at 2:4)"])
        XCTAssertEqual(yamlErrors("a: b: c\n"),
                       ["x.yaml:1:5: error: syntax error: mapping values are not allowed in this context"])
    }

    func testMultipleDocumentsAreAnError() {
        XCTAssertEqual(yamlErrors("a: 1\n---\nb: 2\n"),
                       ["x.yaml:2:1: error: a second YAML document starts here; a file must hold exactly one document"])
    }

    func testEmptyFileIsNullDocument() throws {
        let doc = try XCTUnwrap(parseYAML(""))
        XCTAssertEqual(doc.value, .null)
        XCTAssertEqual(doc.root.location.lineColumn, "1:1")
        XCTAssertEqual(try XCTUnwrap(parseYAML("# only a comment\n")).value, .null)
        XCTAssertEqual(try XCTUnwrap(parseYAML("- 1\n- 2\n")).value, .array([.integer(1), .integer(2)]))
    }

    func testMissingFile() {
        do {
            _ = try YAMLReader.read(contentsOf: URL(fileURLWithPath: "/nonexistent/p.yaml"), displayName: "p.yaml")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "error: cannot read 'p.yaml': no such file")
        }
    }

    func testDiagnosticDescription() {
        let d = Diagnostic(location: SourceLocation(file: "pipelines/x.yaml", line: 12, column: 7), path: "stages.train.lr",
                           message: "expected a number, found the string \"fast\"")
        XCTAssertEqual(d.description, "pipelines/x.yaml:12:7: error: stages.train.lr: expected a number, found the string \"fast\"")
        XCTAssertEqual(Diagnostic(location: SourceLocation(file: "", line: 3, column: 1), path: "", message: "m").description, "3:1: error: m")
        XCTAssertEqual(Diagnostic(location: nil, path: "a", message: "m", severity: .warning).description, "warning: a: m")
        let list = DiagnosticList([
            Diagnostic(location: SourceLocation(file: "f", line: 9, column: 1), message: "late"),
            Diagnostic(location: SourceLocation(file: "f", line: 2, column: 5), message: "early"),
            Diagnostic(location: nil, message: "global"),
        ])
        XCTAssertEqual(list.diagnostics.map(\.message), ["global", "early", "late"])
    }
}
