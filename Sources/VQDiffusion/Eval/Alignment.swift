import Foundation

/// How well images show what their prompts say, read by the evaluator: pure functions of the
/// evaluator's predictions and the parsed prompts, so they can be checked on hand-made sets.
public enum ShapesAlignment {
    /// The scored attributes, in table order.
    ///
    /// - objects: the number of objects matches the caption's (every image).
    /// - shape, colour: per stated object.
    /// - size: per stated object whose caption states a size (captions without sizes are not scored).
    /// - colour_and_shape: per stated object, both right — the figure "evaluator-predicted colour
    ///   and shape match the caption for X % of the objects stated".
    /// - position: per one-object caption; right only if the image also shows one object.
    /// - relation: per two-object caption; right only if the image also shows two objects.
    /// - caption: per image, every scored attribute above right.
    public static let attributeNames = ["objects", "shape", "colour", "size", "colour_and_shape",
                                        "position", "relation", "caption"]

    /// Scores of `predictions` against `captions`, pairwise.
    public static func score(predictions: [ShapesPrediction], captions: [ParsedCaption]) -> AttributeScores {
        scoreAndReadShapes(predictions: predictions, captions: captions).scores
    }

    /// The scores of `score(predictions:captions:)` and, from the same caption–object matching,
    /// the shape read for each stated object.
    public static func scoreAndReadShapes(predictions: [ShapesPrediction],
                                          captions: [ParsedCaption]) -> (scores: AttributeScores, shapeReadings: ShapeReadings) {
        precondition(predictions.count == captions.count,
                     "ShapesAlignment: \(predictions.count) predictions for \(captions.count) captions")
        var scores = AttributeScores(names: attributeNames), readings = ShapeReadings()
        for (p, c) in zip(predictions, captions) {
            score(p, against: c, into: &scores) { readings.add(stated: $0, read: $1) }
        }
        return (scores, readings)
    }

    /// Adds the scores of one image's `prediction` against its `caption`.
    ///
    /// The evaluator reads objects in spatial order, captions list them in their own order, so
    /// the caption's objects are first matched to the predicted ones: the assignment (one-to-one)
    /// that agrees on the most stated colours, shapes and sizes; when two assignments agree
    /// equally, the one under which the caption's relation holds. A stated object with no
    /// predicted object to match (the image shows fewer objects) has every attribute wrong.
    public static func score(_ prediction: ShapesPrediction, against caption: ParsedCaption,
                             into scores: inout AttributeScores) {
        score(prediction, against: caption, into: &scores) { _, _ in }
    }

    /// `score(_:against:into:)`, handing each stated shape and the object matched to it (nil: none) to `read`.
    private static func score(_ prediction: ShapesPrediction, against caption: ParsedCaption,
                              into scores: inout AttributeScores, read: (ShapeKind, PredictedObject?) -> Void) {
        let stated = caption.objects, seen = prediction.objects
        let (matched, impliedRelation) = match(stated: stated, caption: caption, prediction: prediction)
        var all = seen.count == stated.count
        scores.add("objects", correct: seen.count == stated.count)
        for (s, m) in zip(stated, matched) {
            let object = m.map { seen[$0] }
            read(s.shape, object)
            let shape = object?.shape == s.shape, colour = object?.color == s.color
            scores.add("shape", correct: shape)
            scores.add("colour", correct: colour)
            scores.add("colour_and_shape", correct: shape && colour)
            all = all && shape && colour
            if let size = s.size {
                let right = object?.size == size
                scores.add("size", correct: right)
                all = all && right
            }
        }
        if let position = caption.position {
            let right = seen.count == 1 && prediction.position == position
            scores.add("position", correct: right)
            all = all && right
        }
        if let relation = caption.relation {
            let right = seen.count == 2 && impliedRelation == relation
            scores.add("relation", correct: right)
            all = all && right
        }
        scores.add("caption", correct: all)
    }

    /// What `scoreObject` scores of one stated object.
    public static let objectAttributeNames = ["shape", "colour", "colour_and_shape", "size", "relation", "object"]

    /// Adds the scores of the stated object `k` (caption order) of `caption` as read in
    /// `prediction`, after the same caption–object matching as `score`: its shape, colour, both,
    /// its size (when the caption states one), for a pair the caption's relation (right only if
    /// the image shows two objects), and "object": all of these right. Returns "object".
    @discardableResult
    public static func scoreObject(_ prediction: ShapesPrediction, against caption: ParsedCaption, object k: Int,
                                   into scores: inout AttributeScores) -> Bool {
        precondition(caption.objects.indices.contains(k), "scoreObject: the caption states \(caption.objects.count) object(s), not \(k + 1)")
        let (matched, impliedRelation) = match(stated: caption.objects, caption: caption, prediction: prediction)
        let stated = caption.objects[k], object = matched[k].map { prediction.objects[$0] }
        let shape = object?.shape == stated.shape, colour = object?.color == stated.color
        scores.add("shape", correct: shape)
        scores.add("colour", correct: colour)
        scores.add("colour_and_shape", correct: shape && colour)
        var all = shape && colour
        if let size = stated.size {
            let right = object?.size == size
            scores.add("size", correct: right)
            all = all && right
        }
        if let relation = caption.relation {
            let right = prediction.objects.count == 2 && impliedRelation == relation
            scores.add("relation", correct: right)
            all = all && right
        }
        scores.add("object", correct: all)
        return all
    }

    /// For each stated object the index of its predicted object (or nil), and for two stated and
    /// two predicted objects the relation the prediction implies between the caption's objects.
    static func match(stated: [ParsedObject], caption: ParsedCaption,
                      prediction: ShapesPrediction) -> (matched: [Int?], relation: Relation?) {
        let seen = prediction.objects
        func agreement(_ s: ParsedObject, _ p: PredictedObject) -> Int {
            (s.color == p.color ? 1 : 0) + (s.shape == p.shape ? 1 : 0) + (s.size != nil && s.size == p.size ? 1 : 0)
        }
        switch (stated.count, seen.count) {
        case (2, 2):
            let direct = agreement(stated[0], seen[0]) + agreement(stated[1], seen[1])
            let swapped = agreement(stated[0], seen[1]) + agreement(stated[1], seen[0])
            let axis = prediction.relation ?? .leftOf
            let directRelation = axis
            let swappedRelation: Relation = axis == .leftOf ? .rightOf : .below
            let useDirect = direct > swapped || (direct == swapped && caption.relation != swappedRelation)
            return useDirect ? ([0, 1], directRelation) : ([1, 0], swappedRelation)
        case (2, 1):
            // One predicted object: it stands for the stated object it agrees with most (the first on a tie).
            let first = agreement(stated[0], seen[0]) >= agreement(stated[1], seen[0])
            return (first ? [0, nil] : [nil, 0], nil)
        case (1, _):
            guard !seen.isEmpty else { return ([nil], nil) }
            var best = 0
            for i in seen.indices where agreement(stated[0], seen[i]) > agreement(stated[0], seen[best]) { best = i }
            return ([best], nil)
        default:
            return (stated.map { _ in nil }, nil)
        }
    }
}

/// Fashion-MNIST alignment: the evaluator's class accuracy on images against the class their
/// prompts name (`FashionMNIST.classLabel(inCaption:)`).
public enum FashionAlignment {
    public static let attributeNames = ["class"]

    /// Scores `predictedClasses` against the class each caption names; captions that name no
    /// class (or several) are not scored.
    public static func score(predictedClasses: [Int], captions: [String]) -> AttributeScores {
        precondition(predictedClasses.count == captions.count,
                     "FashionAlignment: \(predictedClasses.count) predictions for \(captions.count) captions")
        var scores = AttributeScores(names: attributeNames)
        for (p, c) in zip(predictedClasses, captions) {
            guard let label = FashionMNIST.classLabel(inCaption: c) else { continue }
            scores.add("class", correct: p == label)
        }
        return scores
    }
}

/// Alignment of images with prompts for either evaluator task, from the evaluator's per-head
/// classes (as `Evaluator.evaluate` returns them). Shapes captions that do not follow the
/// templates, and Fashion-MNIST captions naming no single class, are not scored.
public func alignmentScores(task: EvaluatorTask, headClasses: [[Int]], captions: [String]) -> AttributeScores {
    alignment(task: task, headClasses: headClasses, captions: captions).scores
}

/// Alignment scores and, for Shapes, the shape read for each stated object (nil for Fashion-MNIST).
public typealias AlignmentReading = (scores: AttributeScores, shapeReadings: ShapeReadings?)

/// `alignmentScores` and, for Shapes, the shape read for each stated object (`ShapeReadings`;
/// nil for Fashion-MNIST), in one pass.
public func alignment(task: EvaluatorTask, headClasses: [[Int]], captions: [String]) -> AlignmentReading {
    switch task {
    case .fashion:
        return (FashionAlignment.score(predictedClasses: headClasses[0], captions: captions), nil)
    case .shapes:
        let predictions = ShapesTargets.predictions(fromHeadClasses: headClasses)
        precondition(predictions.count == captions.count,
                     "alignmentScores: \(predictions.count) predictions for \(captions.count) captions")
        var kept: [ShapesPrediction] = [], parsed: [ParsedCaption] = []
        for (p, c) in zip(predictions, captions) {
            if let c = ShapesCaption.parse(c) { kept.append(p); parsed.append(c) }
        }
        let (scores, readings) = ShapesAlignment.scoreAndReadShapes(predictions: kept, captions: parsed)
        return (scores, readings)
    }
}
