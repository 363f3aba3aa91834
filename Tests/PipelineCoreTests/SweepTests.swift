import XCTest
@testable import PipelineCore

/// `sweep:` parsing: grid and zip order, point names, per-point documents and destinations.
final class SweepTests: XCTestCase {
    func document(_ yaml: String) throws -> Document { try YAMLReader.read(text: yaml, displayName: "p.yaml") }

    static let base = """
    version: 1
    name: s
    stages:
      a: {kind: attach_adapters, model: q, rank: 16}
      t: {kind: train, model: a, lr: 0.1}
      s: {kind: save_adapter, model: t, to: out/adapter}
      u: {kind: save_adapter, model: t, to: "runs/{point}/adapter"}

    """

    func testGridOrderNamesAndValues() throws {
        let doc = try document(Self.base + "sweep:\n  stages.a.rank: [8, 16]\n  stages.t.lr: [1e-4, 2.5]\n")
        let points = try XCTUnwrap(try Sweep.points(of: doc))
        XCTAssertEqual(points.map(\.name), ["rank=8,lr=0.0001", "rank=8,lr=2.5", "rank=16,lr=0.0001", "rank=16,lr=2.5"])
        XCTAssertEqual(points[2].assignments, ["stages.a.rank=16", "stages.t.lr=0.0001"])
        XCTAssertEqual(points[2].values[0].node.location, SourceLocation(file: "p.yaml", line: 9, column: 22))
    }

    func testZipPairsElementByElement() throws {
        let doc = try document(Self.base + "sweep_mode: zip\nsweep:\n  stages.a.rank: [8, 16]\n  stages.t.lr: [0.5, 2.0]\n")
        XCTAssertEqual(try Sweep.points(of: doc)?.map(\.name), ["rank=8,lr=0.5", "rank=16,lr=2.0"])
        XCTAssertNil(try Sweep.points(of: try document(Self.base)))
    }

    func testShortNamesGrowUntilDistinct() {
        XCTAssertEqual(Sweep.shortNames([["stages", "a", "lr"], ["stages", "b", "lr"], ["seed"]]), ["a.lr", "b.lr", "seed"])
        XCTAssertEqual(Sweep.directoryName("targets=[\"q_proj\"],x=a b/c"), "targets=[\"q_proj\"],x=a_b_c")
    }

    func testPointDocumentSetsValuesDropsSweepKeysAndOwnsItsDestinations() throws {
        let doc = try document(Self.base + "sweep:\n  stages.a.rank: [8]\n")
        let point = try XCTUnwrap(try Sweep.points(of: doc)?.first)
        let pointDocument = try Sweep.document(for: point, of: doc, outputFields: { $0 == "save_adapter" ? ["to"] : [] })
        XCTAssertNil(pointDocument.value["sweep"])
        XCTAssertEqual(pointDocument.value["stages"]?["a"]?["rank"], .integer(8))
        XCTAssertEqual(pointDocument.value["stages"]?["s"]?["to"], .string("out/adapter/rank=8"))
        XCTAssertEqual(pointDocument.value["stages"]?["u"]?["to"], .string("runs/rank=8/adapter"))
        XCTAssertEqual(pointDocument.value["stages"]?["t"]?["lr"], .number(0.1))
    }

    func testCommandLineSweepsReplaceOrAdd() throws {
        let doc = try document(Self.base + "sweep:\n  stages.a.rank: [8, 16]\n")
        let merged = try Sweep.merging(["stages.a.rank=4", "stages.t.lr=[1,2],3"], into: doc)
        let points = try XCTUnwrap(try Sweep.points(of: merged))
        XCTAssertEqual(points.map(\.name), ["rank=4,lr=[1,2]", "rank=4,lr=3"])
        XCTAssertEqual(points[0].values[1].node.location.file, "--sweep stages.t.lr=[1,2],3")
        XCTAssertThrowsError(try Sweep.merging(["nolist"], into: doc)) { error in
            XCTAssertEqual((error as? DiagnosticList)?.diagnostics.map(\.message), ["--sweep nolist: expected PATH=V1,V2,..., e.g. --sweep stages.train.lr=1e-4,2e-4"])
        }
    }
}
