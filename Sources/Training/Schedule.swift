import Foundation

/// Learning-rate schedules, computed in Double.
///
/// transformers' `get_*_schedule_with_warmup` build a `LambdaLR`; the optimizer step k (1-based)
/// uses `baseLR · lambda(k − 1)`, so with warmup the first step has lr 0 (golden/schedules.json).
public enum LearningRateSchedule: Equatable, Sendable {
    case constant
    /// transformers `get_cosine_schedule_with_warmup` (num_cycles 0.5).
    case cosine(warmupSteps: Int)
    /// transformers `get_linear_schedule_with_warmup`.
    case linear(warmupSteps: Int)
    /// The reference notebook's `lr/10 + 0.5·lr·(1 + cos(π·step/total))`, with the 1-based optimizer step.
    case cosineFloor

    public init(name: String, warmupSteps: Int = 0) throws {
        switch name {
        case "constant": self = .constant
        case "cosine": self = .cosine(warmupSteps: warmupSteps)
        case "linear": self = .linear(warmupSteps: warmupSteps)
        case "cosine_floor": self = .cosineFloor
        default: throw TrainingError.invalidOption("unknown schedule \"\(name)\"; use constant, cosine, linear or cosine_floor")
        }
    }

    /// LambdaLR multiplier after `step` scheduler steps (0-based), as in transformers.
    public func lambda(_ step: Int, totalSteps: Int) -> Double {
        switch self {
        case .constant:
            return 1
        case let .cosine(warmup):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            let progress = Double(step - warmup) / Double(max(1, totalSteps - warmup))
            return max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        case let .linear(warmup):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmup)))
        case .cosineFloor:
            return 0.1 + 0.5 * (1 + cos(Double.pi * Double(step) / Double(max(1, totalSteps))))
        }
    }

    /// The learning rate used at optimizer step `step` (1-based) of `totalSteps`.
    public func learningRate(base: Double, step: Int, totalSteps: Int) -> Double {
        switch self {
        case .cosineFloor:
            // The notebook evaluates its formula at the 1-based step directly.
            return base / 10 + 0.5 * base * (1 + cos(Double.pi * Double(step) / Double(max(1, totalSteps))))
        default:
            return base * lambda(step - 1, totalSteps: totalSteps)
        }
    }
}
