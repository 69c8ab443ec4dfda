import Testing
@testable import VQDiffusion

@Suite struct ShapesCaptionTests {
    @Test func everyCaptionAgreesWithItsAttributes() {
        for split in DatasetSplit.allCases {
            let data = shapesSplit(split, count: 1500)
            for i in 0..<data.count {
                let s = data.scene(at: i)
                guard let parsed = ShapesCaption.parse(s.caption) else {
                    Issue.record("\(split) \(i): caption does not parse: \(s.caption)")
                    continue
                }
                #expect(parsed.isSatisfied(by: s), "\(split) \(i): \(s.caption)")
                #expect(parsed.template == s.template, "\(split) \(i): \(s.caption)")
                #expect(parsed.objects.count == s.objects.count)
                for (p, o) in zip(parsed.objects, s.objects) {
                    #expect(p.size == (s.template.statesSizes ? o.size : nil))
                }
            }
        }
    }

    @Test func captionsFollowTheTemplatesWordForWord() {
        let o1 = SceneObject(shape: .triangle, color: .green, size: .small, centerX: 5, centerY: 5, extent: 7,
                             red: 40, green: 190, blue: 60)
        let o2 = SceneObject(shape: .cross, color: .white, size: .large, centerX: 20, centerY: 5, extent: 13,
                             red: 235, green: 235, blue: 235)
        #expect(ShapesCaption.make(objects: [o1], position: .topLeft, relation: nil, template: .sizedObject)
                == "a small green triangle in the top left corner")
        #expect(ShapesCaption.make(objects: [o1], position: .center, relation: nil, template: .unsizedObject)
                == "a green triangle in the center")
        #expect(ShapesCaption.make(objects: [o1], position: .bottom, relation: nil, template: .thereIs)
                == "there is a small green triangle at the bottom")
        #expect(ShapesCaption.make(objects: [o1, o2], position: nil, relation: .leftOf, template: .sizedPair)
                == "a small green triangle to the left of a large white cross")
        #expect(ShapesCaption.make(objects: [o2, o1], position: nil, relation: .below, template: .unsizedPair)
                == "a white cross below a green triangle")
    }

    @Test func parserReadsPromptsAndRejectsOthers() {
        let p = ShapesCaption.parse("  A Large Blue Diamond to the right of a small red circle. ")
        #expect(p == ParsedCaption(objects: [ParsedObject(color: .blue, shape: .diamond, size: .large),
                                             ParsedObject(color: .red, shape: .circle, size: .small)],
                                   position: nil, relation: .rightOf, template: .sizedPair))
        let q = ShapesCaption.parse("an orange square on the right")
        #expect(q == ParsedCaption(objects: [ParsedObject(color: .orange, shape: .square, size: nil)],
                                   position: .right, relation: nil, template: .unsizedObject))
        #expect(ShapesCaption.parse("there is a large cyan cross in the bottom right corner")?.position == .bottomRight)
        #expect(ShapesCaption.parse("a yellow triangle above a magenta diamond")?.relation == .above)
        for bad in ["", "a purple circle in the center", "a red circle", "a red circle in the middle",
                    "a small red circle above a blue square",  // sizes for one object only
                    "there is a red circle in the center",     // "there is" needs a size
                    "a red circle in the center please", "a red circle left of a blue square",
                    "a red circle above"] {
            #expect(ShapesCaption.parse(bad) == nil, "should not parse: \(bad)")
        }
    }

    @Test func parsedCaptionChecksScenes() {
        let data = shapesSplit(.train, count: 50)
        let scenes = (0..<50).map { data.scene(at: $0) }
        // A caption is satisfied by its own scene and, with different objects, not by others.
        let parsed = ShapesCaption.parse(scenes[0].caption)!
        for s in scenes.dropFirst() where s.objects.map(\.color) != scenes[0].objects.map(\.color)
            || s.objects.map(\.shape) != scenes[0].objects.map(\.shape) {
            #expect(!parsed.isSatisfied(by: s))
        }
    }
}
