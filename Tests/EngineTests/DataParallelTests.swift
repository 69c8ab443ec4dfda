import Foundation
import Testing
@testable import Engine

/// Two layers with a nonlinearity between them, so the gradient of a shard depends on its rows.
private final class TwoLayers: Module {
    let first: Linear, second: Linear
    init(using rng: inout RandomGenerator) {
        first = Linear(5, 7, using: &rng)
        second = Linear(7, 3, using: &rng)
    }
    func callAsFunction(_ x: Tensor) -> Tensor { second(first(x).tanh()) }
    func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        first.visitParameters(prefix: childPrefix(prefix, "first"), visit)
        second.visitParameters(prefix: childPrefix(prefix, "second"), visit)
    }
}

@Suite struct DataParallelTests {
    /// The mean squared output over `rows` of a fixed (9, 5) input.
    private static func loss(_ model: TwoLayers, rows: Range<Int>, input: [Float]) -> Tensor {
        let x = Tensor(shape: [rows.count, 5], values: Array(input[(rows.lowerBound * 5)..<(rows.upperBound * 5)]))
        let y = model(x)
        return (y * y).mean()
    }

    @Test(arguments: [2, 3, 4])
    func shardGradientsCombineIntoTheWholeBatchGradient(shards: Int) throws {
        var rng = RandomGenerator(seed: 21)
        let input = (0..<45).map { _ in rng.normal() }
        rng = RandomGenerator(seed: 5)
        let whole = TwoLayers(using: &rng)
        Self.loss(whole, rows: 0..<9, input: input).backward()

        rng = RandomGenerator(seed: 5)
        let master = TwoLayers(using: &rng)
        var other = RandomGenerator(seed: 99)   // replicas start elsewhere: the step copies the weights
        let parallel = DataParallel(master: master, replicas: (1..<shards).map { _ in TwoLayers(using: &other) })
        var seen: [Range<Int>] = []
        let losses = parallel.step(rows: 9) { model, rows in
            Double(Self.loss(model, rows: rows, input: input).backwardReturningItem())
        }
        for i in 0..<shards { seen.append(parallel.shardRange(i, rows: 9)) }
        #expect(seen.map(\.count).reduce(0, +) == 9 && seen.first?.lowerBound == 0 && seen.last?.upperBound == 9)
        #expect(losses.count == shards)
        for ((name, a), (_, b)) in zip(whole.namedParameters, master.namedParameters) {
            let (ga, gb) = (try #require(a.grad).values, try #require(b.grad).values)
            let scale = ga.map(abs).max()!
            let error = zip(ga, gb).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-5 * max(scale, 1), "\(name): gradients differ by \(error)")
        }
        for replica in parallel.replicas { #expect(replica.parameters.allSatisfy { $0.gradStorage == nil }) }
        // The replicas now hold the master's weights.
        for replica in parallel.replicas {
            #expect(zip(master.parameters, replica.parameters).allSatisfy { $0.values == $1.values })
        }
    }

    /// An MPI rank's part of a batch (rows 3..<9 of 9): the shards cut that part, in global row
    /// numbers, and leave the mean gradient over it, as one batch of those rows gives.
    @Test func shardsOfARanksRowsLeaveTheMeanOverThem() throws {
        var rng = RandomGenerator(seed: 21)
        let input = (0..<45).map { _ in rng.normal() }
        rng = RandomGenerator(seed: 5)
        let part = TwoLayers(using: &rng)
        Self.loss(part, rows: 3..<9, input: input).backward()
        rng = RandomGenerator(seed: 5)
        let master = TwoLayers(using: &rng)
        let parallel = DataParallel(master: master, replicas: [TwoLayers(using: &rng)])
        var seen: [Range<Int>] = []
        _ = parallel.step(rows: 3..<9) { model, rows in
            Self.loss(model, rows: rows, input: input).backward()
            return rows
        }
        for i in 0..<2 { seen.append(parallel.shardRange(i, rows: 3..<9)) }
        #expect(seen == [3..<6, 6..<9])
        for ((name, a), (_, b)) in zip(part.namedParameters, master.namedParameters) {
            let (ga, gb) = (try #require(a.grad).values, try #require(b.grad).values)
            let error = zip(ga, gb).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-5 * max(ga.map(abs).max()!, 1), "\(name): gradients differ by \(error)")
        }
    }

    /// Without mpirun the process is a group of one: its collectives hand back their input and
    /// leave gradients alone, and it owns every row.
    @Test func oneProcessIsAGroupOfOne() throws {
        let group = ProcessGroup.single
        #expect(group.rank == 0 && group.size == 1 && group.isRoot && !group.isDistributed)
        #expect(group.rows(ofBatch: 32) == 0..<32 && group.share(ofBatch: 32) == 1 && group.batchProblem(1) == nil)
        #expect(group.sum([1.5, 2]) == [1.5, 2] && group.allGather([Int32(3), 4]) == [3, 4])
        let t = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        (t * t).sum().backward()
        group.sumGradients([t], weight: 0.5)
        #expect(t.grad?.values == [2, 4] && group.gradientReductions == 0)
        #expect(try group.rootFirst { 7 } == 7)
        try group.checkAgreement(1, "anything")
        #expect(ProcessGroup.launch(environment: [:]) == nil)
        let launched = ProcessGroup.launch(environment: ["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"])
        #expect(launched?.rank == 2 && launched?.size == 4)
        #expect(try ProcessGroup.start(environment: ["OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"]) === ProcessGroup.single)
        #expect(throws: ProcessGroupError.self) { try ProcessGroup.start(environment: ["PMI_SIZE": "2"]) }
    }

    @Test func aShardsErrorIsRethrownAfterAllHaveRun() {
        struct Failure: Error {}
        var rng = RandomGenerator(seed: 1)
        let parallel = DataParallel(master: TwoLayers(using: &rng), replicas: [TwoLayers(using: &rng)])
        let ran = Counter()
        #expect(throws: Failure.self) {
            _ = try parallel.step(rows: 4) { _, rows in
                ran.increment()
                if rows.lowerBound > 0 { throw Failure() }
            }
        }
        #expect(ran.value == 2)
    }

    @Test func kernelsInsideAShardRunOnOneWorker() {
        let workers = Parallel.shards(3) { _ in Parallel.workers }
        #expect(workers == [1, 1, 1])
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

private extension Tensor {
    /// Backpropagates this scalar and returns its value.
    func backwardReturningItem() -> Float {
        let value = item
        backward()
        return value
    }
}
