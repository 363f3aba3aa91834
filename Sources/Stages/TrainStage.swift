import Foundation
import PipelineCore
import Model
import Tokenizer
import Training
import Distributed

/// `train`: trains the adapters of an `adapted`/`trained` model. Checkpoints go to the stage's
/// work directory (kept by the cache across crashes and Ctrl-C, so a re-run resumes).
/// Artifact: base model files (linked) + the trained PEFT adapter + metrics.jsonl + loss.svg.
struct TrainStage: StageRunner {
    /// The ranks of an MPI job (DataParallel.swift in Training), or one process.
    var collective: any Collective = SingleProcess()

    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"] else { throw StageError.missingFile("model") }
        // The stage's own peak memory, apart from what earlier stages of this process peaked at
        // (loading an fp32 checkpoint before quantizing it): the peak mark is reset here.
        let peakBefore = PeakMemory.peakRSSMegabytes()
        let stagePeakMeasured = PeakMemory.resetPeakRSS()
        let f = context.fields
        var options = TrainingOptions()
        options.epochs = f["epochs"]?.intValue ?? 1
        let maxSteps = f["max_steps"]?.intValue ?? 0
        options.maxSteps = maxSteps > 0 ? maxSteps : nil
        options.batchSize = f["batch_size"]?.intValue ?? 1
        options.batchTokens = f["batch_tokens"]?.intValue
        options.gradAccum = f["grad_accum"]?.intValue ?? 1
        options.learningRate = f["lr"]?.doubleValue ?? 2e-4
        options.schedule = try LearningRateSchedule(name: f["schedule"]?.stringValue ?? "linear", warmupSteps: f["warmup_steps"]?.intValue ?? 0)
        let clip = f["clip_grad_norm"]?.doubleValue ?? 1.0
        options.maxGradNorm = clip > 0 ? clip : nil
        options.optimizer.kind = try OptimizerOptions.kind(named: f["optimizer"]?.stringValue ?? "adamw", log: context.log)
        let betas = f["betas"]?.arrayValue?.compactMap(\.doubleValue) ?? [0.9, 0.999]
        if betas.count == 2 { options.optimizer.beta1 = betas[0]; options.optimizer.beta2 = betas[1] }
        options.optimizer.eps = f["eps"]?.doubleValue ?? 1e-8
        options.optimizer.weightDecay = f["weight_decay"]?.doubleValue ?? 0
        options.optimizer.momentum = f["momentum"]?.doubleValue ?? 0
        options.checkpointEvery = f["checkpoint_every"]?.intValue ?? 50
        options.logEvery = f["log_every"]?.intValue ?? 10
        options.shuffle = f["shuffle"]?.boolValue ?? true
        options.seed = context.seed

        let model = try AdaptedModel.load(source)
        if let line = model.compactEmbeddingDescription { context.log(line) }
        let tokenizer = try Tokenizer(contentsOf: source.appendingPathComponent("tokenizer.json"))
        var dataOptions = DatasetOptions()
        dataOptions.maxSeqLen = f["max_seq_len"]?.intValue ?? 512
        dataOptions.trainOnPrompt = f["train_on_prompt"]?.boolValue ?? false
        dataOptions.systemPrompt = f["system_prompt"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let chat = try ChatFormat.load(directory: source, tokenizer: tokenizer,
                                       choice: context.inputPaths["chat_template"]?.path ?? f["chat_template"]?.stringValue ?? "model")
        context.log("chat template: \(chat.origin)")
        var dataset = try Self.trainingData(context, fields: f, tokenizer: tokenizer, dataOptions: dataOptions, chat: chat)
        if let sample = dataset.audit.sample {
            context.record("first example as the model sees it, supervised tokens between ⟦ and ⟧:\n" + sample)
        }
        let validation = try Self.validation(context, fields: f, dataset: &dataset, tokenizer: tokenizer, dataOptions: dataOptions,
                                             chat: chat, batchSize: options.batchSize)
        // The mix's shares of an epoch, after any eval_split took its examples.
        let labels = f["data"]?.arrayValue?.enumerated().map { "data[\($0.offset)] \($0.element["path"]?.stringValue ?? "")" }
        for line in dataset.mixtureLines(labels: labels) { context.log(line) }
        // Packing: true/false as asked; auto when it costs fewer passes or positions (Training/Packing.swift).
        let packingField = f["packing"]
        let choice: PackingChoice = packingField?.boolValue.map { $0 ? .on : .off } ?? .auto
        let packing = choice.decide(Trainer(options, collective: collective), data: dataset, rowLength: dataOptions.maxSeqLen)
        if packing.pack { options.packRowLength = dataOptions.maxSeqLen }
        context.log(packing.summary(auto: packingField?.boolValue == nil, rowLength: dataOptions.maxSeqLen) { $0 == 1 ? "1 micro-batch" : "\($0) micro-batches" }
                    + " in epoch 1")
        // Gradient checkpointing: true/false as asked; auto by the activation memory of the largest
        // micro-batch (batch_size × max_seq_len). Same numbers either way.
        let longest = min(dataOptions.maxSeqLen, model.config.maxPositionEmbeddings)
        let rows = Trainer(options, collective: collective).largestMicroBatch(dataset)   // batch_size, or what batch_tokens gives
        let checkpointingField = f["gradient_checkpointing"]
        model.gradientCheckpointing = checkpointingField?.boolValue ?? model.chooseCheckpointing(batch: rows, length: longest)
        let kept = Double(model.activationBytes(batch: rows, length: longest, checkpointed: model.gradientCheckpointing)) / 1e6
        context.log("gradient checkpointing \(model.gradientCheckpointing ? "on" : "off")\(checkpointingField?.boolValue == nil ? " (auto)" : ""): "
                    + String(format: "layer activations up to %.1f MB", kept) + " per micro-batch of \(rows) × \(longest) tokens")
        if let budget = options.batchTokens {   // packing.plain: epoch 1's micro-batches as batch_tokens cuts them
            context.log("batch_tokens \(budget): epoch 1 takes \(packing.plain) micro-batches of up to \(budget) tokens (\(rows) rows at most)")
        }
        // On a terminal, a live bar; the lines every log_every steps then go to the stage log only.
        var bar: ((TrainingProgress) -> Void)? = nil
        if let status = context.progress {
            bar = { p in status(ProgressBar.line(p)) }
        }
        let stepLog: ((String) -> Void)? = context.progress == nil ? nil : { line in context.record(line) }
        let result: TrainingResult
        do {
            if collective.isDistributed {
                context.log("data-parallel over \(collective.size) ranks (MPI): each step takes grad_accum × \(collective.size) = "
                            + "\(options.gradAccum * collective.size) micro-batches of \(options.batchTokens.map { "up to \($0) tokens" } ?? "\(options.batchSize)"), rank \(collective.rank) computes micro-batches "
                            + "\(collective.rank), \(collective.rank + collective.size), …")
            }
            result = try Trainer(options, collective: collective).train(model: model, dataset: dataset, workDirectory: context.workDirectory,
                                                validation: validation, log: context.log, progress: bar,
                                                stepLog: stepLog,
                                                isInterrupted: context.isInterrupted)
        } catch TrainingError.interrupted {
            throw StageInterrupted()
        }
        // What this process did (a resumed run counts only its own steps) and the memory it took.
        let ranSteps = result.totalSteps - (result.resumedFromStep ?? 0)
        let ranTokens = result.metrics.filter { $0.step > (result.resumedFromStep ?? 0) }.reduce(0) { $0 + $1.tokens }
        let stagePeak = stagePeakMeasured ? PeakMemory.currentPeakRSSMegabytes() : nil
        let processPeak = max(peakBefore, PeakMemory.peakRSSMegabytes(), stagePeak ?? 0)
        context.log(String(format: "%d steps in %.1f s (%.0f tokens/s), ", ranSteps, result.seconds,
                           result.seconds > 0 ? Double(ranTokens) / result.seconds : 0)
                    + (stagePeak.map { String(format: "peak RSS of this stage %.0f MB, of the process %.0f MB", $0, processPeak) }
                       ?? String(format: "peak RSS of the process %.0f MB", processPeak)))
        if collective.isDistributed && ranSteps > 0 {
            let share = { (seconds: Double) in result.seconds > 0 ? seconds / result.seconds * 100 : 0 }
            context.log(String(format: "all-reduce of the gradients: %.2f ms per step (%.1f%% of the training time); waiting for the slowest rank: %.2f ms per step (%.1f%%)",
                               result.allReduceSeconds / Double(ranSteps) * 1000, share(result.allReduceSeconds),
                               result.waitSeconds / Double(ranSteps) * 1000, share(result.waitSeconds)))
        }
        let out = context.outputDirectory
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path).sorted()
            where name != PEFTAdapter.configFile && name != PEFTAdapter.weightsFile && name != "lora.json" {
            try ArtifactFiles.linkOrCopy(name, from: source, to: out)
        }
        let config = try PEFTAdapter.readConfig(source)
        var lora = LoRAOptions()
        lora.rank = config.rank; lora.alpha = config.alpha; lora.rslora = config.rslora
        try PEFTAdapter.save(model, to: out, baseModelNameOrPath: config.baseModel ?? "", options: lora)
        try result.writeArtifacts(to: out)
        // Per-step wall-clock seconds beside the stage log, not in the artifact (they differ per run).
        if let timing = context.sideFile("timing.jsonl") {
            try Data(result.timingJSONL.utf8).write(to: timing, options: .atomic)
            context.record("per-step timing: \(timing.path)")
        }
        var report: [String] = []
        var summary: [String: JSONValue] = ["steps": .integer(Int64(result.metrics.last?.step ?? result.totalSteps))]
        if let first = result.metrics.first?.loss { summary["loss_first"] = .number(first) }
        if let last = result.finalLoss { summary["loss_final"] = .number(last) }
        if result.seconds > 0 && ranSteps > 0 { summary["tokens_per_second"] = .integer(Int64((Double(ranTokens) / result.seconds).rounded())) }
        if let v = validation, let lastEval = result.validations.last {
            summary["eval_loss_final"] = .number(lastEval.loss)
            summary["kept_step"] = .integer(Int64(result.keptStep))
            let kept = result.validations.first { $0.step == result.keptStep }
            if let kept { summary["eval_loss_kept"] = .number(kept.loss) }
            if case .earlyStopping = result.stopReason { summary["stopped_early"] = .bool(true) }
            let which = v.options.keepBest ? "the best validation pass" : "the last step"
            let line = "\(result.stopReason.text); kept the adapter of step \(result.keptStep) (\(which)"
                + (kept.map { String(format: ", eval loss %.4f", $0.loss) } ?? "") + ")"
            context.log(line)
            report.append(line)
        }
        return StageResult(summary: summary, report: report)
    }
}

extension TrainStage {
    /// `data`: one file, or a list of files mixed by weight (each loaded and audited on its own,
    /// in list order; the mix's shares logged per file).
    static func trainingData(_ context: StageContext, fields f: JSONValue, tokenizer: Tokenizer, dataOptions: DatasetOptions,
                             chat: ChatFormat) throws -> TrainingDataset {
        if let url = context.inputPaths["data"] {
            let dataset = try TrainingDataset.load(url: url, tokenizer: tokenizer, options: dataOptions, chat: chat)
            context.log(dataset.audit.line)
            return dataset
        }
        guard let entries = f["data"]?.arrayValue, !entries.isEmpty else { throw StageError.missingFile("data") }
        var parts: [(data: TrainingDataset, weight: Double, maxExamples: Int?)] = []
        for (i, entry) in entries.enumerated() {
            guard let url = context.inputPaths["data.\(i).path"] else { throw StageError.missingFile("data[\(i)].path") }
            let part = try TrainingDataset.load(url: url, tokenizer: tokenizer, options: dataOptions, chat: chat)
            let limit = entry["max_examples"]?.intValue
            context.log("data[\(i)] \(entry["path"]?.stringValue ?? url.path): " + part.audit.line.dropFirst("data: ".count)
                        + (limit.map { $0 < part.examples.count ? "; first \($0) used (max_examples)" : "" } ?? ""))
            parts.append((part, entry["weight"]?.doubleValue ?? 1, limit))
        }
        let dataset = TrainingDataset.mixing(parts)
        context.log("data: mix of \(parts.count) files, " + dataset.audit.line.dropFirst("data: ".count))
        return dataset
    }

    /// The held-out set (eval_data, or eval_split of `dataset`, which then loses those examples) and
    /// the validation options; nil when the stage validates nothing.
    static func validation(_ context: StageContext, fields f: JSONValue, dataset: inout TrainingDataset, tokenizer: Tokenizer,
                           dataOptions: DatasetOptions, chat: ChatFormat, batchSize: Int) throws -> (options: ValidationOptions, data: TrainingDataset)? {
        var held: TrainingDataset
        let split = f["eval_split"]?.doubleValue ?? 0
        if let url = context.inputPaths["eval_data"] {
            held = try TrainingDataset.load(url: url, tokenizer: tokenizer, options: dataOptions, chat: chat)
            context.log("validation " + held.audit.line)
        } else if split > 0 {
            guard dataset.examples.count >= 2 else {
                throw StageError.invalidField(field: "eval_split", reason: "the data has only \(dataset.examples.count) example; a split needs at least 2 (or give eval_data)")
            }
            let parts = EvaluationSplit.split(dataset, fraction: split, seed: context.seed)
            dataset = parts.train; held = parts.eval
            context.log("eval_split \(split): \(held.examples.count) of \(held.examples.count + dataset.examples.count) examples held out for validation "
                        + "(\(held.audit.supervisedTokens) supervised tokens), \(dataset.examples.count) train")
        } else {
            return nil
        }
        let limit = f["eval_max_examples"]?.intValue ?? 0
        if limit > 0 && held.examples.count > limit {
            held = TrainingDataset(examples: Array(held.examples.prefix(limit)), padId: held.padId, source: held.source)
            context.log("validation on the first \(limit) held-out examples (eval_max_examples)")
        }
        var options = ValidationOptions()
        options.every = f["eval_every"]?.intValue ?? 0
        options.batchSize = batchSize
        options.keepBest = f["keep"]?.stringValue == "best"
        if let stop = f["early_stopping"], stop.objectValue != nil {
            options.patience = stop["patience"]?.intValue ?? 3
            options.minDelta = stop["min_delta"]?.doubleValue ?? 0
        }
        return (options, held)
    }
}

/// The live training bar of a terminal (the CLI redraws it in place; never in the stage log):
/// `[######..............] 240/750 · epoch 1 · loss 2.3456 · lr 2.00e-04 · 1234 tok/s · ETA 1:23`.
public enum ProgressBar {
    public static func line(_ p: TrainingProgress, width: Int = 20) -> String {
        let done = p.totalSteps > 0 ? min(width, max(0, p.step * width / p.totalSteps)) : 0
        return "[" + String(repeating: "#", count: done) + String(repeating: ".", count: width - done) + "] " + p.fields
    }
}
