import Foundation
import Model
import TensorIO
import Distributed

public struct TrainingOptions: Equatable, Sendable {
    public var epochs = 1
    public var maxSteps: Int? = nil          // optimizer steps; overrides epochs when set
    // Defaults are the schema's (schemas/pipeline.schema.json, train); TrainingDefaultsTests keeps them equal.
    public var batchSize = 1
    /// `batch_tokens`: micro-batches filled up to this many real tokens instead of `batchSize` examples.
    public var batchTokens: Int? = nil
    public var gradAccum = 1
    public var learningRate = 2e-4
    public var schedule: LearningRateSchedule = .linear(warmupSteps: 0)
    public var maxGradNorm: Double? = 1.0    // nil = no clipping
    public var optimizer = OptimizerOptions()
    public var checkpointEvery = 50          // optimizer steps; 0 = only at epoch ends
    public var logEvery = 10
    public var shuffle = true
    public var seed: UInt64 = 0
    /// Pack each step's examples into rows of up to `packRowLength` tokens (Packing.swift); 0 = off.
    public var packRowLength = 0
    public init() {}
}

/// One optimizer step's record (a metrics.jsonl line; timing lives in timing.jsonl).
public struct StepMetrics: Equatable, Sendable {
    public var step: Int
    public var epoch: Int                 // 1-based
    public var loss: Double
    public var learningRate: Double
    public var gradNorm: Double           // before clipping
    public var tokens: Int                // tokens processed in this step (padding excluded)
    public var supervisedTokens: Int

    public var jsonLine: String {
        "{\"step\":\(step),\"epoch\":\(epoch),\"loss\":\(loss),\"lr\":\(learningRate),\"grad_norm\":\(gradNorm),\"tokens\":\(tokens),\"supervised_tokens\":\(supervisedTokens)}"
    }

    /// Parses a line written by `jsonLine`. Numbers go through `Double(String)` (correctly rounded),
    /// not JSONSerialization, whose Linux parser is not, so a resumed run reproduces the bytes.
    static func parse(_ line: String) -> StepMetrics? {
        guard let fields = FlatJSONLine.fields(line) else { return nil }
        guard let s = fields["step"].flatMap({ Int($0) }), let e = fields["epoch"].flatMap({ Int($0) }),
              let l = fields["loss"].flatMap({ Double($0) }), let lr = fields["lr"].flatMap({ Double($0) }),
              let g = fields["grad_norm"].flatMap({ Double($0) }), let t = fields["tokens"].flatMap({ Int($0) }),
              let st = fields["supervised_tokens"].flatMap({ Int($0) }) else { return nil }
        return StepMetrics(step: s, epoch: e, loss: l, learningRate: lr, gradNorm: g, tokens: t, supervisedTokens: st)
    }
}

public struct TrainingProgress: Sendable {
    public var step: Int, totalSteps: Int, epoch: Int, loss: Double, learningRate: Double
    public var tokensPerSecond: Double, etaSeconds: Double
    /// The latest validation pass's loss, when validation runs.
    public var evalLoss: Double?
    public init(step: Int, totalSteps: Int, epoch: Int, loss: Double, learningRate: Double, tokensPerSecond: Double, etaSeconds: Double,
                evalLoss: Double? = nil) {
        self.step = step; self.totalSteps = totalSteps; self.epoch = epoch; self.loss = loss
        self.learningRate = learningRate; self.tokensPerSecond = tokensPerSecond; self.etaSeconds = etaSeconds
        self.evalLoss = evalLoss
    }
    /// `240/750 · epoch 1 · loss 2.3456 [· eval 2.5012] · lr 2.00e-04 · 1234 tok/s · ETA 1:23` (ETA ≥ 0,
    /// 0 when unknown): the text of both the log line and the terminal bar.
    public var fields: String {
        let eta = etaSeconds.isFinite ? max(0, Int(etaSeconds)) : 0
        let eval = evalLoss.map { String(format: " · eval %.4f", $0) } ?? ""
        return String(format: "%d/%d · epoch %d · loss %.4f", step, totalSteps, epoch, loss) + eval
            + String(format: " · lr %.2e · %.0f tok/s · ETA %d:%02d", learningRate, tokensPerSecond, eta / 60, eta % 60)
    }
    /// The line every `logEvery` steps: `step 240/750 · epoch 1 · …`.
    public var line: String { "step " + fields }
}

public struct TrainingResult: Sendable {
    public var metrics: [StepMetrics]
    /// Validation passes, in step order.
    public var validations: [ValidationMetrics] = []
    /// The step whose adapter the model now holds (the last, or the best with keep: best).
    public var keptStep: Int = 0
    public var stopReason: StopReason = .completed
    public var totalSteps: Int
    public var resumedFromStep: Int?
    public var seconds: Double
    /// Wall-clock seconds at the end of each step of this process (timing.jsonl; not deterministic,
    /// hence kept out of metrics.jsonl).
    public var stepSeconds: [(step: Int, seconds: Double)] = []
    /// Seconds this process waited for the slowest rank before each all-reduce, and spent in the
    /// gradient all-reduces themselves (both 0 for one process).
    public var waitSeconds: Double = 0
    public var allReduceSeconds: Double = 0
    public var finalLoss: Double? { metrics.last?.loss }
    public var metricsJSONL: String { Trainer.metricsJSONL(metrics, validations) }

    /// One `{"step":N,"seconds":S}` line per step of this process: wall-clock seconds since it
    /// started, kept out of the artifact (it differs between runs).
    public var timingJSONL: String { stepSeconds.map { "{\"step\":\($0.step),\"seconds\":\($0.seconds)}\n" }.joined() }

    /// metrics.jsonl and loss.svg: deterministic, byte-identical between runs and after a resume.
    public func writeArtifacts(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicWrite.write(Array(metricsJSONL.utf8), to: directory.appendingPathComponent("metrics.jsonl"))
        try AtomicWrite.write(Array(LossPlot.svg(metrics, validations: validations).utf8), to: directory.appendingPathComponent("loss.svg"))
    }
}

/// The training loop: grad accumulation normalised by all micro-batches' supervised tokens,
/// global-norm clipping, schedule, optimizer, atomic checkpoints and exact resume; data-parallel
/// over the ranks of `collective` (DataParallel.swift says how the work is split).
public final class Trainer {
    public let options: TrainingOptions
    public let collective: any Collective
    public init(_ options: TrainingOptions, collective: any Collective = SingleProcess()) {
        self.options = options; self.collective = collective
    }

    /// Micro-batches per optimizer step: grad_accum on each of the ranks.
    var microBatchesPerStep: Int { options.gradAccum * collective.size }

    /// Micro-batches of one epoch (indices into the dataset), grouped per optimizer step.
    public func stepsOfEpoch(_ data: TrainingDataset, epoch: Int) -> [[[Int]]] {
        let order = data.order(epoch: epoch, shuffle: options.shuffle, seed: options.seed)
        let micro = options.batchTokens.map { Self.tokenBudgetBatches(order, data, budget: $0) }
            ?? stride(from: 0, to: order.count, by: options.batchSize).map { Array(order[$0..<min(order.count, $0 + options.batchSize)]) }
        let per = microBatchesPerStep
        return stride(from: 0, to: micro.count, by: per).map { Array(micro[$0..<min(micro.count, $0 + per)]) }
    }

    /// `order` cut into micro-batches, in order, each holding examples while their tokens fit in
    /// `budget` (at least one example each).
    static func tokenBudgetBatches(_ order: [Int], _ data: TrainingDataset, budget: Int) -> [[Int]] {
        var batches: [[Int]] = [], current: [Int] = [], tokens = 0
        for i in order {
            let n = data.examples[i].ids.count
            if !current.isEmpty && tokens + n > budget { batches.append(current); current = []; tokens = 0 }
            current.append(i); tokens += n
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Packed rows per micro-batch: batch_size, or as many rows of `rowLength` as batch_tokens holds.
    func packedRowsPerBatch(rowLength: Int) -> Int {
        max(1, options.batchTokens.map { $0 / max(1, rowLength) } ?? options.batchSize)
    }
    var packedRowsPerBatch: Int { packedRowsPerBatch(rowLength: options.packRowLength) }

    /// Rows of the largest micro-batch: batch_size, or under batch_tokens the most examples (or packed
    /// rows) one micro-batch of epoch 1 takes — what activation memory is planned for.
    public func largestMicroBatch(_ data: TrainingDataset) -> Int {
        guard options.batchTokens != nil else { return options.batchSize }
        if options.packRowLength > 0 { return packedRowsPerBatch }
        return stepsOfEpoch(data, epoch: 0).flatMap { $0 }.map(\.count).max() ?? 1
    }

    public func totalSteps(_ data: TrainingDataset) -> Int {
        if let m = options.maxSteps { return m }
        return options.epochs * stepsOfEpoch(data, epoch: 0).count
    }

    /// Parameters in a fixed order: (A, B) of every adapted module in model order.
    static func parameters(_ model: LlamaModel) -> [LoRAAdapter] { LoRAAttacher.adapted(model).compactMap(\.adapter) }

    /// metrics.jsonl: each step's row, followed by the validation row of that step if there is one.
    static func metricsJSONL(_ steps: [StepMetrics], _ validations: [ValidationMetrics]) -> String {
        var byStep: [Int: [ValidationMetrics]] = [:]
        for v in validations { byStep[v.step, default: []].append(v) }
        var s = ""
        for m in steps {
            s += m.jsonLine + "\n"
            for v in byStep[m.step] ?? [] { s += v.jsonLine + "\n" }
        }
        return s
    }

    /// Trains the model's adapters. `log` gets the run's messages and, unless `stepLog` is given
    /// (a terminal showing `progress` as a live bar), the progress line every `logEvery` steps.
    /// `validation`: a held-out set evaluated during training, with early stopping and keep-best.
    public func train(model: LlamaModel, dataset: TrainingDataset, workDirectory: URL,
                      validation: (options: ValidationOptions, data: TrainingDataset)? = nil,
                      log: (String) -> Void = { _ in },
                      progress: ((TrainingProgress) -> Void)? = nil,
                      stepLog: ((String) -> Void)? = nil,
                      isInterrupted: () -> Bool = { false }) throws -> TrainingResult {
        guard options.batchSize > 0, options.gradAccum > 0 else { throw TrainingError.invalidOption("batch_size and grad_accum must be positive") }
        guard !dataset.examples.isEmpty else { throw TrainingError.emptyDataset(file: dataset.source) }
        let adapters = Trainer.parameters(model)
        guard !adapters.isEmpty else { throw TrainingError.invalidOption("the model has no adapters to train; attach adapters first") }
        // LoRA dropout is a training-only op: the context below is set per micro-batch and
        // cleared on every exit, so evaluation and generation never drop.
        defer { for ad in adapters { ad.dropoutContext = nil } }
        let total = totalSteps(dataset)
        let optimizer = options.optimizer.make()
        var metrics: [StepMetrics] = []
        var step = 0, epoch = 0, stepInEpoch = 0
        let store = CheckpointStore(directory: workDirectory)
        var resumed: Int? = nil
        if let v = validation, v.data.examples.isEmpty { throw TrainingError.emptyDataset(file: v.data.source) }
        let vo = validation?.options ?? ValidationOptions()
        var validations: [ValidationMetrics] = []
        var stopping = EarlyStopping()
        var best: [AdapterSnapshot]? = nil
        // Rank 0 alone owns checkpoints; the others resume from the copy it sends.
        var latest = collective.rank == 0 ? try store.latest(warn: log) : nil
        if collective.isDistributed { latest = try DataParallel.share(latest, store: store, over: collective) }
        if let ck = latest {
            try ck.restore(into: model, optimizer: optimizer)
            step = ck.state.step; epoch = ck.state.epoch; stepInEpoch = ck.state.stepInEpoch
            metrics = ck.metrics; resumed = step
            validations = ck.validations; best = ck.best
            if let b = best, b.count != adapters.count || zip(b, adapters).contains(where: { $0.a.count != $1.a.count || $0.b.count != $1.b.count }) {
                throw TrainingError.corruptCheckpoint(path: ck.url.path, detail: "\(CheckpointStore.bestFile) does not match the model's adapters")
            }
            stopping = EarlyStopping(replaying: validations, minDelta: vo.minDelta)
            log("resuming from checkpoint at step \(step) (epoch \(epoch + 1))")
        }
        func validate() {
            guard let v = validation else { return }
            let m = Evaluator.metrics(model: model, dataset: v.data, batchSize: vo.batchSize)
            let row = ValidationMetrics(step: step, loss: m.loss, perplexity: m.perplexity, tokenAccuracy: m.tokenAccuracy, tokens: m.supervisedTokens)
            validations.append(row)
            let improved = stopping.record(row, minDelta: vo.minDelta)
            if improved && vo.keepBest { best = adapters.map { AdapterSnapshot(a: $0.a, b: $0.b) } }
            let mark = improved ? "new best" : String(format: "best %.4f at step %d", stopping.bestLoss, stopping.bestStep ?? 0)
            log(String(format: "eval at step %d: loss %.4f · perplexity %.3f · token accuracy %.4f over %d tokens", step, m.loss,
                       m.perplexity, m.tokenAccuracy, m.supervisedTokens) + " (\(mark))")
        }
        var checkpointedStep: Int? = nil
        var waitSeconds = 0.0, reduceSeconds = 0.0
        func checkpoint() throws {
            // Every rank reaches this at the same steps: the moment to check they still agree.
            guard try collective.allEqual(DataParallel.fingerprint(adapters)) else { throw DistributedError.ranksDiverged(step: step) }
            checkpointedStep = step
            guard collective.rank == 0 else { return }
            try store.write(model: model, optimizer: optimizer, state: .init(step: step, epoch: epoch, stepInEpoch: stepInEpoch),
                            metrics: metrics, validations: validations, best: vo.keepBest ? best : nil)
        }
        let start = Date()
        var tokensSinceStart = 0
        var stepSeconds: [(step: Int, seconds: Double)] = []
        var epochSteps = stepsOfEpoch(dataset, epoch: epoch)
        while step < total && !stopping.shouldStop(patience: vo.patience) {
            if stepInEpoch >= epochSteps.count { epoch += 1; stepInEpoch = 0; epochSteps = stepsOfEpoch(dataset, epoch: epoch) }
            if try collective.any(isInterrupted()) {
                if checkpointedStep != step { try checkpoint() }
                // No rank leaves (and a leaving rank aborts the job) before rank 0's checkpoint is written.
                try collective.barrier()
                throw TrainingError.interrupted(step: step)
            }
            let micro = options.packRowLength > 0
                ? dataset.packedBatches(epochSteps[stepInEpoch].flatMap { $0 }, rowLength: options.packRowLength, rowsPerBatch: packedRowsPerBatch)
                : epochSteps[stepInEpoch].map { dataset.batch($0) }
            for ad in adapters { ad.zeroGradients() }
            let supervised = micro.reduce(0) { $0 + $1.supervisedTokens }
            var lossSum = 0.0, tokens = 0
            if supervised > 0 {
                let scale = Float(1.0 / Double(supervised))
                for (k, b) in micro.enumerated() where k % collective.size == collective.rank {
                    let context = LoRADropoutContext(seed: options.seed, step: step + 1, micro: k)
                    for ad in adapters { ad.dropoutContext = context }
                    lossSum += model.lossAndGradients(tokens: b.tokens, batch: b.batch, length: b.length, lossWeights: b.lossWeights, gradScale: scale,
                                                      segments: b.segments)
                }
                for ad in adapters { ad.dropoutContext = nil }
                if collective.isDistributed {
                    let reduced = try DataParallel.reduce(adapters, lossSum: lossSum, over: collective)
                    lossSum = reduced.loss; waitSeconds += reduced.waitSeconds; reduceSeconds += reduced.transferSeconds
                }
            }
            tokens = micro.reduce(0) { acc, b in acc + (0..<b.batch).reduce(0) { $0 + Trainer.realLength(b, row: $1, pad: dataset.padId) } }
            let norm = Trainer.gradNorm(adapters)
            if let maxNorm = options.maxGradNorm {
                let coef = Float(GradientClipping.coefficient(norm: norm, maxNorm: maxNorm))
                for ad in adapters {
                    for i in ad.gradA.indices { ad.gradA[i] *= coef }
                    for i in ad.gradB.indices { ad.gradB[i] *= coef }
                }
            }
            step += 1; stepInEpoch += 1
            let lr = options.schedule.learningRate(base: options.learningRate, step: step, totalSteps: total)
            optimizer.beginStep(learningRate: lr)
            for (k, ad) in adapters.enumerated() {
                optimizer.update(index: 2 * k, value: &ad.a, grad: ad.gradA)
                optimizer.update(index: 2 * k + 1, value: &ad.b, grad: ad.gradB)
            }
            let loss = supervised > 0 ? lossSum / Double(supervised) : 0
            metrics.append(StepMetrics(step: step, epoch: epoch + 1, loss: loss, learningRate: lr, gradNorm: norm, tokens: tokens, supervisedTokens: supervised))
            tokensSinceStart += tokens
            let elapsed = Date().timeIntervalSince(start)
            stepSeconds.append((step, elapsed))
            if validation != nil && ((vo.every > 0 && step % vo.every == 0) || step == total) { validate() }
            let p = TrainingProgress(step: step, totalSteps: total, epoch: epoch + 1, loss: loss, learningRate: lr,
                                     tokensPerSecond: elapsed > 0 ? Double(tokensSinceStart) / elapsed : 0,
                                     etaSeconds: elapsed / Double(step - (resumed ?? 0)) * Double(total - step),
                                     evalLoss: validations.last?.loss)
            progress?(p)
            if options.logEvery > 0 && (step % options.logEvery == 0 || step == total) {
                if let stepLog { stepLog(p.line) } else { log(p.line) }
            }
            let epochEnd = stepInEpoch >= epochSteps.count
            let stopNow = stopping.shouldStop(patience: vo.patience)
            if (options.checkpointEvery > 0 && step % options.checkpointEvery == 0) || epochEnd || step == total || stopNow {
                try checkpoint()
            }
        }
        var result = TrainingResult(metrics: metrics, totalSteps: total, resumedFromStep: resumed, seconds: Date().timeIntervalSince(start),
                                    stepSeconds: stepSeconds)
        result.validations = validations
        result.keptStep = step
        result.allReduceSeconds = reduceSeconds
        result.waitSeconds = waitSeconds
        if stopping.shouldStop(patience: vo.patience), let patience = vo.patience {
            result.stopReason = .earlyStopping(step: step, passes: patience)
        }
        if vo.keepBest, let best, let bestStep = stopping.bestStep {
            for (ad, snap) in zip(adapters, best) { ad.a = snap.a; ad.b = snap.b }
            result.keptStep = bestStep
        }
        return result
    }

    static func realLength(_ b: Batch, row: Int, pad: Int32) -> Int {
        var n = b.length
        while n > 0 && b.tokens[row * b.length + n - 1] == pad && b.lossWeights[row * b.length + n - 1] == 0 { n -= 1 }
        return n
    }

    /// ‖grads‖₂ over (A, B) of every adapter in order, as clip_grad_norm_ (norm of per-tensor norms).
    static func gradNorm(_ adapters: [LoRAAdapter]) -> Double {
        var grads: [[Float]] = []
        for ad in adapters { grads.append(ad.gradA); grads.append(ad.gradB) }
        return GradientClipping.globalNorm(grads)
    }
}
