import Foundation

/// Learning rate with a linear warm-up to `peak`, then a half-cosine decay to `minimum`.
///
/// Steps are counted from 0 (the index of the update about to be taken):
/// - warm-up, `step < warmupSteps`: `peak · (step + 1) / warmupSteps`, reaching `peak` at the
///   last warm-up step (the first step already moves, never with a zero rate);
/// - decay, `warmupSteps ≤ step ≤ totalSteps`: with progress p = (step − warmupSteps) /
///   (totalSteps − warmupSteps), `minimum + (peak − minimum) · (1 + cos πp) / 2`, from `peak`
///   at the end of warm-up down to `minimum` at `totalSteps`;
/// - after `totalSteps`: `minimum`.
public struct WarmupCosineSchedule: Equatable {
    /// The rate at the end of warm-up.
    public var peak: Float
    /// Number of warm-up steps (0 starts the cosine at once).
    public var warmupSteps: Int
    /// The step at which the rate reaches `minimum`.
    public var totalSteps: Int
    /// The floor of the cosine decay.
    public var minimum: Float

    public init(peak: Float, warmupSteps: Int, totalSteps: Int, minimum: Float = 0) {
        precondition(warmupSteps >= 0, "warmupSteps must be non-negative, got \(warmupSteps)")
        precondition(totalSteps >= warmupSteps, "totalSteps (\(totalSteps)) must be at least warmupSteps (\(warmupSteps))")
        precondition(peak >= minimum && minimum >= 0, "need peak ≥ minimum ≥ 0, got peak \(peak), minimum \(minimum)")
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minimum = minimum
    }

    public func learningRate(at step: Int) -> Float {
        precondition(step >= 0, "learningRate(at:) needs a non-negative step, got \(step)")
        if step < warmupSteps {
            return Float(Double(peak) * Double(step + 1) / Double(warmupSteps))
        }
        if step >= totalSteps { return minimum }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        let cosine = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        return Float(Double(minimum) + (Double(peak) - Double(minimum)) * cosine)
    }
}
