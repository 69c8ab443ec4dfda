import Engine
import Testing
@testable import VQDiffusion

@Suite struct BatchTests {
    let data = shapesSplit(.train, size: 16, count: 100)

    @Test func batchesHoldImagesInMinusOneToOneChannelsFirst() {
        let loader = BatchLoader(dataset: data, batchSize: 8, shuffle: true, generator: RandomGenerator(seed: 5))
        var epoch = loader.batches(epoch: 0)
        let batch = epoch.next()!
        #expect(batch.images.shape == [8, 3, 16, 16])
        #expect(batch.count == 8 && batch.captions.count == 8 && batch.attributes.count == 8)
        let values = batch.images.values
        #expect(values.allSatisfy { $0 >= -1 && $0 <= 1 })
        for (b, index) in batch.indices.enumerated() {
            let sample = data.sample(at: index)
            #expect(batch.captions[b] == sample.caption)
            #expect(batch.attributes[b] == sample.attributes)
            for c in 0..<3 {
                for (y, x) in [(0, 0), (5, 9), (15, 15)] {
                    let expected = Float(sample.image[x: x, y: y, channel: c]) / 127.5 - 1
                    #expect(abs(values[((b * 3 + c) * 16 + y) * 16 + x] - expected) < 1e-6)
                }
            }
        }
    }

    @Test func everyEpochVisitsEverySampleOnceInItsOwnOrder() {
        let loader = BatchLoader(dataset: data, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 5))
        #expect(loader.batchesPerEpoch == 4)
        let e0 = Array(loader.batches(epoch: 0)), e1 = Array(loader.batches(epoch: 1))
        #expect(e0.map(\.count) == [32, 32, 32, 4])
        let i0 = e0.flatMap(\.indices), i1 = e1.flatMap(\.indices)
        #expect(i0.sorted() == Array(0..<100) && i1.sorted() == Array(0..<100))
        #expect(i0 != i1, "epochs must be shuffled differently")
        #expect(i0 != Array(0..<100))
        // The same generator replays the same order; another seed gives another.
        let again = BatchLoader(dataset: data, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 5))
        #expect(again.order(epoch: 1) == i1)
        #expect(BatchLoader(dataset: data, batchSize: 32, generator: RandomGenerator(seed: 6)).order(epoch: 1) != i1)
        #expect(e0[1].images.values == again.batch(indices: e0[1].indices).images.values)
    }

    @Test func dropLastAndUnshuffledOrder() {
        let loader = BatchLoader(dataset: data, batchSize: 32, shuffle: false, dropLast: true, generator: RandomGenerator(seed: 0))
        let batches = Array(loader.batches(epoch: 3))
        #expect(loader.batchesPerEpoch == 3 && batches.count == 3)
        #expect(batches.flatMap(\.indices) == Array(0..<96))
    }

    @Test func streamCrossesEpochsAndResumes() {
        let loader = BatchLoader(dataset: data, batchSize: 40, dropLast: true, generator: RandomGenerator(seed: 9))
        var stream = loader.stream()
        var seen: [[Int]] = []
        for _ in 0..<5 { seen.append(stream.next()!.indices) }
        #expect(stream.epoch == 2 && stream.step == 1)
        #expect(seen[0] + seen[1] == Array(loader.order(epoch: 0).prefix(80)))
        #expect(seen[2] + seen[3] == Array(loader.order(epoch: 1).prefix(80)))
        var resumed = loader.stream(epoch: 1, step: 1)
        #expect(resumed.next()!.indices == seen[3])
        #expect(resumed.next()!.indices == seen[4])
    }

    @Test func greyDatasetsBatchWithOneChannel() {
        let grey = InMemoryCaptionedDataset(size: 4, channels: 1, count: 3)
        let loader = BatchLoader(dataset: grey, batchSize: 3, shuffle: false, generator: RandomGenerator(seed: 0))
        let batch = loader.batch(indices: [2, 0])
        #expect(batch.images.shape == [2, 1, 4, 4])
        #expect(abs(batch.images.values[0] - (Float(grey.sample(at: 2).image.pixels[0]) / 127.5 - 1)) < 1e-6)
        #expect(batch.attributes == [nil, nil] && batch.captions == ["image 2", "image 0"])
    }
}
