import Foundation

/// The folder the suite's default files live under (cache/, results/): `$VQD_HOME` when set,
/// otherwise the nearest folder at or above the current one that holds the project
/// (`Package.swift` beside `results/models`), otherwise the one above the running executable
/// (`.build/release/vqd` lies inside the project), otherwise the current folder. So `vqd` run from
/// any folder finds the caches, the committed models and the results database.
public enum ProjectRoot {
    public static let url: URL = locate(environment: ProcessInfo.processInfo.environment,
                                        current: URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                                        executable: runningExecutable)

    /// The running program's file: /proc/self/exe on Linux (the program's name alone, as when it
    /// is found on the PATH, says nothing of where it lies), else its first argument.
    public static var runningExecutable: URL {
        let proc = URL(fileURLWithPath: "/proc/self/exe")
        if FileManager.default.fileExists(atPath: proc.path) { return proc.resolvingSymlinksInPath() }
        return URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
    }

    /// The root for an environment, a current folder and an executable's path.
    static func locate(environment: [String: String], current: URL, executable: URL) -> URL {
        if let home = environment["VQD_HOME"], !home.isEmpty { return URL(fileURLWithPath: home).standardizedFileURL }
        for start in [current, executable.deletingLastPathComponent()] {
            var folder = start.standardizedFileURL
            while true {
                if isProject(folder) { return folder }
                let parent = folder.deletingLastPathComponent()
                if parent.path == folder.path { break }
                folder = parent
            }
        }
        return current.standardizedFileURL
    }

    static func isProject(_ folder: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: folder.appendingPathComponent("Package.swift").path)
            && fm.fileExists(atPath: folder.appendingPathComponent("results/models").path)
    }

    /// A path under the root, written relative to the current folder when it lies inside it
    /// ("results/results.sqlite" when run from the root).
    public static func path(_ relative: String) -> String { portablePath(url.appendingPathComponent(relative)) }

    /// A file named by a user or recorded in another file: as given when it exists there (or is
    /// absolute), otherwise under the root when it exists there, otherwise as given (so that the
    /// error names the path the user wrote).
    public static func resolve(_ path: String) -> URL {
        let given = URL(fileURLWithPath: path)
        guard !path.hasPrefix("/"), !FileManager.default.fileExists(atPath: path) else { return given }
        let underRoot = url.appendingPathComponent(path)
        return FileManager.default.fileExists(atPath: underRoot.path) ? underRoot : given
    }
}
