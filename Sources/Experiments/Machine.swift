import Engine
import Foundation
import VQDiffusion

/// Facts about the machine and process a run records.
public enum Machine {
    public static var hostname: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        return String(cString: buffer)
    }

    /// The CPU model from /proc/cpuinfo (Linux), or nil.
    public static var cpuModel: String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// "host (CPU model, N cores)", what the runs table's `machine` column holds.
    public static var description: String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return "\(hostname) (\(cpuModel ?? "unknown CPU"), \(cores) cores)"
    }

    /// The commit this process's runs record: `git rev-parse HEAD` in the current folder when the
    /// process first asks (nil when git or a repository is absent), kept for the process's life
    /// and handed to the processes it starts (`VQD_GIT_COMMIT`), so that a long study, and the
    /// trainings it starts, record the commit its code was started from even when the
    /// repository moves on meanwhile.
    public static func gitCommit() -> String? { commitAtStart }

    /// The variable through which a process hands its commit to the processes it starts.
    static let commitVariable = "VQD_GIT_COMMIT"

    private static let commitAtStart: String? = {
        if let inherited = ProcessInfo.processInfo.environment[commitVariable], !inherited.isEmpty { return inherited }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "HEAD"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !commit.isEmpty else { return nil }
        setenv(commitVariable, commit, 1)
        return commit
    }()

    /// Tags identifying this process: `sys.pid`, `sys.host`, `sys.blas_kernels` (the OpenBLAS kernel
    /// family it runs, which sets its speed), the precision and backend of its products
    /// (`ComputePolicy.tags`) and, on Linux, `sys.pid_start` (the process start time
    /// in clock ticks, which tells a reused pid from the original).
    static func processTags() -> [(String, String)] {
        var tags = [("sys.pid", String(getpid())), ("sys.host", hostname), ("sys.blas_kernels", BLASKernels.coreName)]
        tags += ComputePolicy.tags
        if let start = startTime(pid: getpid()) { tags.append(("sys.pid_start", start)) }
        return tags
    }

    /// Field 22 of /proc/<pid>/stat, or nil when unavailable.
    static func startTime(pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    /// Whether process `pid` on this host has ended (or the pid now belongs to another process).
    static func processIsGone(pid: Int32, startTime recorded: String?) -> Bool {
        guard pid > 0 else { return true }
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        if let recorded, let current = startTime(pid: pid), current != recorded { return true }
        // A zombie (ended, not yet reaped) still answers kill(pid, 0).
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(after: close)...].split(separator: " ").first
            if state == "Z" || state == "X" { return true }
        }
        return false
    }
}
