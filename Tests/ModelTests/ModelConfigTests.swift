import XCTest
@testable import Model
import TestSupport

final class ModelConfigTests: XCTestCase {
    func decode(_ json: String) throws -> ModelConfig { try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)) }

    /// The same architecture in both kits (own and shared), so the same expectations.
    func testTransformers5ReferenceConfigs() throws {
        for kit in try Reference.kits() {
            let c = try ModelConfig.load(from: kit.file("tiny-llama/config.json"))
            XCTAssertEqual(c.modelType, "llama", "\(kit)")
            XCTAssertEqual([c.vocabSize, c.hiddenSize, c.intermediateSize, c.layers, c.heads, c.kvHeads, c.headDim],
                           [512, 64, 176, 2, 4, 2, 16], "\(kit)")
            XCTAssertEqual(c.ropeTheta, 10000, "\(kit)"); XCTAssertNil(c.ropeScaling, "\(kit)")
            XCTAssertEqual(c.rmsNormEps, 1e-5, "\(kit)"); XCTAssertEqual(c.maxPositionEmbeddings, 256, "\(kit)")
            XCTAssertFalse(c.tieWordEmbeddings, "\(kit)"); XCTAssertFalse(c.qkvBias, "\(kit)")
            XCTAssertEqual(c.bosTokenId, 1, "\(kit)"); XCTAssertEqual(c.eosTokenId, 2, "\(kit)"); XCTAssertEqual(c.padTokenId, 0, "\(kit)")
            XCTAssertEqual(c.dtype, "float32", "\(kit)")
            let b = try ModelConfig.load(from: kit.file("tiny-llama-bf16/config.json"))
            XCTAssertEqual(b.dtype, "bfloat16", "\(kit)")
            var bAsF = b; bAsF.dtype = "float32"
            XCTAssertEqual(bAsF, c, "\(kit)")
            let q = try ModelConfig.load(from: kit.file("golden/qlora_train/base-nf4-dq/config.json"))
            XCTAssertEqual(q.quantization, .init(quantType: "nf4", useDoubleQuant: true, computeDtype: "float32", skipModules: ["lm_head"]), "\(kit)")
        }
    }

    func testTransformers4TopLevelKeysAndDefaults() throws {
        let c = try decode("""
        {"model_type": "mistral", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 1, "num_attention_heads": 4, "rope_theta": 500000.0, "torch_dtype": "float16",
         "rope_scaling": {"type": "linear", "factor": 2.0}, "eos_token_id": [7, 8], "some_unknown_field": {"x": 1}}
        """)
        XCTAssertEqual(c.kvHeads, 4); XCTAssertEqual(c.headDim, 8); XCTAssertEqual(c.ropeTheta, 500000)
        XCTAssertEqual(c.dtype, "float16"); XCTAssertEqual(c.ropeScaling, .init(type: "linear", factor: 2))
        XCTAssertEqual(c.eosTokenIds, [7, 8]); XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.maxPositionEmbeddings, 2048); XCTAssertEqual(c.hiddenAct, "silu")
        // Round trip through our encoder.
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: data), c)
    }

    func testQwen2HasQKVBiasButNoOutputBias() throws {
        let c = try decode("""
        {"model_type": "qwen2", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}
        """)
        XCTAssertTrue(c.qkvBias); XCTAssertFalse(c.outputBias)
        let l = try decode("""
        {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
         "num_attention_heads": 4, "attention_bias": true}
        """)
        XCTAssertTrue(l.qkvBias); XCTAssertTrue(l.outputBias)
    }

    func testMiniMindLegacyAndHFStyleKeys() throws {
        let legacy = try decode("""
        {"model_type": "minimind", "dim": 512, "n_layers": 2, "n_heads": 8, "n_kv_heads": 2, "vocab_size": 6400,
         "norm_eps": 1e-5, "max_seq_len": 512, "rope_theta": 1000000.0, "multiple_of": 64}
        """)
        XCTAssertEqual([legacy.hiddenSize, legacy.layers, legacy.heads, legacy.kvHeads, legacy.intermediateSize, legacy.headDim],
                       [512, 2, 8, 2, 1408, 64])
        XCTAssertTrue(legacy.tieWordEmbeddings)
        XCTAssertEqual(legacy.maxPositionEmbeddings, 512)
        let hf = try decode("""
        {"model_type": "minimind", "hidden_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
         "num_key_value_heads": 2, "vocab_size": 6400, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0}
        """)
        XCTAssertEqual(hf.intermediateSize, 1408); XCTAssertEqual(hf.ropeTheta, 1e6)
    }

    func testUnsupportedValuesNameTheField() throws {
        let base = "\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2"
        XCTAssertThrowsError(try decode("{\(base), \"hidden_act\": \"gelu\"}")) { e in
            XCTAssertEqual(e.localizedDescription, "config.json: unsupported value \"gelu\" for field 'hidden_act': only silu (SwiGLU) is supported")
        }
        XCTAssertThrowsError(try decode("{\(base), \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}")) { e in
            XCTAssertEqual(e.localizedDescription,
                           "config.json: unsupported value \"yarn\" for field 'rope_scaling.rope_type': supported rotary scaling: default, linear, llama3")
        }
        XCTAssertThrowsError(try decode("{\(base), \"model_type\": \"gemma\"}")) { e in
            XCTAssertEqual(e.localizedDescription,
                           "config.json: unsupported value \"gemma\" for field 'model_type': supported: llama, mistral, qwen2, qwen3, minimind")
        }
        XCTAssertThrowsError(try decode("{\(base), \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4}}")) { e in
            XCTAssertEqual(e.localizedDescription, "config.json: required field 'rope_scaling.original_max_position_embeddings' is missing")
        }
        XCTAssertThrowsError(try decode("{\"vocab_size\": 10}")) { e in
            XCTAssertEqual(e.localizedDescription, "config.json: required field 'hidden_size' is missing")
        }
        XCTAssertThrowsError(try decode("{\(base), \"num_key_value_heads\": 3}")) { e in
            XCTAssertEqual(e.localizedDescription, "config.json: invalid field 'num_key_value_heads': 3 does not divide num_attention_heads 2")
        }
    }
}
