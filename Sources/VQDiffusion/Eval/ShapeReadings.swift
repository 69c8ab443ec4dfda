import Foundation

/// Where shape goes wrong: for every stated object, the shape the evaluator read for the object
/// matched to it (by the alignment's own matching, `ShapesAlignment.scoreAndReadShapes`), counted
/// by stated shape, and shape accuracy by the size the evaluator read for that object.
public struct ShapeReadings: Equatable, Sendable {
    /// counts[stated][read]: rows and the first five columns by `ShapeKind.rawValue`; column 5
    /// counts stated objects with no object to match (the image shows too few).
    public private(set) var counts: [[Int]]
    /// "small" and "large": shape right among stated objects whose matched object reads as that size.
    public private(set) var bySize: AttributeScores

    public static let missingColumn = ShapeKind.allCases.count

    public init() {
        counts = Array(repeating: Array(repeating: 0, count: ShapeKind.allCases.count + 1), count: ShapeKind.allCases.count)
        bySize = AttributeScores(names: SizeClass.allCases.map(\.name))
    }

    /// Counts one stated object and what was read for it (nil: nothing matched).
    public mutating func add(stated: ShapeKind, read: PredictedObject?) {
        counts[stated.rawValue][read?.shape.rawValue ?? Self.missingColumn] += 1
        if let read { bySize.add(read.size.name, correct: read.shape == stated) }
    }

    /// Stated objects of `shape`, and how many of them were read as `shape`.
    public func accuracy(of shape: ShapeKind) -> AttributeScore {
        let row = counts[shape.rawValue]
        return AttributeScore(name: shape.name, correct: row[shape.rawValue], total: row.reduce(0, +))
    }

    /// Per stated shape (by name), how many of its objects were read as that shape.
    public var byShape: AttributeScores {
        var scores = AttributeScores()
        for shape in ShapeKind.allCases {
            let a = accuracy(of: shape)
            scores.add(a.name, correct: a.correct, total: a.total)
        }
        return scores
    }

    /// The confusion table (rows: stated shape; columns: read shape, then "none"), each row in
    /// percent of its stated objects, with the row's accuracy and count; then accuracy by read size.
    public func table() -> String {
        let names = ShapeKind.allCases.map(\.name) + ["none"]
        func cell(_ s: String) -> String { String(repeating: " ", count: max(0, 9 - s.count)) + s }
        var lines = ["stated \\ read" + names.map(cell).joined() + cell("right") + cell("objects")]
        for shape in ShapeKind.allCases {
            let row = counts[shape.rawValue], total = row.reduce(0, +)
            let percents = row.map { total > 0 ? String(format: "%.1f", 100 * Double($0) / Double(total)) : "–" }
            let right = accuracy(of: shape)
            let rightText = total > 0 ? String(format: "%.1f %%", 100 * right.fraction) : "–"
            lines.append(shape.name.padding(toLength: 13, withPad: " ", startingAt: 0)
                         + percents.map(cell).joined() + cell(rightText) + cell(String(total)))
        }
        lines.append(bySize.table(title: "shape by read size"))
        return lines.joined(separator: "\n")
    }
}
