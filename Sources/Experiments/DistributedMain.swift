import ArgumentParser
import Engine
import Foundation
import VQDiffusion
#if canImport(Glibc)
import Glibc
#endif

// How the suite's programs (vqd and the studies) start and end when Open MPI's mpirun runs them as
// the ranks of one job: join the job before anything else, let rank 0 alone print, refuse commands
// that do not train, leave the job at the end, and end the whole job when one rank fails.

/// A command that may run as the ranks of an MPI job: the train commands (each rank takes its
/// rows of every batch), `vqd info`, and the studies' training children (`--mpi-ranks`).
public protocol DistributedCommand: ParsableCommand {}

extension ParsableCommand {
    /// The main of a program that can run under `mpirun`. Without it, or with one rank, this is
    /// ArgumentParser's own main. Under `mpirun -np N` (N > 1) it joins the job first
    /// (`ProcessGroup.start`), sends the standard output of ranks other than 0 to /dev/null (rank
    /// 0 alone prints; errors still reach standard error), runs the command if it is a
    /// `DistributedCommand`, and leaves the job. A rank whose command fails prints which rank
    /// failed and why, then ends every rank of the job (`MPI_Abort`); checkpoints are written
    /// atomically, so the last one on disk stays whole.
    public static func mainJoiningMPI(_ arguments: [String]? = nil) {
        let name = configuration.commandName ?? "vqd"
        let group: ProcessGroup
        do { group = try ProcessGroup.start() } catch {
            fputs("\(name): \(error)\n", stderr)
            Foundation.exit(1)
        }
        guard group.isDistributed else { return main(arguments) }
        if !group.isRoot {
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
        }
        do {
            var command = try parseAsRoot(arguments)
            guard command is DistributedCommand else {
                let which = type(of: command).configuration.commandName ?? name
                throw NotDistributedError(message: "\(which) does not run as the ranks of an MPI job: start it without "
                    + "mpirun (the train commands — vqd train, vqd vqvae train, vqd evaluator train, vqd models train — "
                    + "run under mpirun)")
            }
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code == .success else {
                fputs("\(name): MPI rank \(group.rank) of \(group.size) failed: \(fullMessage(for: error))\n"
                      + "\(name): ending every rank of the job (MPI_Abort)\n", stderr)
                group.abort(code: code.rawValue)
            }
            group.finish()
            exit(withError: error)
        }
        group.finish()
    }
}

/// Open MPI's launcher.
public enum MPIRun {
    /// `mpirun` from the PATH, or an error saying how to install it.
    public static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw ConfigurationError("Open MPI's mpirun is not on the PATH: make deps installs it (openmpi-bin, libopenmpi-dev)")
    }
}

/// A command started under mpirun that does not run as ranks.
struct NotDistributedError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
