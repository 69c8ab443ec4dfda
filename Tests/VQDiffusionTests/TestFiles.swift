import Foundation

/// A fresh temporary folder for one test, removed when the value is released.
final class TemporaryFolder {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vqd-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// The error message of `body`, or nil if it did not throw.
func thrownMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return String(describing: error) }
}
