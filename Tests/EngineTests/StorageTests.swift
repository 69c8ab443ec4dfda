import Testing
@testable import Engine

@Suite struct StorageTests {
    /// Floats in a buffer just over the mapping threshold, a size no other test asks for.
    static let largeCount = LargeBuffers.threshold / 4 + 1031

    @Test func largeBuffersAreWholePagesReusedBySize() {
        #expect(LargeBuffers.mappedSize(1) == 4096)
        #expect(LargeBuffers.mappedSize(4096) == 4096)
        #expect(LargeBuffers.mappedSize(4097) == 8192)
        let bytes = Self.largeCount * 4
        let before = LargeBuffers.idleByteCount
        var first: Storage? = Storage(count: Self.largeCount, repeating: 2)
        let address = first!.pointer
        #expect(Int(bitPattern: address) % 4096 == 0)
        #expect(first!.buffer.allSatisfy { $0 == 2 })
        first = nil
        #expect(LargeBuffers.idleByteCount == before + LargeBuffers.mappedSize(bytes))
        // The next request of that size gets the idle mapping back, filled as asked.
        let second = Storage(count: Self.largeCount, repeating: -1)
        #expect(second.pointer == address)
        #expect(LargeBuffers.idleByteCount == before)
        #expect(second.buffer.allSatisfy { $0 == -1 })
        // Another size does not take it.
        let third = Storage(count: Self.largeCount + 2048, repeating: 0)
        #expect(third.pointer != address)
        #expect(third.count == Self.largeCount + 2048)
    }

    @Test func smallBuffersStayInTheHeapAligned() {
        let before = LargeBuffers.idleByteCount
        var small: Storage? = Storage(count: LargeBuffers.threshold / 4 - 1, repeating: 1)
        #expect(Int(bitPattern: small!.pointer) % 64 == 0)
        small = nil
        #expect(LargeBuffers.idleByteCount == before)
    }

    @Test func releaseUnmapsIdleBuffers() {
        _ = Storage(count: Self.largeCount + 4096, repeating: 0)
        #expect(LargeBuffers.idleByteCount > 0)
        LargeBuffers.release()
        #expect(LargeBuffers.idleByteCount == 0)
        let again = Storage(count: Self.largeCount + 4096, repeating: 3)
        #expect(again.buffer.allSatisfy { $0 == 3 })
    }
}
