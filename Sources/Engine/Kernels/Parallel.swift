import Dispatch
import Foundation

/// Work splitting for the fused kernels, and a small pool of reusable scratch buffers.
///
/// The kernels run on as many workers as OpenBLAS has threads (`BLAS.threads`, set with
/// `BLAS.setThreads`). Work is cut into a fixed number of contiguous chunks, so which rows a chunk
/// owns — and therefore every floating-point sum — never depends on thread scheduling: results
/// are bitwise reproducible run to run for a given thread count. OpenBLAS's own results also depend
/// on its thread count, which is process-wide and lowered to 1 inside `singleThreadedBLAS` regions:
/// reproducibility holds for one computation at a time per process, not for two running
/// concurrently in one process (the test suite therefore runs serially).
public enum Parallel {
    /// Set inside `shards`: each shard's kernels run on its own thread alone.
    @TaskLocal private static var workerLimit: Int? = nil

    /// Number of workers the kernels use: OpenBLAS's thread count, or 1 inside a shard of
    /// `shards`.
    public static var workers: Int { max(1, workerLimit ?? BLAS.threads) }

    /// Runs `body(i)` for i in 0..<count concurrently, one thread per shard, with every kernel and
    /// BLAS call inside a shard single-threaded: coarse parallelism (independent pieces of a batch)
    /// in place of splitting each kernel, whose small matrices leave threads waiting on each other.
    /// Results come back in shard order.
    public static func shards<R>(_ count: Int, _ body: (Int) -> R) -> [R] {
        precondition(count >= 1, "Parallel.shards: need at least one shard, got \(count)")
        let results = UnsafeMutablePointer<R?>.allocate(capacity: count)
        results.initialize(repeating: nil, count: count)
        defer { results.deinitialize(count: count); results.deallocate() }
        BLASThreadScope.enter()
        DispatchQueue.concurrentPerform(iterations: count) { i in
            results[i] = $workerLimit.withValue(1) { body(i) }
        }
        BLASThreadScope.exit()
        return (0..<count).map { results[$0]! }
    }

    /// As above for a body that throws: every shard runs, then the first error (in shard order)
    /// is rethrown.
    public static func shards<R>(_ count: Int, _ body: (Int) throws -> R) throws -> [R] {
        try shards(count) { i in Result { try body(i) } }.map { try $0.get() }
    }

    /// Calls `body(i)` for every i in 0..<n, on up to `workers` threads. Iterations must write
    /// disjoint memory. With one worker (or n ≤ 1) it is a plain loop on the calling thread.
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        guard n > 0 else { return }
        if n == 1 || workers == 1 {
            for i in 0..<n { body(i) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }

    /// Splits 0..<n into at most `workers` contiguous chunks of at least `minimumPerChunk` items and
    /// calls `body(chunk, range)` for each, concurrently. Returns the number of chunks used.
    /// Chunk boundaries depend only on n, the minimum and the worker count.
    ///
    /// When `singleThreadedBLAS` is true and more than one chunk runs, OpenBLAS runs one thread
    /// per call for the duration (each chunk calls BLAS itself), then its count is restored.
    @discardableResult
    public static func chunks(_ n: Int, minimumPerChunk: Int = 1, singleThreadedBLAS: Bool = false,
                              _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) -> Int {
        let count = chunkCount(n, minimumPerChunk: minimumPerChunk)
        chunks(n, count: count, singleThreadedBLAS: singleThreadedBLAS, body)
        return count
    }

    /// As above with the chunk count fixed by the caller (from `chunkCount`, read once, so that
    /// per-chunk partial buffers sized with it always match).
    public static func chunks(_ n: Int, count: Int, singleThreadedBLAS: Bool = false,
                              _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        guard n > 0, count > 0 else { return }
        if count == 1 {
            body(0, 0..<n)
            return
        }
        if singleThreadedBLAS { BLASThreadScope.enter() }
        DispatchQueue.concurrentPerform(iterations: count) { c in
            body(c, chunkRange(n, chunks: count, index: c))
        }
        if singleThreadedBLAS { BLASThreadScope.exit() }
    }

    /// How many chunks `chunks(n, minimumPerChunk:)` will use.
    public static func chunkCount(_ n: Int, minimumPerChunk: Int = 1) -> Int {
        guard n > 0 else { return 0 }
        return max(1, min(workers, n / max(1, minimumPerChunk)))
    }

    /// The `index`-th of `chunks` near-equal contiguous parts of 0..<n.
    @inline(__always)
    public static func chunkRange(_ n: Int, chunks: Int, index: Int) -> Range<Int> {
        (index * n / chunks)..<((index + 1) * n / chunks)
    }
}

/// Regions during which OpenBLAS runs single-threaded, possibly overlapping (kernels called from
/// several threads at once, as in concurrent tests). The library's count drops to 1 when the first
/// region opens and returns to the configured count when the last one closes; `Parallel.workers`
/// reads the configured count, so work splitting never sees the temporary value.
private enum BLASThreadScope {
    nonisolated(unsafe) static var depth = 0
    static let lock = NSLock()

    static func enter() {
        lock.lock()
        if depth == 0 { BLAS.setLibraryThreads(1) }
        depth += 1
        lock.unlock()
    }

    static func exit() {
        lock.lock()
        depth -= 1
        if depth == 0 { BLAS.setLibraryThreads(BLAS.threads) }
        lock.unlock()
    }
}

/// A small pool of float buffers reused across kernel calls whose shapes repeat (im2col columns,
/// attention scratch), so big temporaries are not allocated and faulted in on every call.
///
/// `take` hands out a buffer of at least the requested size, exclusively, until it is given back;
/// contents are unspecified. The pool is thread-safe and keeps at most `capacity` idle buffers,
/// none larger than `largestPooled`.
/// It is a cache: using it or not changes no result.
public final class ScratchPool: @unchecked Sendable {
    /// The pool the kernels use.
    public static let shared = ScratchPool(capacity: 8)

    private let lock = NSLock()
    private var idle: [Storage] = []
    private let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    /// A buffer of at least `count` floats (uninitialised), owned by the caller until `give`.
    public func take(_ count: Int) -> Storage {
        lock.lock()
        var best = -1
        for (i, s) in idle.enumerated() where s.count >= count && (best < 0 || s.count < idle[best].count) {
            best = i
        }
        let found = best >= 0 ? idle.remove(at: best) : nil
        lock.unlock()
        return found ?? Storage(uninitializedCount: count)
    }

    /// Buffers larger than this (in floats, 64 MiB) are not kept: the pool is for repeated
    /// working sizes, not for holding on to one-off large allocations.
    public static let largestPooled = 16 << 20

    /// Returns a buffer to the pool (dropping the smallest idle one when full).
    public func give(_ storage: Storage) {
        guard storage.count <= ScratchPool.largestPooled else { return }
        lock.lock()
        idle.append(storage)
        if idle.count > capacity, let smallest = idle.indices.min(by: { idle[$0].count < idle[$1].count }) {
            idle.remove(at: smallest)
        }
        lock.unlock()
    }

    /// Runs `body` with a scratch buffer of at least `count` floats, then returns it to the pool.
    @inline(__always)
    public func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let s = take(count)
        defer { give(s) }
        return try body(s.pointer)
    }
}

extension Tensor {
    /// Pointer to this tensor's gradient for a kernel that accumulates with BLAS, and the `beta`
    /// to use: when no gradient exists yet it is allocated uninitialised and beta is 0 (the
    /// kernel overwrites it), saving a zero-fill; otherwise beta is 1 (the kernel adds).
    /// Only for kernels that write the whole gradient exactly once with that beta.
    func gradForOverwriteOrAdd() -> (pointer: UnsafeMutablePointer<Float>, beta: Float) {
        if let g = gradStorage { return (g.pointer, 1) }
        let g = Storage(uninitializedCount: count)
        gradStorage = g
        return (g.pointer, 0)
    }

    /// Pointer to this tensor's gradient, allocated zeroed on first use (kernels then add into it).
    func gradAccumulationPointer() -> UnsafeMutablePointer<Float> {
        if let g = gradStorage { return g.pointer }
        let g = Storage(count: count)
        gradStorage = g
        return g.pointer
    }
}
