import Foundation
import XCTest
import TestSupport

/// The CLI's surface: commands, exact error texts and exit codes (0 ok, 1 stage failed, 2 invalid input).
final class CommandLineTests: XCTestCase {
    func testVersionAndHelp() throws {
        let version = try CLI.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout, "qlora-run 0.1.0\n")
        let help = try CLI.run(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.hasPrefix("usage: qlora-run [run] FILE"))
        XCTAssertTrue(help.stdout.contains("exit codes: 0 ok, 1 a stage failed, 2 invalid input, 130 interrupted"))
    }

    func testHelpKindComesFromTheSchema() throws {
        let r = try CLI.run(["help", "quantize"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.hasPrefix("quantize (outputs: quantized)\n"))
        XCTAssertTrue(r.stdout.contains("  block_size  32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096  [default: 64]\n      Weights per absmax block: a power of two from 32 to 4096.\n"))
        let bad = try CLI.run(["help", "quantise"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.stderr, "error: unknown stage kind 'quantise'; did you mean 'quantize'?\n")
        XCTAssertEqual(bad.stdout, "")
    }

    func testArgumentErrorsExitTwoOnStderr() throws {
        let r = try CLI.run(["plna", "pipelines/toy.yaml"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: unknown command 'plna'; did you mean 'plan'?\n")
        XCTAssertEqual(r.stdout, "")
        let option = try CLI.run(["run", "pipelines/toy.yaml", "--frce", "train"])
        XCTAssertEqual(option.status, 2)
        XCTAssertEqual(option.stderr, "error: unknown option '--frce'; did you mean '--force'?\n")
    }

    func testMissingPipelineFile() throws {
        let r = try CLI.run(["validate", "no/such.yaml"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: no/such.yaml: no such file\nerror: 1 problem found; nothing was run\n")
        let directory = try CLI.run(["run", "pipelines"])
        XCTAssertEqual(directory.status, 2)
        XCTAssertEqual(directory.stderr, "error: pipelines: is a directory; give the pipeline's YAML or JSON file\nerror: 1 problem found; nothing was run\n")
    }

    func testEveryPipelineValidates() throws {
        let shipped = try FileManager.default.contentsOfDirectory(atPath: Reference.projectRoot.appendingPathComponent("pipelines").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(shipped, ["hf-model.yaml", "minimind-qlora.yaml", "smollm-shape.yaml", "smollm2-gguf.yaml", "toy.yaml"], "a new pipeline belongs in this test")
        for name in ["toy", "minimind-qlora", "smollm-shape"] {
            let r = try CLI.run(["validate", "pipelines/\(name).yaml"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.hasPrefix("pipelines/\(name).yaml: valid ("), r.stdout)
        }
        // The GGUF walkthrough names the file the fetch script writes under models/; any GGUF path validates.
        let gguf = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: gguf) }
        try Data("GGUF".utf8).write(to: gguf.appendingPathComponent("m.gguf"))
        let walkthrough = try CLI.run(["validate", "pipelines/smollm2-gguf.yaml", "--set", "stages.base.path=\(gguf.path)/m.gguf"])
        XCTAssertEqual(walkthrough.status, 0, walkthrough.stderr)
        // The template names a model directory the user fills in; substitute any existing directory.
        let template = try CLI.run(["validate", "pipelines/hf-model.yaml"])
        XCTAssertEqual(template.status, 2)
        XCTAssertTrue(template.stderr.contains("stages.base.path: file not found: ../models/your-model (relative to pipelines/)"), template.stderr)
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let filled = try CLI.run(["validate", "pipelines/hf-model.yaml", "--set", "stages.base.path=\(dir.path)"])
        XCTAssertEqual(filled.status, 0, filled.stderr)
    }

    func testBatchSizeAndBatchTokensTogetherAreRefused() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: bt
        stages:
          base: {kind: load_checkpoint, init: {hidden_size: 32}}
          adapted: {kind: attach_adapters, model: base}
          train: {kind: train, model: adapted, data: d.jsonl, batch_size: 2, batch_tokens: 64}

        """.write(to: dir.appendingPathComponent("bt.yaml"), atomically: true, encoding: .utf8)
        try Data("{\"text\": \"hello\"}\n".utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        let r = try CLI.run(["validate", "bt.yaml"], in: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "bt.yaml:6:70: error: stages.train: 'batch_tokens' cannot be combined with 'batch_size': give only one of them\n"
                       + "error: 1 problem found; nothing was run\n")
    }

    func testSchemaErrorsHaveLocations() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: bad
        stages:
          base:
            kind: load_checkpoint
            init: {hidden_size: 64}
          q:
            kind: quantize
            model: base
            compute_dtype: f16

        """.write(to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["validate", "bad.yaml"], in: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "bad.yaml:10:20: error: stages.q.compute_dtype: must be one of: fp32, bf16 (found \"f16\"); did you mean 'bf16'?\n"
                       + "error: 1 problem found; nothing was run\n")
    }
}

/// Issue 11 §1 reproducers: a `to:` that would replace data, the pipeline's directory, the project
/// or the cache is refused before anything runs (exit 2, located), and nothing is touched.
final class PublishRefusalTests: XCTestCase {
    func testUnsafeDestinationsAreRefusedBeforeAnythingRuns() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let manager = FileManager.default
        for folder in ["pipelines", "toydata"] {
            try manager.copyItem(at: Reference.projectRoot.appendingPathComponent(folder), to: dir.appendingPathComponent(folder))
        }
        let before = try manager.contentsOfDirectory(atPath: dir.appendingPathComponent("toydata").path).sorted()
        let cases: [(String, String)] = [
            ("../toydata", "'../toydata' (relative to pipelines/) contains an input of the pipeline (stages.train.data: '../toydata/lora_data.jsonl'); publishing there would overwrite it. Choose another path"),
            (".", "'.' (relative to pipelines/) is or contains the pipeline file's directory; publishing there would delete it. Choose a path below or beside it"),
            ("..", "'..' (relative to pipelines/) is or contains the pipeline file's directory; publishing there would delete it. Choose a path below or beside it"),
            ("../.qlora", "'../.qlora' (relative to pipelines/) is or contains the cache directory; publishing there would delete the cache. Choose a path outside it"),
            ("../.qlora/objects", "'../.qlora/objects' (relative to pipelines/) is inside the cache directory, which only qlora-run may write. Choose a path outside it"),
            ("../toydata/eval.jsonl", "'../toydata/eval.jsonl' (relative to pipelines/) is an input of the pipeline (stages.evaluate.data: '../toydata/eval.jsonl'); publishing there would overwrite it. Choose another path"),
        ]
        for (destination, message) in cases {
            let r = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.save.to=\(destination)"], in: dir)
            XCTAssertEqual(r.status, 2, destination)
            // '..' holds out/, where the toy's merge and exports publish: each of those is named too.
            let overlaps = destination != ".." ? [] : [("merged", 69, "../out/toy-merged"), ("gguf", 75, "../out/toy-q8_0.gguf"), ("gguf_adapter", 81, "../out/toy-lora.gguf")].map {
                "pipelines/toy.yaml:\($0.1):9: error: stages.\($0.0).to: '\($0.2)' (relative to pipelines/) overlaps the destination of stages.save.to ('..'); give each its own path\n"
            }
            XCTAssertEqual(r.stderr, "--set stages.save.to=\(destination): error: stages.save.to: \(message)\n" + overlaps.joined()
                           + "error: \(1 + overlaps.count) problem\(overlaps.isEmpty ? "" : "s") found; nothing was run\n")
            XCTAssertEqual(r.stdout, "")
        }
        // Written in the file, the error points at the field.
        let file = dir.appendingPathComponent("pipelines/toy.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "to: ../out/toy-adapter", with: "to: ../toydata").write(to: file, atomically: true, encoding: .utf8)
        let line = text.components(separatedBy: "\n").firstIndex { $0.contains("to: ../out/toy-adapter") }.map { $0 + 1 } ?? 0
        let r = try CLI.run(["run", "pipelines/toy.yaml"], in: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("pipelines/toy.yaml:\(line):9: error: stages.save.to: '../toydata' (relative to pipelines/) contains an input"), r.stderr)
        XCTAssertEqual(try manager.contentsOfDirectory(atPath: dir.appendingPathComponent("toydata").path).sorted(), before)
        XCTAssertFalse(manager.fileExists(atPath: dir.appendingPathComponent(".qlora").path), "nothing may run")
    }
}

/// Issue 11 §3 reproducers: numbers that do not fit are validation errors, not silent defaults,
/// and a model larger than the machine is refused before it is allocated.
final class NumberValidationTests: XCTestCase {
    func testOutOfRangeNumbersAreErrorsWithLocations() throws {
        let cases: [(String, String)] = [
            ("stages.train.epochs=99999999999999999999", "stages.train.epochs: must be <= 1000000 (found 1e+20)"),
            ("seed=1e30", "seed: must be <= 9007199254740991 (found 1e+30)"),
            ("stages.train.max_steps=9223372036854775807", "stages.train.max_steps: must be <= 1000000000 (found 9223372036854775807)"),
            ("stages.adapted.rank=4611686018427387904", "stages.adapted.rank: must be <= 4096 (found 4611686018427387904)"),
            ("stages.base.init.hidden_size=4611686018427387904", "stages.base.init.hidden_size: must be <= 65536 (found 4611686018427387904)"),
            ("stages.train.batch_size=1e12", "stages.train.batch_size: must be <= 65536 (found 1000000000000.0)"),
        ]
        for (set, message) in cases {
            let r = try CLI.run(["validate", "pipelines/toy.yaml", "--set", set])
            XCTAssertEqual(r.status, 2, set)
            XCTAssertEqual(r.stderr, "--set \(set): error: \(message)\nerror: 1 problem found; nothing was run\n")
        }
    }

    /// Validation fields of `train` (issue 16): the rules between them are checked before anything
    /// runs, each error at the field that breaks it; a field at its "off" default counts as absent.
    func testValidationFieldRulesAreCheckedWithLocations() throws {
        let both = try CLI.run(["validate", "pipelines/toy.yaml", "--set", "stages.train.eval_data=../toydata/eval.jsonl"])
        XCTAssertEqual(both.status, 2)
        XCTAssertEqual(both.stderr, "pipelines/toy.yaml:48:5: error: stages.train: 'eval_split' cannot be combined with 'eval_data': give only one of them\nerror: 1 problem found; nothing was run\n")
        let off = try CLI.run(["validate", "pipelines/toy.yaml", "--set", "stages.train.eval_split=0"])
        XCTAssertEqual(off.status, 2)
        XCTAssertEqual(off.stderr, """
            pipelines/toy.yaml:49:5: error: stages.train: 'eval_every' needs 'eval_data' or 'eval_split' (there is no validation data to evaluate)
            pipelines/toy.yaml:50:5: error: stages.train: 'keep: best' needs 'eval_data' or 'eval_split' (the best adapter is chosen by validation loss)
            error: 2 problems found; nothing was run

            """)
        let fine = try CLI.run(["validate", "pipelines/toy.yaml", "--set", "stages.train.eval_split=0", "--set", "stages.train.eval_every=0",
                                "--set", "stages.train.keep=last"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        let whole = try CLI.run(["validate", "pipelines/toy.yaml", "--set", "stages.train.eval_split=1"])
        XCTAssertEqual(whole.stderr, "--set stages.train.eval_split=1: error: stages.train.eval_split: must be < 1 (found 1)\nerror: 1 problem found; nothing was run\n")
    }

    func testAModelLargerThanTheMachineIsRefusedBeforeAllocating() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: huge
        stages:
          base:
            kind: load_checkpoint
            init: {hidden_size: 65536, intermediate_size: 262144, num_hidden_layers: 1024, num_attention_heads: 512, num_key_value_heads: 512}

        """.write(to: dir.appendingPathComponent("huge.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["run", "huge.yaml"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: stage 'base' failed: checkpoint base: init: this model has about 7.04e+13 parameters, 281475.6 GB as fp32, more than this machine's "), r.stderr)
        XCTAssertTrue(r.stderr.contains("GB of memory; reduce hidden_size, intermediate_size, num_hidden_layers or vocab_size"), r.stderr)
    }
}

/// Issue 11 §4 reproducers: a bad tokenizer or config fails in load_checkpoint naming the user's
/// file, and out-of-range token ids are errors.
final class BadModelFileTests: XCTestCase {
    func testBadTokenizerConfigAndTokenIdsFailClearly() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let manager = FileManager.default
        try """
        version: 1
        name: tiny
        stages:
          base:
            kind: load_checkpoint
            init: {hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1}

        """.write(to: dir.appendingPathComponent("init.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CLI.run(["run", "init.yaml"], in: dir).status, 0)
        let artifacts = dir.appendingPathComponent(".qlora/artifacts")
        let built = artifacts.appendingPathComponent(try XCTUnwrap(try manager.contentsOfDirectory(atPath: artifacts.path).first { !$0.hasPrefix(".") }))
        let checkpoint = dir.appendingPathComponent("ckpt")
        try manager.createDirectory(at: checkpoint, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: built.path) {
            try Data(contentsOf: built.appendingPathComponent(name)).write(to: checkpoint.appendingPathComponent(name))
        }

        let decode = try CLI.run(["tokenize", "ckpt", "--decode"], in: dir, input: "[75,108]\n[1, 999]\n")
        XCTAssertEqual(decode.status, 2)
        XCTAssertEqual(decode.stdout, "Hi\n")
        XCTAssertEqual(decode.stderr, "error: stdin:2: token id 999 is out of range; this tokenizer has ids 0...258\n")
        let notIds = try CLI.run(["tokenize", "ckpt", "--decode"], in: dir, input: "[1, \"a\"]\n")
        XCTAssertEqual(notIds.stderr, "error: stdin:1: expected a JSON array of integer token ids, found: [1, \"a\"]\n")

        try """
        version: 1
        name: load
        stages:
          base: {kind: load_checkpoint, path: ckpt}

        """.write(to: dir.appendingPathComponent("load.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CLI.run(["run", "load.yaml"], in: dir).status, 0)
        let tokenizerFile = checkpoint.appendingPathComponent("tokenizer.json")
        let original = try Data(contentsOf: tokenizerFile)
        // A tokenizer with more ids than the model's embedding rows.
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        var added = json["added_tokens"] as? [[String: Any]] ?? []
        added.append(["id": 400, "content": "<|extra|>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json).write(to: tokenizerFile)
        let mismatch = try CLI.run(["run", "load.yaml"], in: dir)
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("error: stage 'base' failed: checkpoint \(checkpoint.path): tokenizer.json defines 401 token ids but config.json has vocab_size 259; the tokenizer does not belong to these weights"), mismatch.stderr)
        try Data("{\"model\": ".utf8).write(to: tokenizerFile)
        let broken = try CLI.run(["run", "load.yaml"], in: dir)
        XCTAssertEqual(broken.status, 1)
        XCTAssertTrue(broken.stderr.contains("error: stage 'base' failed: checkpoint \(checkpoint.path): tokenizer.json: "), broken.stderr)
        XCTAssertFalse(broken.stderr.contains(".qlora"), "the message names the user's file, not the cache: \(broken.stderr)")
        try original.write(to: tokenizerFile)

        let configFile = checkpoint.appendingPathComponent("config.json")
        let config = try String(contentsOf: configFile, encoding: .utf8)
        try config.replacingOccurrences(of: "\"max_position_embeddings\" : 512", with: "\"max_position_embeddings\" : 0")
            .write(to: configFile, atomically: true, encoding: .utf8)
        let zero = try CLI.run(["run", "load.yaml"], in: dir)
        XCTAssertEqual(zero.status, 1)
        XCTAssertTrue(zero.stderr.contains("config.json: invalid field 'max_position_embeddings': must be positive, found 0"), zero.stderr)
    }
}
