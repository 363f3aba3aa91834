import XCTest
import PipelineCore
@testable import Stages
@testable import Training

/// Issue 12 §2: the schema is where defaults live; the engine's own option defaults must not
/// disagree with it (a caller that leaves a field out gets what a pipeline that omits it gets).
final class TrainingDefaultsTests: XCTestCase {
    func testTrainingOptionsDefaultsAreTheSchemas() throws {
        let schema = try JSONReader.read(text: EmbeddedSchema.text, displayName: "pipeline.schema.json")
        func schemaDefault(_ field: String) -> JSONValue? { schema["$defs"]?["train"]?["properties"]?[field]?["default"] }
        let options = TrainingOptions()
        XCTAssertEqual(schemaDefault("epochs")?.intValue, options.epochs)
        XCTAssertEqual(schemaDefault("batch_size")?.intValue, options.batchSize)
        XCTAssertEqual(schemaDefault("grad_accum")?.intValue, options.gradAccum)
        XCTAssertEqual(schemaDefault("lr")?.doubleValue, options.learningRate)
        XCTAssertEqual(schemaDefault("clip_grad_norm")?.doubleValue, options.maxGradNorm)
        XCTAssertEqual(schemaDefault("checkpoint_every")?.intValue, options.checkpointEvery)
        XCTAssertEqual(schemaDefault("log_every")?.intValue, options.logEvery)
        XCTAssertEqual(schemaDefault("shuffle")?.boolValue, options.shuffle)
        XCTAssertEqual(try LearningRateSchedule(name: schemaDefault("schedule")?.stringValue ?? "", warmupSteps: schemaDefault("warmup_steps")?.intValue ?? -1),
                       options.schedule)
        XCTAssertNil(schemaDefault("max_steps").flatMap { $0.intValue == 0 ? nil : $0 }, "max_steps' default means none")
        XCTAssertNil(options.maxSteps)
    }
}
