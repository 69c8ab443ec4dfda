import CLibs
import Foundation

/// Keeps large buffers in the process heap once freed. glibc serves blocks above its mmap
/// threshold (128 KiB at first, adapting only to sizes already freed) with fresh mappings and
/// unmaps them on free, so a training step could page-fault its activations in again (a 16 MiB
/// buffer costs four thousand faults, each zeroing a page). Raising the threshold to its largest
/// allowed value (32 MiB) and never trimming lets freed blocks be reused as they are: the heap
/// grows to the working set of one step and stays there.
private let heapTuning: Void = {
    #if os(Linux)
    _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
    #endif
}()

/// A fixed-size, 64-byte aligned buffer of Float32 values. Tensors share a storage when they are
/// views of the same contiguous data (reshape); every op writes into a fresh one.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised storage of `count` floats (callers must write every element).
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "Storage count must be non-negative, got \(count)")
        _ = heapTuning
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
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

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func copy() -> Storage {
        let s = Storage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }
}
