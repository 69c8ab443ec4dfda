import Foundation
import Testing
@testable import VQDiffusion

@Suite struct AlignmentTests {
    func object(_ shape: ShapeKind, _ color: ShapeColor, _ size: SizeClass = .small) -> PredictedObject {
        PredictedObject(shape: shape, color: color, size: size)
    }

    func parse(_ caption: String) -> ParsedCaption { ShapesCaption.parse(caption)! }

    @Test func perfectReadingScoresEverything() {
        let p = ShapesPrediction(objects: [object(.circle, .red, .large)], position: .topLeft, relation: nil)
        let s = ShapesAlignment.score(predictions: [p], captions: [parse("a large red circle in the top left corner")])
        for name in ["objects", "shape", "colour", "size", "colour_and_shape", "position", "caption"] {
            #expect(s[name] == AttributeScore(name: name, correct: 1, total: 1))
        }
        #expect(s["relation"]?.total == 0)
    }

    @Test func unstatedSizesAreNotScored() {
        // The image shows a large circle; the caption says nothing of size: the caption still holds.
        let p = ShapesPrediction(objects: [object(.circle, .red, .large)], position: .center, relation: nil)
        let s = ShapesAlignment.score(predictions: [p, p], captions: [parse("a red circle in the center"),
                                                                       parse("a small red circle in the center")])
        #expect(s["size"] == AttributeScore(name: "size", correct: 0, total: 1))
        #expect(s["caption"] == AttributeScore(name: "caption", correct: 1, total: 2))
        #expect(s["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 2, total: 2))
    }

    @Test func captionOrderIsMatchedToSpatialOrder() {
        // The image: green square on the left, blue triangle on the right.
        let p = ShapesPrediction(objects: [object(.square, .green), object(.triangle, .blue)], position: nil, relation: .leftOf)
        let captions = ["a green square to the left of a blue triangle", "a blue triangle to the right of a green square",
                        "a blue triangle to the left of a green square", "a green square above a blue triangle"]
        let s = ShapesAlignment.score(predictions: Array(repeating: p, count: 4), captions: captions.map(parse))
        #expect(s["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 8, total: 8))
        #expect(s["relation"] == AttributeScore(name: "relation", correct: 2, total: 4))
        #expect(s["caption"] == AttributeScore(name: "caption", correct: 2, total: 4))
        #expect(s["size"]?.total == 0)
    }

    @Test func perObjectColourAndShapeFigure() {
        // Of 2 + 2 + 1 = 5 stated objects, 3 are shown with the right colour and shape.
        let pair = ShapesPrediction(objects: [object(.circle, .red), object(.cross, .white)], position: nil, relation: .above)
        let wrongPair = ShapesPrediction(objects: [object(.circle, .green), object(.diamond, .white)], position: nil, relation: .above)
        let single = ShapesPrediction(objects: [object(.square, .cyan)], position: .left, relation: nil)
        let s = ShapesAlignment.score(predictions: [pair, wrongPair, single],
                                      captions: [parse("a red circle above a white cross"),
                                                 parse("a red circle above a white cross"),
                                                 parse("a cyan square on the right")])
        #expect(s["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 3, total: 5))
        #expect(s["colour"] == AttributeScore(name: "colour", correct: 4, total: 5))
        #expect(s["shape"] == AttributeScore(name: "shape", correct: 4, total: 5))
        #expect(s["position"] == AttributeScore(name: "position", correct: 0, total: 1))
        #expect(s["caption"] == AttributeScore(name: "caption", correct: 1, total: 3))
    }

    @Test func oneStatedObjectIsScoredAlone() {
        // "a small red circle to the left of a blue square": the image shows a large red circle
        // left of a green square. Object 0 (the circle) is right but for its size; object 1 has
        // the wrong colour; the relation holds for both.
        let p = ShapesPrediction(objects: [object(.circle, .red, .large), object(.square, .green)], position: nil, relation: .leftOf)
        let caption = parse("a small red circle to the left of a small blue square")
        var first = AttributeScores(names: ShapesAlignment.objectAttributeNames)
        #expect(!ShapesAlignment.scoreObject(p, against: caption, object: 0, into: &first))
        #expect(first["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 1, total: 1))
        #expect(first["size"] == AttributeScore(name: "size", correct: 0, total: 1))
        #expect(first["relation"] == AttributeScore(name: "relation", correct: 1, total: 1))
        var second = AttributeScores(names: ShapesAlignment.objectAttributeNames)
        #expect(!ShapesAlignment.scoreObject(p, against: caption, object: 1, into: &second))
        #expect(second["colour"] == AttributeScore(name: "colour", correct: 0, total: 1))
        #expect(second["shape"] == AttributeScore(name: "shape", correct: 1, total: 1))
        // All right, and the relation read the other way round makes the object wrong.
        let right = ShapesPrediction(objects: [object(.circle, .red), object(.square, .blue)], position: nil, relation: .leftOf)
        var all = AttributeScores(names: ShapesAlignment.objectAttributeNames)
        #expect(ShapesAlignment.scoreObject(right, against: caption, object: 0, into: &all))
        let swapped = ShapesPrediction(objects: [object(.square, .blue), object(.circle, .red)], position: nil, relation: .leftOf)
        #expect(!ShapesAlignment.scoreObject(swapped, against: caption, object: 0, into: &all))
        #expect(all["object"] == AttributeScore(name: "object", correct: 1, total: 2))
        #expect(all["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 2, total: 2))
        // One object shown where two are stated: the relation cannot hold.
        let one = ShapesPrediction(objects: [object(.circle, .red)], position: .left, relation: nil)
        var lone = AttributeScores(names: ShapesAlignment.objectAttributeNames)
        #expect(!ShapesAlignment.scoreObject(one, against: caption, object: 0, into: &lone))
        #expect(lone["relation"] == AttributeScore(name: "relation", correct: 0, total: 1))
    }

    @Test func wrongObjectCountFailsTheCaption() {
        // Two objects asked for, one shown: the missing object's attributes and the relation are wrong.
        let single = ShapesPrediction(objects: [object(.triangle, .blue)], position: .center, relation: nil)
        let s = ShapesAlignment.score(predictions: [single], captions: [parse("a red circle to the left of a blue triangle")])
        #expect(s["objects"]?.correct == 0)
        #expect(s["colour_and_shape"] == AttributeScore(name: "colour_and_shape", correct: 1, total: 2))
        #expect(s["relation"] == AttributeScore(name: "relation", correct: 0, total: 1))
        // One object asked for, two shown: the stated one is found, but position and the count fail.
        let pair = ShapesPrediction(objects: [object(.circle, .red), object(.triangle, .blue)], position: nil, relation: .leftOf)
        let t = ShapesAlignment.score(predictions: [pair], captions: [parse("a blue triangle at the top")])
        #expect(t["colour_and_shape"]?.correct == 1 && t["position"]?.correct == 0 && t["caption"]?.correct == 0)
    }

    @Test func shapeReadingsCountWhatWasReadForEachStatedObject() {
        // Stated: a red circle and a white cross (twice each) and a cyan square; read: circle and
        // cross right, then the circle as a diamond and the cross missing, then a large square.
        let pair = ShapesPrediction(objects: [object(.circle, .red), object(.cross, .white, .large)], position: nil, relation: .above)
        let wrong = ShapesPrediction(objects: [object(.diamond, .red)], position: .top, relation: nil)
        let single = ShapesPrediction(objects: [object(.square, .cyan, .large)], position: .left, relation: nil)
        let captions = ["a red circle above a white cross", "a red circle above a white cross", "a cyan square on the left"]
        let (s, r) = ShapesAlignment.scoreAndReadShapes(predictions: [pair, wrong, single], captions: captions.map(parse))
        #expect(r.accuracy(of: .circle) == AttributeScore(name: "circle", correct: 1, total: 2))
        #expect(r.accuracy(of: .cross) == AttributeScore(name: "cross", correct: 1, total: 2))
        #expect(r.accuracy(of: .square) == AttributeScore(name: "square", correct: 1, total: 1))
        #expect(r.accuracy(of: .triangle).total == 0)
        #expect(r.counts[ShapeKind.circle.rawValue][ShapeKind.diamond.rawValue] == 1)
        #expect(r.counts[ShapeKind.cross.rawValue][ShapeReadings.missingColumn] == 1)
        #expect(r.bySize["small"] == AttributeScore(name: "small", correct: 1, total: 2))
        #expect(r.bySize["large"] == AttributeScore(name: "large", correct: 2, total: 2))
        // The confusion rows add up to the stated objects, and agree with the alignment's shape figure.
        #expect(r.counts.joined().reduce(0, +) == s["shape"]!.total)
        #expect(ShapeKind.allCases.map { r.accuracy(of: $0).correct }.reduce(0, +) == s["shape"]!.correct)
        #expect(r.byShape["circle"] == r.accuracy(of: .circle))
        #expect(s == ShapesAlignment.score(predictions: [pair, wrong, single], captions: captions.map(parse)))
        #expect(r.table().contains("50.0"))
    }

    @Test func realScenesReadExactlyAlignPerfectly() {
        let data = evaluationTestShapes(.test, count: 300)
        let scenes = (0..<data.count).map { data.scene(at: $0) }
        let s = ShapesAlignment.score(predictions: scenes.map(ShapesPrediction.init(scene:)),
                                      captions: scenes.map { parse($0.caption) })
        for score in s.scores where score.total > 0 { #expect(score.correct == score.total, "\(score.name)") }
        #expect(s["caption"]?.total == 300)
        #expect(s["size"]!.total < s["shape"]!.total)
    }

    @Test func fashionClassAccuracySkipsCaptionsWithoutAClass() {
        let s = FashionAlignment.score(predictedClasses: [7, 7, 1, 3],
                                       captions: ["a photo of a sneaker", "a pair of trousers", "a pair of trousers", "a photo"])
        #expect(s["class"] == AttributeScore(name: "class", correct: 2, total: 3))
        let viaHeads = alignmentScores(task: .fashion, headClasses: [[7, 7, 1, 3]],
                                       captions: ["a photo of a sneaker", "a pair of trousers", "a pair of trousers", "a photo"])
        #expect(viaHeads == s)
    }
}
