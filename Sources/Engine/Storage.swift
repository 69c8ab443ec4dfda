import CLibs
import Foundation

/// Where large buffers come from. Below `threshold` bytes a buffer is an ordinary aligned heap
/// block. From `threshold` up it is its own page-aligned anonymous mapping, and a freed one is
/// kept, up to `cacheLimit` bytes in all, for the next request of the same size.
///
/// Why not the heap: glibc serves blocks above its mmap threshold with fresh mappings and unmaps
/// them on free, so a training step would page-fault its activations in again each time (a
/// 16 MiB buffer costs four thousand faults, each zeroing a page). Raising that threshold keeps
/// them in the heap, but then the small long-lived blocks made between two batches (captions,
/// token arrays) land in the holes the freed activations leave, and the next batch's buffers
/// no longer fit: tokenizing 30,000 images grew the heap to 8 GB with 83 MB live. Mappings of
/// our own cannot be split that way, and the cache keeps the reuse: a training step asks for the
/// same sizes every time, so after the first step it faults nothing in.
enum LargeBuffers {
    /// Buffers of at least this many bytes are mappings (1 MiB).
    static let threshold = 1 << 20
    /// Freed mappings kept for reuse, in bytes at most (2 GiB); beyond it they are unmapped.
    static let cacheLimit = 2 << 30

    nonisolated(unsafe) private static var idle: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var idleBytes = 0
    private static let lock = NSLock()
    /// The system's page size, the unit mappings come in.
    private static let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)

    /// `bytes` rounded up to whole pages: the size a mapping really has.
    static func mappedSize(_ bytes: Int) -> Int {
        (bytes + page - 1) / page * page
    }

    /// A mapping of `mappedSize(bytes)` bytes, reused when one of that size is idle.
    static func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = mappedSize(bytes)
        lock.lock()
        if let reused = idle[size]?.popLast() {
            idleBytes -= size
            lock.unlock()
            return reused
        }
        lock.unlock()
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else {
            fatalError("out of memory: could not map \(size) bytes for a tensor (errno \(errno))")
        }
        return p
    }

    /// Returns a mapping from `take(bytes)`: kept for reuse while the cache has room, else unmapped.
    static func give(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = mappedSize(bytes)
        lock.lock()
        if idleBytes + size <= cacheLimit {
            idle[size, default: []].append(pointer)
            idleBytes += size
            lock.unlock()
            return
        }
        lock.unlock()
        munmap(pointer, size)
    }

    /// Unmaps every idle mapping (for tests and for callers about to need the memory elsewhere).
    static func release() {
        lock.lock()
        let all = idle
        idle = [:]
        idleBytes = 0
        lock.unlock()
        for (size, pointers) in all { for p in pointers { munmap(p, size) } }
    }

    /// Bytes held by idle mappings.
    static var idleByteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return idleBytes
    }
}

/// A fixed-size, 64-byte aligned buffer of Float32 values. Tensors share a storage when they are
/// views of the same contiguous data (reshape); every op writes into a fresh one.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised storage of `count` floats (callers must write every element).
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "Storage count must be non-negative, got \(count)")
        self.count = count
        let bytes = Storage.byteCount(count)
        let raw = bytes >= LargeBuffers.threshold
            ? LargeBuffers.take(bytes)
            : UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Storage of `count` floats, each set to `value`.
    public convenience init(count: Int, repeating value: Float = 0) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    public convenience init(_ values: [Float]) {
        self.init(uninitializedCount: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.initialize(from: base, count: values.count) }
        }
    }

    /// Bytes allocated: at least one float's, so an empty storage still owns a buffer.
    private static func byteCount(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    deinit {
        let bytes = Storage.byteCount(count)
        if bytes >= LargeBuffers.threshold {
            LargeBuffers.give(UnsafeMutableRawPointer(pointer), bytes: bytes)
        } else {
            UnsafeMutableRawPointer(pointer).deallocate()
        }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func copy() -> Storage {
        let s = Storage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }
}
