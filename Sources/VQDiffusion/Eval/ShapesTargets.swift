import Foundation

/// What the Shapes evaluator reads from an image, and the training targets it learns from.
///
/// Objects are read in *spatial* order: slot 0 is the leading object of a pair (the left one of a
/// side-by-side pair, the upper one of a stacked pair), slot 1 the other; a single object is slot 0.
/// The pair's relation is read as its axis: `.leftOf` (slot 0 left of slot 1) or `.above`
/// (slot 0 above slot 1).
///
/// Why not caption order: the layout draws the relation uniformly, so "A left of B" and
/// "B right of A" give the same distribution of pixels, and no network can tell from the image
/// which object a caption mentions first. Spatial order is what the image determines; alignment
/// (`ShapesAlignment`) maps a caption's objects onto the two slots.
public enum ShapesTargets {
    /// The heads, in network order. Slot-1 heads and the position/axis heads are trained only on
    /// the scenes that have them (negative targets elsewhere).
    public static let heads: [(name: String, classes: Int)] = [
        ("objects", 2),                                            // 1 or 2 objects
        ("position", GridPosition.allCases.count),                 // single object only
        ("relation", 2),                                           // pairs only: 0 = horizontal, 1 = vertical
        ("shape0", ShapeKind.allCases.count), ("color0", ShapeColor.allCases.count), ("size0", SizeClass.allCases.count),
        ("shape1", ShapeKind.allCases.count), ("color1", ShapeColor.allCases.count), ("size1", SizeClass.allCases.count),
    ]

    enum Head: Int {
        case objects, position, relation, shape0, color0, size0, shape1, color1, size1
    }

    /// The scene's objects in spatial order and the relation as its axis (`.leftOf` or `.above`).
    public static func spatialOrder(_ scene: ShapesScene) -> (objects: [SceneObject], relation: Relation?) {
        guard let relation = scene.relation, scene.objects.count == 2 else { return (scene.objects, nil) }
        switch relation {
        case .leftOf, .above: return (scene.objects, relation)
        case .rightOf: return ([scene.objects[1], scene.objects[0]], .leftOf)
        case .below: return ([scene.objects[1], scene.objects[0]], .above)
        }
    }

    /// One target per head for `scene`, −1 where the head does not apply (ignored by the loss).
    public static func targets(_ scene: ShapesScene) -> [Int32] {
        var t = [Int32](repeating: -1, count: heads.count)
        let (objects, relation) = spatialOrder(scene)
        t[Head.objects.rawValue] = Int32(objects.count - 1)
        if let p = scene.position { t[Head.position.rawValue] = Int32(p.rawValue) }
        if let r = relation { t[Head.relation.rawValue] = r.isHorizontal ? 0 : 1 }
        for (slot, o) in objects.prefix(2).enumerated() {
            let base = slot == 0 ? Head.shape0.rawValue : Head.shape1.rawValue
            t[base] = Int32(o.shape.rawValue)
            t[base + 1] = Int32(o.color.rawValue)
            t[base + 2] = Int32(o.size.rawValue)
        }
        return t
    }

    /// The scene the heads' classes describe (one entry per head, in `heads` order).
    public static func prediction(fromClasses c: [Int]) -> ShapesPrediction {
        precondition(c.count == heads.count, "ShapesTargets.prediction: \(c.count) classes for \(heads.count) heads")
        func object(_ base: Int) -> PredictedObject {
            PredictedObject(shape: ShapeKind(rawValue: c[base])!, color: ShapeColor(rawValue: c[base + 1])!,
                            size: SizeClass(rawValue: c[base + 2])!)
        }
        if c[Head.objects.rawValue] == 0 {
            return ShapesPrediction(objects: [object(Head.shape0.rawValue)],
                                    position: GridPosition(rawValue: c[Head.position.rawValue])!, relation: nil)
        }
        return ShapesPrediction(objects: [object(Head.shape0.rawValue), object(Head.shape1.rawValue)],
                                position: nil, relation: c[Head.relation.rawValue] == 0 ? .leftOf : .above)
    }

    /// Predictions for every image from per-head class lists (as `Evaluator.evaluate` returns them).
    public static func predictions(fromHeadClasses classes: [[Int]]) -> [ShapesPrediction] {
        precondition(classes.count == heads.count, "ShapesTargets.predictions: \(classes.count) heads, expected \(heads.count)")
        let n = classes.first?.count ?? 0
        return (0..<n).map { i in prediction(fromClasses: classes.map { $0[i] }) }
    }
}

/// One object as the evaluator sees it.
public struct PredictedObject: Equatable, Sendable {
    public var shape: ShapeKind
    public var color: ShapeColor
    public var size: SizeClass

    public init(shape: ShapeKind, color: ShapeColor, size: SizeClass) {
        self.shape = shape
        self.color = color
        self.size = size
    }
}

/// A Shapes scene as the evaluator reads it from an image, objects in spatial order.
public struct ShapesPrediction: Equatable, Sendable {
    /// One or two objects; for two, slot 0 is the left (or upper) one.
    public var objects: [PredictedObject]
    /// The grid cell of a single object; nil for two.
    public var position: GridPosition?
    /// For two objects: `.leftOf` (slot 0 left of slot 1) or `.above` (slot 0 above slot 1).
    public var relation: Relation?

    public init(objects: [PredictedObject], position: GridPosition?, relation: Relation?) {
        precondition(relation != .rightOf && relation != .below,
                     "a ShapesPrediction keeps objects in spatial order: relation must be leftOf or above, got \(String(describing: relation))")
        self.objects = objects
        self.position = position
        self.relation = relation
    }

    /// The exact reading of a scene (what a perfect evaluator predicts).
    public init(scene: ShapesScene) {
        let (objects, relation) = ShapesTargets.spatialOrder(scene)
        self.init(objects: objects.map { PredictedObject(shape: $0.shape, color: $0.color, size: $0.size) },
                  position: scene.position, relation: relation)
    }
}
