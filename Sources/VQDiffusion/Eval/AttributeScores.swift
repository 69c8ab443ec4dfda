import Foundation

/// How often one attribute was read correctly: `correct` out of `total` scored cases.
public struct AttributeScore: Equatable, Sendable {
    public var name: String
    public var correct: Int
    public var total: Int

    public init(name: String, correct: Int = 0, total: Int = 0) {
        self.name = name
        self.correct = correct
        self.total = total
    }

    /// correct / total; NaN when nothing was scored.
    public var fraction: Double { total > 0 ? Double(correct) / Double(total) : .nan }
}

/// Named counts of correct readings, in the order the names were first added: per-attribute
/// accuracies of an evaluator, or how often generations match their prompts.
public struct AttributeScores: Equatable, Sendable {
    public private(set) var scores: [AttributeScore] = []

    public init() {}

    /// Declares `names` in this order with nothing scored yet (so tables list every attribute).
    public init(names: [String]) {
        scores = names.map { AttributeScore(name: $0) }
    }

    /// Counts one scored case of `name`.
    public mutating func add(_ name: String, correct: Bool) {
        add(name, correct: correct ? 1 : 0, total: 1)
    }

    public mutating func add(_ name: String, correct: Int, total: Int) {
        if let i = scores.firstIndex(where: { $0.name == name }) {
            scores[i].correct += correct
            scores[i].total += total
        } else {
            scores.append(AttributeScore(name: name, correct: correct, total: total))
        }
    }

    /// Adds every count of `other`.
    public mutating func merge(_ other: AttributeScores) {
        for s in other.scores { add(s.name, correct: s.correct, total: s.total) }
    }

    public subscript(name: String) -> AttributeScore? { scores.first { $0.name == name } }

    /// The fraction for `name`; NaN when it was never scored or is unknown.
    public func fraction(_ name: String) -> Double { self[name]?.fraction ?? .nan }

    /// Names and fractions of the attributes scored at least once.
    public var scoredFractions: [(name: String, fraction: Double)] {
        scores.filter { $0.total > 0 }.map { (name: $0.name, fraction: $0.fraction) }
    }

    /// A two-column table: attribute, percentage and the counts behind it.
    public func table(title: String = "attribute") -> String {
        let width = max(title.count, scores.map(\.name.count).max() ?? 0)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var lines = [pad(title) + "  accuracy     correct / total"]
        for s in scores {
            let value = s.total > 0 ? String(format: "%7.2f %%", 100 * s.fraction) : "      –  "
            lines.append(pad(s.name) + "  " + value + String(format: "  %8d / %d", s.correct, s.total))
        }
        return lines.joined(separator: "\n")
    }
}
