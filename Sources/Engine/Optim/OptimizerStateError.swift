import Foundation

/// A saved optimizer or EMA state that does not fit the parameters it is being restored into.
///
/// State comes from checkpoint files, so a mismatch is an input error, not a programmer error:
/// the message names the tensor and says what was expected.
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A tensor the state needs is absent.
    case missing(name: String)
    /// A tensor is present with the wrong shape.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// A tensor has the right shape but an impossible value (e.g. a negative step count).
    case invalidValue(name: String, reason: String)
    /// There is nothing to restore into (e.g. an EMA that tracks no parameters yet).
    case empty(reason: String)

    public var description: String {
        switch self {
        case .missing(let name):
            return "optimizer state tensor '\(name)' is missing; the checkpoint was written for a different "
                + "model or optimizer (check the parameter names, or start the optimizer afresh)"
        case .shapeMismatch(let name, let expected, let found):
            return "optimizer state tensor '\(name)' has shape \(found) but the parameter needs \(expected); "
                + "the checkpoint was written for a model of a different size"
        case .invalidValue(let name, let reason):
            return "optimizer state tensor '\(name)' is invalid: \(reason)"
        case .empty(let reason):
            return reason
        }
    }

    public var errorDescription: String? { description }
}

/// Looks up `name` in `tensors` and checks its shape, throwing an `OptimizerStateError` otherwise.
func requireStateTensor(_ tensors: [String: Tensor], _ name: String, shape: [Int]) throws -> Tensor {
    guard let t = tensors[name] else { throw OptimizerStateError.missing(name: name) }
    guard t.shape == shape else {
        throw OptimizerStateError.shapeMismatch(name: name, expected: shape, found: t.shape)
    }
    return t
}

/// A non-negative integer counter stored as a Float32 scalar (exact up to 2^24).
func stateCounterTensor(_ value: Int) -> Tensor {
    precondition(value >= 0 && value <= 1 << 24, "counter \(value) is not exactly representable in Float32")
    return Tensor(scalar: Float(value))
}

/// Reads a counter written by `stateCounterTensor`, checking that it is a non-negative integer.
func readStateCounter(_ tensors: [String: Tensor], _ name: String) throws -> Int {
    let v = try requireStateTensor(tensors, name, shape: []).item
    guard v.isFinite, v >= 0, v == v.rounded(), v <= Float(1 << 24) else {
        throw OptimizerStateError.invalidValue(name: name, reason: "expected a non-negative integer count, found \(v)")
    }
    return Int(v)
}
