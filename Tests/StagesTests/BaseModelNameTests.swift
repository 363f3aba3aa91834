import XCTest
import Foundation
@testable import Stages

/// The adapter's `base_model_name_or_path` (issue: AutoPeftModelForCausalLM failed on an empty one):
/// the checkpoint's `_name_or_path` when it has one, else the directory as the pipeline wrote it.
final class BaseModelNameTests: XCTestCase {
    func testNameOrPathPrefersTheCheckpointsOwnName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-name-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.json")
        try Data(#"{"_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "model_type": "llama"}"#.utf8).write(to: config)
        XCTAssertEqual(LoadCheckpointStage.nameOrPath(dir, asWritten: "../models/smollm2"), "HuggingFaceTB/SmolLM2-135M-Instruct")
        try Data(#"{"_name_or_path": "", "model_type": "llama"}"#.utf8).write(to: config)
        XCTAssertEqual(LoadCheckpointStage.nameOrPath(dir, asWritten: "../models/smollm2"), "../models/smollm2")
        try Data(#"{"model_type": "llama"}"#.utf8).write(to: config)
        XCTAssertEqual(LoadCheckpointStage.nameOrPath(dir, asWritten: nil), dir.path)
        // Carried to downstream stages as a companion file; an init: model has none.
        try ArtifactFiles.writeJSON(.object(["name_or_path": .string("../models/smollm2")]), to: dir.appendingPathComponent(ArtifactFiles.sourceFile))
        XCTAssertEqual(ArtifactFiles.baseModelName(dir), "../models/smollm2")
        XCTAssertEqual(ArtifactFiles.baseModelName(dir.appendingPathComponent("missing")), "")
        XCTAssertTrue(ArtifactFiles.companions.contains("qlora_source.json"))
    }
}
