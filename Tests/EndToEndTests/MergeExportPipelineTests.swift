import Foundation
import XCTest
import TestSupport
import TensorIO

/// Issue 14 on pipelines/toy.yaml (2 epochs): merge (original and dequantized), GGUF export of the model and
/// of the adapter, and GGUF as input (export → load → export). Release only, like the other full runs.
final class MergeExportPipelineTests: XCTestCase {
    static let extraStages = """

      merged_dq:                # merged into the dequantized NF4 weights: the function the adapter was trained with
        kind: merge
        model: train
        from: dequantized

      evaluate_merged:
        kind: evaluate
        model: merged_dq
        data: ../toydata/eval.jsonl
        compare_base: false
        prompts: ["What is 3 + 4?", "Uppercase: dog", "Reverse: cat"]
        max_new_tokens: 12

      gguf_f32:
        kind: export
        model: merged
        type: f32
        to: ../out/gguf-f32


    """

    /// A file that is not GGUF, and a GGUF whose tokenizer qlora-run cannot rebuild: named errors, exit 1,
    /// nothing cached for the stage.
    func testBadGGUFInputsAreNamedErrors() throws {
        let dir = try makeTemporaryDirectory("qlora-bad-gguf")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("hello\n".utf8).write(to: dir.appendingPathComponent("bad.gguf"))
        var spm = GGUFWriter()
        spm.set("general.architecture", string: "llama")
        for (key, value) in [("embedding_length", 64), ("attention.head_count", 4), ("feed_forward_length", 128), ("block_count", 1), ("vocab_size", 8)] {
            spm.set("llama.\(key)", uint32: value)
        }
        spm.set("tokenizer.ggml.model", string: "llama")
        spm.add("token_embd.weight", floats: [Float](repeating: 0.5, count: 8 * 64), shape: [8, 64], type: .f32)
        spm.add("output_norm.weight", floats: [Float](repeating: 1, count: 64), shape: [64], type: .f32)
        try spm.write(to: dir.appendingPathComponent("spm.gguf"))
        for (file, message) in [
            ("bad.gguf", "not a GGUF file (it does not start with the magic bytes \"GGUF\")"),
            ("spm.gguf", "tokenizer.ggml.model 'llama' (a SentencePiece vocabulary) is not supported; qlora-run reads byte-level BPE (gpt2) tokenizers from GGUF; load the model's Hugging Face directory instead"),
        ] {
            try "version: 1\nname: bad\nstages:\n  base: {kind: load_checkpoint, path: \(file)}\n".write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
            let run = try CLI.run(["run", "p.yaml"], in: dir)
            XCTAssertEqual(run.status, 1, run.stdout)
            XCTAssertTrue(run.stderr.contains("error: stage 'base' failed: checkpoint \(dir.appendingPathComponent(file).path): \(message)"), run.stderr)
            let artifacts = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(".qlora/artifacts").path)) ?? []
            XCTAssertEqual(artifacts, [], "a failed stage caches nothing")
        }
    }

    func testMergeExportAndGGUFRoundTrip() throws {
        #if DEBUG
        guard ProcessInfo.processInfo.environment["QLORA_E2E_FULL"] == "1" else {
            throw XCTSkip("the merge/export pipeline runs in release (`swift test -c release -Xswiftc -enable-testing`) or with QLORA_E2E_FULL=1")
        }
        #endif
        let project = try CLI.projectCopy("qlora-e2e-merge")
        defer { try? FileManager.default.removeItem(at: project) }
        let pipeline = project.appendingPathComponent("pipelines/toy.yaml")
        try (String(contentsOf: pipeline, encoding: .utf8) + Self.extraStages).write(to: pipeline, atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.train.epochs=2", "--set", "stages.train.eval_every=0",
                               "--set", "stages.train.keep=last"], in: project)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        XCTAssertTrue(run.stdout.contains("summary (12 ran, 0 cached, "), run.stdout)
        // `base:` was omitted: it defaults to the nearest upstream checkpoint, the `base` stage.
        XCTAssertTrue(run.stdout.contains("  merged: merged 14 adapters (rank 8, scale 2) into the original weights, saved as fp32"), run.stdout)
        XCTAssertTrue(run.stdout.contains("  merged_dq: merged 14 adapters (rank 8, scale 2) into the dequantized 4-bit weights (15 layers), saved as fp32"), run.stdout)
        let out = project.appendingPathComponent("out")
        let merged = out.appendingPathComponent("toy-merged")
        for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", ".qlora-published"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: merged.appendingPathComponent(name).path), name)
        }
        let config = try String(contentsOf: merged.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertFalse(config.contains("quantization_config"), config)

        // W' = W + (α/r)·B·A against the original fp32 weights, for every adapted module.
        let base = try SafeTensorsFile(url: CLI.artifact(of: "base", in: run.stdout, directory: project).appendingPathComponent("model.safetensors"))
        let adapter = try SafeTensorsFile(url: out.appendingPathComponent("toy-adapter/adapter_model.safetensors"))
        let mergedFile = try SafeTensorsFile(url: merged.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(mergedFile.names, base.names)
        var adapted = 0
        for name in base.names {
            let w = try base.floats(name), m = try mergedFile.floats(name)
            let module = String(name.dropLast(".weight".count))
            guard let a = try? adapter.floats("base_model.model.\(module).lora_A.weight"),
                  let b = try? adapter.floats("base_model.model.\(module).lora_B.weight") else {
                XCTAssertEqual(m, w, "\(name) has no adapter and is copied unchanged"); continue
            }
            let shape = try XCTUnwrap(base.info(name)?.shape), O = shape[0], I = shape[1], r = 8
            var expected = w
            for o in 0..<O { for i in 0..<I {
                var s: Double = 0
                for k in 0..<r { s += Double(b[o * r + k]) * Double(a[k * I + i]) }
                expected[o * I + i] += Float(s * 2)
            } }
            // A rank-8 float product: a few ulps of the largest term.
            assertClose(m, expected, rtol: 1e-6, atol: 1e-6, name)
            adapted += 1
        }
        XCTAssertEqual(adapted, 14)

        // Evaluate on the checkpoint merged into the dequantized weights equals evaluate on base + adapter.
        func loss(_ stage: String) throws -> Double {
            try XCTUnwrap(try CLI.evaluation(of: stage, in: run.stdout, directory: project)["loss"] as? Double)
        }
        let viaAdapter = try loss("evaluate"), viaMerge = try loss("evaluate_merged")
        assertClose(viaMerge, viaAdapter, rtol: 1e-5, atol: 0, "merged-model loss vs base + adapter (fp32, reassociated sums)")

        // The GGUF files: model q8_0 (toy.yaml) and f32, and the adapter.
        let q8 = try GGUFFile(url: out.appendingPathComponent("toy-q8_0.gguf"))
        // `to: FILE.gguf` is that file, its publish marker beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.contains("toy") }.sorted(),
                       [".toy-lora.gguf.qlora-published", ".toy-q8_0.gguf.qlora-published", "toy-adapter", "toy-lora.gguf", "toy-merged", "toy-q8_0.gguf"])
        XCTAssertEqual(q8.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(q8.metadata["general.file_type"]?.int, 7)
        XCTAssertEqual(q8.metadata["llama.block_count"]?.int, 2)
        XCTAssertEqual(q8.metadata["llama.attention.head_count_kv"]?.int, 2)
        XCTAssertEqual(q8.metadata["tokenizer.ggml.model"]?.string, "gpt2")
        XCTAssertEqual(q8.metadata["tokenizer.ggml.tokens"]?.array?.count, 259)
        XCTAssertEqual(q8.metadata["tokenizer.ggml.token_type"]?.array?.prefix(4).compactMap(\.int), [3, 3, 3, 1])
        XCTAssertNotNil(q8.metadata["tokenizer.chat_template"]?.string)
        XCTAssertEqual(q8.info("blk.0.attn_q.weight")?.type, .q8_0)
        XCTAssertEqual(q8.info("blk.0.attn_norm.weight")?.type, .f32)
        XCTAssertNil(q8.info("output.weight"), "the toy's head is tied to token_embd")
        let f32 = try GGUFFile(url: out.appendingPathComponent("gguf-f32/model.gguf"))
        // v is not permuted; q rows are (llama.cpp pairs adjacent rotary elements): per head of 16 rows,
        // stored row 2j + t holds original row t·8 + j.
        let v = try mergedFile.floats("model.layers.0.self_attn.v_proj.weight")
        XCTAssertEqual(try f32.floats("blk.0.attn_v.weight"), v)
        let q = try mergedFile.floats("model.layers.0.self_attn.q_proj.weight"), stored = try f32.floats("blk.0.attn_q.weight")
        for (storedRow, originalRow) in [(0, 0), (1, 8), (2, 1), (3, 9), (17, 24)] {
            XCTAssertEqual(Array(stored[(storedRow * 64)..<(storedRow * 64 + 64)]), Array(q[(originalRow * 64)..<(originalRow * 64 + 64)]), "row \(storedRow)")
        }
        let lora = try GGUFFile(url: out.appendingPathComponent("toy-lora.gguf"))
        XCTAssertEqual(lora.metadata["general.type"]?.string, "adapter")
        XCTAssertEqual(lora.metadata["adapter.type"]?.string, "lora")
        XCTAssertEqual(lora.metadata["adapter.lora.alpha"]?.double, 16)
        XCTAssertEqual(lora.tensors.count, 28)
        XCTAssertEqual(lora.info("blk.1.ffn_down.weight.lora_a")?.shape, [8, 176])
        XCTAssertEqual(lora.info("blk.1.ffn_down.weight.lora_b")?.shape, [64, 8])
        XCTAssertEqual(try lora.floats("blk.1.ffn_down.weight.lora_a"), try adapter.floats("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"))
        XCTAssertEqual(try lora.floats("blk.0.attn_v.weight.lora_b"), try adapter.floats("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"))

        // GGUF as input: load the exports back and export them again: identical tensors (f32 exactly;
        // q8_0 because decoding then re-encoding a q8_0 block is a fixed point).
        // The q8 file again with llama.cpp's `smollm` pre-tokenizer name: kept through load -> export.
        var renamed = GGUFWriter()
        for (key, value) in q8.metadata.sorted(by: { $0.key < $1.key }) where !key.hasPrefix("GGUF.") { renamed.set(key, value) }
        renamed.set("tokenizer.ggml.pre", string: "smollm")
        for t in q8.tensors { renamed.add(t.name, dimensions: t.dimensions, type: t.type, bytes: try q8.rawBytes(t.name)) }
        try renamed.write(to: out.appendingPathComponent("smol-pre.gguf"))
        let reload = project.appendingPathComponent("pipelines/reload.yaml")
        try """
        version: 1
        name: reload
        cache: ../.qlora
        stages:
          from_f32: {kind: load_checkpoint, path: ../out/gguf-f32/model.gguf}
          from_q8: {kind: load_checkpoint, path: ../out/toy-q8_0.gguf}
          again_f32: {kind: export, model: from_f32, type: f32, to: ../out/again-f32}
          again_q8: {kind: export, model: from_q8, type: q8_0, to: ../out/again-q8.gguf}
          from_smol: {kind: load_checkpoint, path: ../out/smol-pre.gguf}
          again_smol: {kind: export, model: from_smol, type: f16, to: ../out/again-smol.gguf}
          evaluate_gguf: {kind: evaluate, model: from_f32, data: ../toydata/eval.jsonl, compare_base: false}
          f16_first: {kind: export, model: from_f32, type: f16, to: ../out/first-f16.gguf}
        """.write(to: reload, atomically: true, encoding: .utf8)
        let second = try CLI.run(["run", "pipelines/reload.yaml"], in: project)
        XCTAssertEqual(second.status, 0, second.stderr + second.stdout)
        XCTAssertTrue(second.stdout.contains("  from_q8: loaded toy-q8_0.gguf (GGUF, llama; tensors 2 F16, 5 F32, 13 Q8_0, dequantized to fp32): 2 layers, hidden 64, vocab 259"), second.stdout)
        for (first, again) in [("gguf-f32/model.gguf", "again-f32/model.gguf"), ("toy-q8_0.gguf", "again-q8.gguf")] {
            let a = try GGUFFile(url: out.appendingPathComponent(first)), b = try GGUFFile(url: out.appendingPathComponent(again))
            XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
            for t in a.tensors { XCTAssertEqual(try a.rawBytes(t.name), try b.rawBytes(t.name), "\(first): \(t.name)") }
            XCTAssertEqual(a.metadata["tokenizer.ggml.tokens"], b.metadata["tokenizer.ggml.tokens"])
            XCTAssertEqual(a.metadata["tokenizer.chat_template"], b.metadata["tokenizer.chat_template"])
        }
        // f16: f16 -> fp32 -> f16 is exact, so a third pass loads the f16 export and writes it again.
        try """
        version: 1
        name: reload-f16
        cache: ../.qlora
        stages:
          from_f16: {kind: load_checkpoint, path: ../out/first-f16.gguf}
          again_f16: {kind: export, model: from_f16, type: f16, to: ../out/again-f16.gguf}
        """.write(to: project.appendingPathComponent("pipelines/reload-f16.yaml"), atomically: true, encoding: .utf8)
        let third = try CLI.run(["run", "pipelines/reload-f16.yaml"], in: project)
        XCTAssertEqual(third.status, 0, third.stderr + third.stdout)
        let f16a = try GGUFFile(url: out.appendingPathComponent("first-f16.gguf")), f16b = try GGUFFile(url: out.appendingPathComponent("again-f16.gguf"))
        XCTAssertEqual(f16a.tensors.map(\.name), f16b.tensors.map(\.name))
        XCTAssertEqual(f16a.info("blk.0.attn_q.weight")?.type, .f16)
        for t in f16a.tensors { XCTAssertEqual(try f16a.rawBytes(t.name), try f16b.rawBytes(t.name), "f16: \(t.name)") }
        XCTAssertTrue(second.stdout.contains("  again_smol: tokenizer.ggml.pre 'smollm' kept from the GGUF the model was loaded from\n"), second.stdout)
        XCTAssertEqual(try GGUFFile(url: out.appendingPathComponent("again-smol.gguf")).metadata["tokenizer.ggml.pre"]?.string, "smollm")
        XCTAssertEqual(try GGUFFile(url: out.appendingPathComponent("again-q8.gguf")).metadata["tokenizer.ggml.pre"]?.string,
                       q8.metadata["tokenizer.ggml.pre"]?.string)
        // ffn_down's rows (176) are not a multiple of q8_0's 32-value block: written as F16, as llama.cpp's converter does.
        XCTAssertEqual(q8.info("blk.0.ffn_down.weight")?.type, .f16)
    }
}
