import Foundation

/// A problem with a file from outside the program: unreadable, truncated, malformed, or not what
/// the caller asked for. The message names the file and says what is wrong and, where it can,
/// how to fix it.
public struct FileError: Error, CustomStringConvertible, LocalizedError {
    /// The file concerned (its path as given).
    public let path: String
    /// What is wrong with it.
    public let reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public init(_ url: URL, _ reason: String) {
        self.init(url.path, reason)
    }

    public var description: String { "\(path): \(reason)" }
    public var errorDescription: String? { description }
}

/// Writing a file so that readers see either the old contents or the complete new contents,
/// never a partial file: write a temporary file in the same folder, fsync it, rename it over the
/// destination (atomic on POSIX file systems), then fsync the folder so the rename is durable.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw FileError(url, "cannot create a temporary file in \(folder.path): \(String(cString: strerror(errno))); check that the folder exists and is writable")
        }
        var failure: String?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed: \(String(cString: strerror(errno)))"
                    return
                }
                done += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        close(fd)
        if failure == nil && rename(temporary.path, url.path) != 0 {
            failure = "rename into place failed: \(String(cString: strerror(errno)))"
        }
        if let failure {
            unlink(temporary.path)
            throw FileError(url, failure)
        }
        let dirfd = open(folder.path, O_RDONLY)
        if dirfd >= 0 { _ = fsync(dirfd); close(dirfd) }
    }

    /// Reads a whole file, memory-mapped when that is safe.
    public static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw FileError(url, exists ? "cannot be read (\(error.localizedDescription))" : "no such file")
        }
    }
}

/// `url`'s path relative to the current folder when it lies inside it ("results/models/x"),
/// otherwise the absolute path: what runs and model files record, so that they stay valid in
/// another clone of the project.
public func portablePath(_ url: URL) -> String {
    let path = url.standardizedFileURL.path
    let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
    let prefix = here.hasSuffix("/") ? here : here + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
}

/// A configuration setting that cannot be used (an option, a recipe field, an override); the message names the key and what is accepted.
public struct ConfigurationError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
