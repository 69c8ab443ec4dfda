import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// Editing: the region → token mask, the diffusion walk with kept tokens held, and VQ-AR's kept prefix.
@Suite struct EditTests {
    /// With an oracle p(x0) the edit returns the original tokens in the region; with a predictor
    /// that always proposes other codes, the kept tokens still never change at any step.
    @Test func keptTokensHoldAndAnOracleRedrawsTheOriginals() throws {
        let (K, T, B, N) = (12, 100, 2, 16)
        var rng = RandomGenerator(seed: 3)
        let x0: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        let kept = (0..<(B * N)).map { _ in rng.uniformDouble() < 0.5 }
        let edit = TokenEdit(tokens: x0, kept: kept)
        let others = x0.map { ($0 + 1) % Int32(K) }
        for config in [DiffusionConfiguration.paper(classes: K, steps: T), .referenceMaskOnly(classes: K, steps: T)] {
            let schedule = try DiffusionSchedule(config)
            for order in SamplingOrder.allCases {
                for (truth, name) in [(x0, "oracle"), (others, "other codes")] {
                    var g = RandomGenerator(seed: 5)
                    var keptChanged = 0
                    let out = DiffusionSampling.run(batch: B, tokens: N, schedule: schedule,
                                                    options: DiffusionSamplingOptions(steps: 25, order: order), keep: edit, using: &g,
                                                    observe: { x, _ in keptChanged += zip(x, x0).enumerated().filter { kept[$0.offset] && $0.element.0 != $0.element.1 }.count }) { _, _ in
                        DiffusionSamplingTests.oracle(truth, batch: B, classes: K)
                    }
                    #expect(keptChanged == 0, "\(name), \(order): kept tokens changed \(keptChanged) times")
                    for i in 0..<(B * N) {
                        #expect(out[i] == (kept[i] ? x0[i] : truth[i]), "\(name), \(order): token \(i)")
                    }
                }
            }
        }
    }

    /// Boxes on 32-pixel images with 4- and 8-pixel patches, with and without a margin.
    @Test func boxesReachTheTokensWhosePatchesTheyMeet() throws {
        func marked(_ region: EditRegion, _ f: Int, _ margin: Int) -> [Int] {
            region.tokens(downsampling: f, margin: margin).enumerated().filter(\.element).map(\.offset)
        }
        let corner = try EditRegion(box: 0, 0, 8, 8, width: 32, height: 32)
        #expect(marked(corner, 4, 0) == [0, 1, 8, 9])
        #expect(marked(corner, 4, 2) == [0, 1, 2, 8, 9, 10, 16, 17, 18])
        #expect(marked(corner, 8, 0) == [0])
        #expect(marked(corner, 8, 4) == [0, 1, 4, 5])
        let inner = try EditRegion(box: 9, 9, 11, 11, width: 32, height: 32)   // inside the patch (2, 2) of 4 pixels
        #expect(marked(inner, 4, 0) == [18])
        #expect(marked(inner, 4, 1) == [18])
        #expect(marked(inner, 4, 2) == [9, 10, 11, 17, 18, 19, 25, 26, 27])
        #expect(EditRegion.defaultMargin(downsampling: 4) == 2)
        // Bad regions say what is wrong.
        #expect(throws: EditRegionError.self) { try EditRegion(box: 4, 4, 4, 9, width: 32, height: 32) }
        #expect(throws: EditRegionError.self) { try EditRegion(box: 20, 0, 40, 8, width: 32, height: 32) }
        #expect(throws: EditRegionError.self) { try EditRegion(box: 0, 0, 32, 32, width: 32, height: 32) }
        #expect(throws: EditRegionError.self) { try EditRegion(pixels: [Bool](repeating: false, count: 16), width: 4, height: 4) }
    }

    @Test func inpaintingRegionsOnShapesScenes() throws {
        func object(_ x: Float, _ y: Float, _ extent: Float) -> SceneObject {
            SceneObject(shape: .circle, color: .red, size: .small, centerX: x, centerY: y, extent: extent, red: 0, green: 0, blue: 0)
        }
        // The caption names the lower-right object first; raster order reaches the upper one first.
        let scene = ShapesScene(objects: [object(24, 20, 8), object(8.5, 6, 7)], position: nil, relation: .below,
                                template: .unsizedPair, caption: "a red circle below a red circle")
        #expect(InpaintMask.firstObject.object(in: scene) == 1)
        #expect(InpaintMask.topHalf.object(in: scene) == nil)
        let box = try InpaintMask.firstObject.region(scene: scene, size: 32)
        #expect(box == (try EditRegion(box: 5, 2, 12, 10, width: 32, height: 32)))
        // Same top row: the left object first.
        let row = ShapesScene(objects: [object(24, 8, 8), object(8, 8, 8)], position: nil, relation: .rightOf,
                              template: .unsizedPair, caption: "a red circle to the right of a red circle")
        #expect(InpaintMask.firstObject.object(in: row) == 1)
        // The fixed regions, in tokens of 4 pixels (margin 0): the top four rows, the centre 4×4.
        let top = try InpaintMask.topHalf.region(scene: scene, size: 32).tokens(downsampling: 4, margin: 0)
        #expect(top == (0..<64).map { $0 < 32 })
        let centre = try InpaintMask.centre.region(scene: scene, size: 32).tokens(downsampling: 4, margin: 0)
        #expect(centre == (0..<64).map { (2..<6).contains($0 / 8) && (2..<6).contains($0 % 8) })
        // An object at the canvas edge is clipped to the image.
        let edge = ShapesScene(objects: [object(2, 2, 6)], position: .topLeft, relation: nil, template: .unsizedObject, caption: "")
        #expect(try InpaintMask.firstObject.region(scene: edge, size: 32) == (try EditRegion(box: 0, 0, 5, 5, width: 32, height: 32)))
    }

    /// VQ-AR keeps exactly the prefix it is given and draws the rest: greedy decoding from a
    /// greedy grid's own prefix gives that grid back, with and without guidance or the cache.
    @Test(arguments: [(1.0, true), (2.0, true), (1.0, false)])
    func arKeepsExactlyThePrefix(guidance: Double, cached: Bool) throws {
        var rng = RandomGenerator(seed: 17)
        let model = ARTransformer(tinyARConfiguration(), using: &rng)
        let decoder = ARDecoder(model: model)
        let text = try WordVectorTextEncoder().encode(["a red circle", "two blue squares on the left"])
        let N = model.configuration.tokens
        let greedy = ARSamplingOptions(temperature: 0, useCache: cached, guidance: guidance)
        var g = RandomGenerator(seed: 1)
        let whole = decoder.decode(text: text, options: greedy, using: &g)
        let random: [Int32] = (0..<(2 * N)).map { _ in Int32(rng.int(below: model.configuration.classes)) }
        // The same prefix for both grids, and a different one per grid.
        for lengths in [[0, 0], [1, 1], [7, 7], [N, N], [0, 9], [N, 3]] {
            var h = RandomGenerator(seed: 2)
            #expect(decoder.decode(text: text, options: greedy, prefix: ARPrefix(tokens: whole, lengths: lengths), using: &h) == whole,
                    "lengths \(lengths)")
            var d = RandomGenerator(seed: 3)
            let drawn = decoder.decode(text: text, options: ARSamplingOptions(useCache: cached, guidance: guidance),
                                       prefix: ARPrefix(tokens: random, lengths: lengths), using: &d)
            for b in 0..<2 {
                let kept = (b * N)..<(b * N + lengths[b])
                #expect(Array(drawn[kept]) == Array(random[kept]), "grid \(b), lengths \(lengths)")
            }
        }
        // The kept prefix of each grid of an edit is what comes before its first redrawn token.
        let edit = TokenEdit(tokens: [Int32](repeating: 0, count: 2 * 4), kept: [true, true, false, true, false, true, true, true])
        #expect(CheckpointGenerator.keptPrefixes(edit, tokensPerGrid: 4) == [2, 0])
    }

    /// `vqd edit` on the committed models: the diffusion edit keeps every kept token, the AR edit
    /// says what it keeps, and a box outside the image is refused before anything is written.
    @Test func editCommandKeepsTokensAndRefusesBadRegions() throws {
        let folder = TemporaryFolder()
        func vqd(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try ChildProcess(try builtExecutable("vqd"), ["edit", "--dataset", "shapes", "--split", "test", "--index", "3",
                                                          "--count", "2", "--steps", "3"] + arguments, in: folder.url).finish()
        }
        let diffusion = try vqd(["--model", "results/models/diffusion-shapes-32-tuned.safetensors", "--box", "0,0,16,16", "--out", "d.png"])
        #expect(diffusion.status == 0 && diffusion.output.contains("kept tokens unchanged: 100.0 %"), "\(diffusion.output)")
        #expect(FileManager.default.fileExists(atPath: folder.file("d.png").path))
        let ar = try vqd(["--model", "results/models/ar-shapes-32-tuned.safetensors", "--box", "16,16,32,32", "--out", "a.png"])
        #expect(ar.status == 0 && ar.output.contains("VQ-AR decodes in raster order: it keeps the"), "\(ar.output)")
        let outside = try vqd(["--model", "results/models/diffusion-shapes-32-tuned.safetensors", "--box", "0,0,40,16", "--out", "x.png"])
        #expect(outside.status != 0 && outside.output.contains("leaves the 32×32 image"), "\(outside.output)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("x.png").path))
    }
}
