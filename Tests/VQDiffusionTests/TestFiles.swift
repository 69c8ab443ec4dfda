import Foundation
@testable import VQDiffusion

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

/// An executable product built next to the test bundle (vqd, the study executables).
func builtExecutable(_ name: String) throws -> URL {
    let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                      Bundle.main.bundleURL.deletingLastPathComponent(), Bundle.main.bundleURL]
    for folder in candidates {
        let url = folder.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw FileError(name, "is not built next to the tests (looked in \(candidates.map(\.path))); run swift build first")
}

/// A started child process whose output (stdout, and stderr unless `errorsApart`) goes to one pipe.
/// `environment` adds to (or replaces in) this process's environment.
struct ChildProcess {
    let process: Process
    let pipe: Pipe

    init(_ executable: URL, _ arguments: [String], in folder: URL? = nil, errorsApart: Bool = false,
         environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = folder }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        pipe = Pipe()
        process.standardOutput = pipe
        if !errorsApart { process.standardError = pipe }
        try process.run()
    }

    /// Reads the output to its end and waits for the exit: the status and the output.
    func finish() -> (status: Int32, output: String) {
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}

/// The package's root folder (where Package.swift is).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
