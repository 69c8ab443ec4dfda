import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// Expects `count` of `n` to be within four standard deviations (plus a little) of probability `p`.
func expectDatasetFrequency(_ count: Int, of n: Int, near p: Double, _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    let f = Double(count) / Double(n)
    let tolerance = 4 * (p * (1 - p) / Double(n)).squareRoot() + 0.002
    #expect(abs(f - p) <= tolerance, "\(what): frequency \(f) (\(count)/\(n)), expected \(p) ± \(tolerance)",
            sourceLocation: sourceLocation)
}

func shapesSplit(_ split: DatasetSplit, size: Int = 32, seed: UInt64 = 0, count: Int = 4000) -> ShapesDataset {
    try! ShapesDataset(ShapesConfiguration(imageSize: size, seed: seed, split: split, count: count))
}

@Suite struct ShapesTests {
    @Test func samplesAreAPureFunctionOfSeedSplitAndIndex() {
        let a = shapesSplit(.train, seed: 7), b = shapesSplit(.train, seed: 7)
        for i in [0, 1, 17, 3999] {
            let x = a.shapesSample(at: i), y = b.shapesSample(at: i)
            #expect(x == y)
            #expect(x.caption == y.caption && x.image.pixels == y.image.pixels)
            #expect(a.scene(at: i) == x.scene, "scene(at:) must agree with the rendered sample")
        }
        #expect(a.shapesSample(at: 0).image.pixels != a.shapesSample(at: 1).image.pixels)
        #expect(a.shapesSample(at: 0).image.pixels != shapesSplit(.train, seed: 8).shapesSample(at: 0).image.pixels)
        #expect(a.shapesSample(at: 0).image.pixels != shapesSplit(.val, seed: 7).shapesSample(at: 0).image.pixels)
    }

    @Test func sampleFollowsTheDocumentedGenerator() {
        // The scene of (seed, split, index) is drawn from RandomGenerator(seed:).derived(key, index).
        var rng = RandomGenerator(seed: 3).derived(DatasetSplit.test.streamKey, 11)
        let scene = ShapesLayout.scene(size: 32, novel: false, using: &rng)
        #expect(shapesSplit(.test, seed: 3).scene(at: 11) == scene)
    }

    @Test func referenceSamplesAreReproduced() throws {
        // Pinned values: the scene uses only integer and exactly rounded float arithmetic; the pixel
        // sum gets a small tolerance for last-bit differences of cos/exp/log between C libraries.
        let train = shapesSplit(.train, seed: 2024, count: 10).shapesSample(at: 0)
        #expect(train.caption == "a small magenta cross in the bottom right corner")
        #expect(train.objects[0].centerX == 24.582424 && train.objects[0].centerY == 22.441406
                && train.objects[0].extent == 8.728255)
        #expect(abs(train.image.pixels.reduce(0) { $0 + Int($1) } - 111_294) <= 3)
        let novel = shapesSplit(.novel, seed: 2024, count: 10).shapesSample(at: 5)
        #expect(novel.caption == "there is a small white circle at the top")
        #expect(novel.objects[0].centerX == 20.383896 && novel.objects[0].extent == 7.1056013)
        #expect(abs(novel.image.pixels.reduce(0) { $0 + Int($1) } - 151_257) <= 3)
    }

    @Test func splitsComeFromDisjointStreams() {
        let keys = DatasetSplit.allCases.map(\.streamKey)
        #expect(Set(keys).count == keys.count)
        let captions = DatasetSplit.allCases.map { split in (0..<50).map { shapesSplit(split).scene(at: $0).caption } }
        for i in 0..<captions.count {
            for j in (i + 1)..<captions.count { #expect(captions[i] != captions[j]) }
        }
    }

    @Test func attributeFrequenciesFollowTheSpecification() {
        let data = shapesSplit(.train)
        let n = data.count
        var pairs = 0, singles = 0, objects = 0
        var shapeCounts = [Int](repeating: 0, count: 5), colorCounts = [Int](repeating: 0, count: 8)
        var singleSmall = 0, positionCounts = [Int](repeating: 0, count: 9), relationCounts = [Int](repeating: 0, count: 4)
        var templateCounts = [Int](repeating: 0, count: 5)
        for i in 0..<n {
            let s = data.scene(at: i)
            if s.objects.count == 2 { pairs += 1 } else { singles += 1 }
            for o in s.objects {
                objects += 1
                shapeCounts[o.shape.rawValue] += 1
                colorCounts[o.color.rawValue] += 1
            }
            if let p = s.position {
                positionCounts[p.rawValue] += 1
                if s.objects[0].size == .small { singleSmall += 1 }
            }
            if let r = s.relation { relationCounts[r.rawValue] += 1 }
            templateCounts[s.template.rawValue] += 1
        }
        expectDatasetFrequency(pairs, of: n, near: 0.5, "two-object scenes")
        // Every shape has exactly one held-out colour, so shapes stay uniform over the 35 seen pairs;
        // red, green and blue have five seen shapes, the other colours four.
        for k in ShapeKind.allCases { expectDatasetFrequency(shapeCounts[k.rawValue], of: objects, near: 0.2, "shape \(k)") }
        for c in ShapeColor.allCases {
            let seen = ShapeKind.allCases.filter { !ShapesScene.isHeldOut(c, $0) }.count
            expectDatasetFrequency(colorCounts[c.rawValue], of: objects, near: Double(seen) / 35, "colour \(c)")
        }
        expectDatasetFrequency(singleSmall, of: singles, near: 0.5, "small single objects")
        for p in GridPosition.allCases { expectDatasetFrequency(positionCounts[p.rawValue], of: singles, near: 1.0 / 9, "position \(p)") }
        for r in Relation.allCases { expectDatasetFrequency(relationCounts[r.rawValue], of: pairs, near: 0.25, "relation \(r)") }
        for t in ShapesTemplate.singleObject { expectDatasetFrequency(templateCounts[t.rawValue], of: singles, near: 1.0 / 3, "template \(t)") }
        for t in ShapesTemplate.pair { expectDatasetFrequency(templateCounts[t.rawValue], of: pairs, near: 0.5, "template \(t)") }
    }

    @Test func heldOutPairsOccurOnlyInNovel() {
        for split in [DatasetSplit.train, .val, .test] {
            let data = shapesSplit(split, count: 3000)
            for i in 0..<data.count {
                let s = data.scene(at: i)
                #expect(!s.containsHeldOutPair, "\(split) sample \(i): \(s.caption)")
            }
        }
        let novel = shapesSplit(.novel, count: 3000)
        var heldOutSingles = [Int](repeating: 0, count: ShapesScene.heldOutPairs.count), singles = 0, pairs = 0
        for i in 0..<novel.count {
            let s = novel.scene(at: i)
            #expect(s.containsHeldOutPair, "novel sample \(i): \(s.caption)")
            if s.objects.count == 1 {
                singles += 1
                let k = ShapesScene.heldOutPairs.firstIndex { $0.color == s.objects[0].color && $0.shape == s.objects[0].shape }!
                heldOutSingles[k] += 1
            } else {
                pairs += 1
            }
        }
        expectDatasetFrequency(pairs, of: novel.count, near: 0.5, "novel two-object scenes")
        for k in heldOutSingles.indices { expectDatasetFrequency(heldOutSingles[k], of: singles, near: 0.2, "novel single pair \(k)") }
    }

    @Test func objectsRespectMarginsGridAndRelations() {
        for size in [16, 32, 64] {
            let S = Float(size)
            for split in DatasetSplit.allCases {
                let data = shapesSplit(split, size: size, count: 1500)
                for i in 0..<data.count {
                    let s = data.scene(at: i)
                    for o in s.objects {
                        let f = o.size.extentFraction
                        #expect(o.extent >= f.lowerBound * S - 1e-4 && o.extent <= f.upperBound * S + 1e-4)
                        #expect(o.minX >= 1 - 1e-4 && o.minY >= 1 - 1e-4 && o.maxX <= S - 1 + 1e-4 && o.maxY <= S - 1 + 1e-4,
                                "S=\(size) \(split) \(i): object outside the 1-pixel margin: \(o)")
                    }
                    if let p = s.position {
                        let cell = S / 3, o = s.objects[0]
                        #expect(o.centerX >= Float(p.column) * cell - 1e-4 && o.centerX <= Float(p.column + 1) * cell + 1e-4)
                        #expect(o.centerY >= Float(p.row) * cell - 1e-4 && o.centerY <= Float(p.row + 1) * cell + 1e-4)
                    }
                    if let r = s.relation {
                        let (a, b) = (s.objects[0], s.objects[1])
                        #expect(a.color != b.color || a.shape != b.shape, "a pair repeats its colour–shape pair")
                        let ok: Bool
                        switch r {
                        case .leftOf: ok = a.maxX + 1 <= b.minX + 1e-3 && abs(a.centerY - b.centerY) <= 0.15 * S + 1e-3
                        case .rightOf: ok = b.maxX + 1 <= a.minX + 1e-3 && abs(a.centerY - b.centerY) <= 0.15 * S + 1e-3
                        case .above: ok = a.maxY + 1 <= b.minY + 1e-3 && abs(a.centerX - b.centerX) <= 0.15 * S + 1e-3
                        case .below: ok = b.maxY + 1 <= a.minY + 1e-3 && abs(a.centerX - b.centerX) <= 0.15 * S + 1e-3
                        }
                        #expect(ok, "S=\(size) \(split) \(i): \(s.caption) violates its layout: \(a) \(b)")
                    }
                }
            }
        }
    }

    @Test func objectColoursStayWithinTheJitter() {
        let data = shapesSplit(.novel, count: 500)
        for i in 0..<data.count {
            for o in data.scene(at: i).objects {
                let base = o.color.rgb
                #expect(abs(o.red - base.r) <= 12 && abs(o.green - base.g) <= 12 && abs(o.blue - base.b) <= 12)
            }
        }
    }

    @Test(arguments: [16, 24, 32, 64, 128])
    func everySupportedSizeGenerates(size: Int) throws {
        let data = try ShapesDataset(ShapesConfiguration(imageSize: size, split: .train, count: 40))
        #expect(data.imageSize == size && data.channels == 3)
        for i in 0..<data.count {
            let s = data.sample(at: i)
            #expect(s.image.width == size && s.image.height == size && s.image.channels == 3)
            #expect(ShapesCaption.parse(s.caption) != nil)
        }
    }

    @Test func unsupportedSizesAreRejected() {
        for size in [8, 20, 30, 136, 0] {
            #expect(throws: DatasetError.self) { try ShapesDataset(ShapesConfiguration(imageSize: size)) }
        }
    }
}
