import Foundation
import PipelineCore
import Kernels
import Model
import Quant
import Tokenizer
import Training
import Stages

/// `qlora-run bench`: measurements on this machine, each the median of several runs (machines are
/// shared and noisy). Calls the benchmark helpers of the engine targets; rows whose engine is not
/// integrated yet are reported as such, never invented.
public enum Bench {
    public struct Row: Sendable { public var name: String; public var value: String; public var note: String }

    static func median(_ runs: Int, _ body: () -> Double) -> Double {
        let xs = (0..<runs).map { _ in body() }.sorted()
        return xs[xs.count / 2]
    }

    /// Random token ids in the model's vocabulary: (count).
    static func randomTokens(_ config: ModelConfig, count: Int) -> [Int32] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in Int32.random(in: 0..<Int32(config.vocabSize), using: &rng) }
    }

    /// Median wall time of `body` over `runs` runs, in seconds.
    static func seconds(_ runs: Int, _ body: () -> Void) -> Double {
        median(runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }

    /// Forward FLOPs per token: 2 per linear weight (incl. the head) and 2·2·T·C per layer for
    /// attention scores and values (causal: half of 2·2·T·C·2).
    static func forwardFLOPs(_ model: LlamaModel, length T: Int) -> (linear: Double, attention: Double) {
        let config = model.config
        let linear = 2 * Double(model.linearModules.reduce(0) { $0 + $1.inFeatures * $1.outFeatures })
        let attention = Double(config.layers) * 2 * Double(T) * Double(config.heads * config.headDim)
        return (linear, attention)
    }

    /// Forward tokens/s and MFU for a model shape, with a 4-bit base when `quantize` (else fp32).
    static func forward(_ config: ModelConfig, batch B: Int, length T: Int, runs: Int, sgemm: Double, quantize: Bool = false) -> (tokensPerSecond: Double, mfu: Double) {
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 0)
        if quantize { _ = try? model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: []) }
        let tokens = randomTokens(config, count: B * T)
        _ = model.forward(tokens: tokens, batch: B, length: T, attentionMask: nil)  // warm-up: plan allocation
        let tps = Double(B * T) / seconds(runs) { _ = model.forward(tokens: tokens, batch: B, length: T, attentionMask: nil) }
        let flops = forwardFLOPs(model, length: T)
        return (tps, tps * (flops.linear + flops.attention) / (sgemm * 1e9))
    }

    /// One training step (forward + loss + backward into the LoRA gradients + AdamW) on an NF4 double-quant
    /// base with rank-16 adapters on the square layers (q, o), the issue's benchmark setting, with
    /// every position supervised or (`chat`) only the second half of each sequence, as in chat data
    /// where the prompt carries no loss. Gradient checkpointing as `auto` would choose. Returns
    /// tokens/s, MFU (the frozen base needs no weight gradients, so a step costs about 2× the forward
    /// FLOPs of the linears: forward + input gradient) and the peak RSS while training (after the
    /// fp32 initialisation and quantization, which a pipeline does in earlier stages).
    static func trainStep(_ config: ModelConfig, batch B: Int, length T: Int, runs: Int, sgemm: Double,
                          chat: Bool = false, compute: ComputeDType = .fp32) -> (tokensPerSecond: Double, mfu: Double, peakMegabytes: Double?, checkpointed: Bool)? {
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 0)
        model.gradientCheckpointing = model.chooseCheckpointing(batch: B, length: T)
        guard (try? model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: [], compute: compute)) != nil,
              (try? LoRAAttacher.attach(to: model, options: LoRAOptions(), seed: 0)) != nil else { return nil }
        let tokens = randomTokens(config, count: B * T)
        let weights = (0..<(B * T)).map { i in !chat || i % T >= T / 2 ? Float(1) : 0 }
        let resetPeak = PeakMemory.resetPeakRSS()
        // A whole optimizer step as the trainer takes it: zero, forward + backward, global-norm
        // clipping at 1.0, AdamW update of every A and B.
        let adapters = LoRAAttacher.adapted(model).compactMap(\.adapter)
        let optimizer = AdamW()
        func step() {
            for ad in adapters { ad.zeroGradients() }
            _ = model.lossAndGradients(tokens: tokens, batch: B, length: T, lossWeights: weights, gradScale: 1)
            let coef = Float(GradientClipping.coefficient(norm: GradientClipping.globalNorm(adapters.flatMap { [$0.gradA, $0.gradB] }), maxNorm: 1))
            for ad in adapters {
                for i in ad.gradA.indices { ad.gradA[i] *= coef }
                for i in ad.gradB.indices { ad.gradB[i] *= coef }
            }
            optimizer.beginStep(learningRate: 2e-4)
            for (k, ad) in adapters.enumerated() {
                optimizer.update(index: 2 * k, value: &ad.a, grad: ad.gradA)
                optimizer.update(index: 2 * k + 1, value: &ad.b, grad: ad.gradB)
            }
        }
        step()  // warm-up
        let tps = Double(B * T) / seconds(runs) { step() }
        // forward plus the backward input gradients: linears twice, attention three times (scores, dQ/dK, dV).
        // The head runs on supervised rows only, so with half of them supervised it counts half: crediting
        // it on every row made the chat-shaped row print MFU above 100%.
        let flops = forwardFLOPs(model, length: T)
        let head = 2 * Double(model.head.inFeatures * model.head.outFeatures)
        let supervised = Double(weights.filter { $0 > 0 }.count) / Double(B * T)
        let linear = flops.linear - head + head * supervised
        return (tps, tps * (2 * linear + 3 * flops.attention) / (sgemm * 1e9), resetPeak ? PeakMemory.currentPeakRSSMegabytes() : nil,
                model.gradientCheckpointing)
    }

    public static let miniMind = ModelConfig(modelType: "llama", vocabSize: 6400, hiddenSize: 512, intermediateSize: 1408, layers: 2,
                                             heads: 8, kvHeads: 2, maxPositionEmbeddings: 512, tieWordEmbeddings: true)
    public static let smolLM = ModelConfig(modelType: "llama", vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, layers: 30,
                                           heads: 9, kvHeads: 3, maxPositionEmbeddings: 2048, tieWordEmbeddings: true)

    public static func run(quick: Bool, log: (String) -> Void) -> [Row] {
        var rows: [Row] = []
        func add(_ name: String, _ value: String, _ note: String = "") {
            rows.append(Row(name: name, value: value, note: note)); log("\(name): \(value)\(note.isEmpty ? "" : "  (\(note))")")
        }
        let runs = quick ? 3 : 5
        // The MFU reference is the machine's sgemm peak: the better of 1024³ and 2048³ (about a second),
        // with --quick too. A 512³ product is too small to reach it, which made --quick print MFU above 100%.
        let sgemm = max(median(runs) { KernelBenchmark.sgemmGFLOPS(size: 1024) }, median(runs) { KernelBenchmark.sgemmGFLOPS(size: 2048) })
        add("sgemm (OpenBLAS \(BLASCoreType.current) kernels, all cores)", String(format: "%.1f GFLOP/s", sgemm),
            "best of 1024³ and 2048³" + BLASCoreType.benchNote(environment: ProcessInfo.processInfo.environment))
        let sha = median(runs) { SHA256.benchmark(megabytes: quick ? 32 : 128) }
        add(SHA256.usesHardware ? "SHA-256 (one core, SHA-NI)" : "SHA-256 (one core, portable)", String(format: "%.0f MB/s", sha), "target ≥ 1500 with SHA-NI")
        let mm = forward(miniMind, batch: 2, length: 512, runs: runs, sgemm: sgemm)
        add("forward MiniMind B2×512 (fp32 base)", String(format: "%.0f tokens/s, MFU %.0f%%", mm.tokensPerSecond, mm.mfu * 100), "target MFU ≥ 70%")
        let mm4 = forward(miniMind, batch: 2, length: 512, runs: runs, sgemm: sgemm, quantize: true)
        add("forward MiniMind B2×512 (NF4 base)", String(format: "%.0f tokens/s, MFU %.0f%%", mm4.tokensPerSecond, mm4.mfu * 100), "target MFU ≥ 70%")
        func train(_ name: String, _ config: ModelConfig, batch: Int, runs: Int, target: String) {
            for chat in [false, true] {
                guard let t = trainStep(config, batch: batch, length: 512, runs: runs, sgemm: sgemm, chat: chat) else { continue }
                let rss = t.peakMegabytes.map { String(format: ", peak RSS %.0f MB", $0) } ?? ""
                add("train step \(name) B\(batch)×512 (NF4 base, rank-16 q/o, \(chat ? "second half supervised" : "all supervised"))",
                    String(format: "%.0f tokens/s, MFU %.0f%%", t.tokensPerSecond, t.mfu * 100) + rss,
                    "checkpointing \(t.checkpointed ? "on" : "off"); target \(target)")
            }
            // The QLoRA notebook's bnb_4bit_compute_dtype=bfloat16 (AVX512-BF16 products where the CPU has them).
            if let t = trainStep(config, batch: batch, length: 512, runs: runs, sgemm: sgemm, compute: .bf16) {
                add("train step \(name) B\(batch)×512 (NF4 base, bf16 compute, rank-16 q/o, all supervised)",
                    String(format: "%.0f tokens/s", t.tokensPerSecond),
                    Linear4bit.hasBF16Products ? "AVX512-BF16 products" : "bf16 emulated: fp32 products of rounded values")
            }
        }
        train("MiniMind", miniMind, batch: 2, runs: runs, target: "≥ 3,400 tokens/s")
        if !quick {
            let smol = forward(smolLM, batch: 1, length: 512, runs: 3, sgemm: sgemm, quantize: true)
            add("forward SmolLM-135M B1×512 (NF4 base)", String(format: "%.0f tokens/s, MFU %.0f%%", smol.tokensPerSecond, smol.mfu * 100), "target MFU ≥ 70%")
            train("SmolLM-135M", smolLM, batch: 1, runs: 3, target: "≥ 240 tokens/s, peak RSS ≤ 700 MB")
        }
        if let tokenizer = try? Tokenizer(data: ByteLevelTokenizerFile.json()) {
            let text = String(repeating: "What is 3 + 4? 3 + 4 = 7. Reverse: cat -> tac. 中文 text, code: let x = 1;\n", count: quick ? 2000 : 20000)
            let mbs = median(runs) { TokenizerBenchmark.megabytesPerSecond(tokenizer: tokenizer, text: text) }
            add("tokenizer (byte-level, one core)", String(format: "%.1f MB/s", mbs), "target ≥ 5")
        }
        for (key, value) in QuantBenchmark.run(runs: quick ? 3 : 7).sorted(by: { $0.key < $1.key }) {
            add("quant: \(key)", String(format: "%.2f", value))
        }
        add("peak RSS", String(format: "%.0f MB", PeakMemory.peakRSSMegabytes()))
        return rows
    }
}
