import Foundation
import Testing
@testable import Experiments
@testable import VQDiffusion

// Data-parallel training over MPI, run as a user runs it: `mpirun -np 2 vqd …` on this machine
// (TCP over the loopback interface, one thread per rank) against one process. Needs Open MPI's
// mpirun (make deps installs it); without it these tests fail saying so.

/// `vqd` in one process or as MPI ranks, and what its runs logged.
struct DistributedRuns {
    let folder = TemporaryFolder()

    /// One thread per process, and Open MPI allowed to run as root (CI runs as root).
    static let environment = ["OPENBLAS_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]

    /// The mpirun options of every job: `ranks` processes on this machine, whatever its cores,
    /// talking TCP over the loopback interface, not bound to cores.
    static func mpirunArguments(ranks: Int) -> [String] {
        ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), "--mca", "btl", "self,tcp",
         "--mca", "btl_tcp_if_include", "lo", "-x", "OPENBLAS_NUM_THREADS"]
    }

    /// Starts `vqd arguments` as one process (`ranks` 1) or under mpirun, with its caches (token
    /// grids, text features) in the test's folder.
    func start(_ arguments: [String], ranks: Int = 1) throws -> ChildProcess {
        let vqd = try builtExecutable("vqd")
        let environment = Self.environment.merging(["VQD_HOME": folder.url.path]) { $1 }
        if ranks == 1 { return try ChildProcess(vqd, arguments, in: folder.url, environment: environment) }
        return try ChildProcess(try MPIRun.find(), Self.mpirunArguments(ranks: ranks) + [vqd.path] + arguments, in: folder.url,
                                environment: environment)
    }

    func vqd(_ arguments: [String], ranks: Int = 1) throws -> (status: Int32, output: String) {
        try start(arguments, ranks: ranks).finish()
    }

    func file(_ name: String) -> String { folder.file(name).path }

    /// The one run of `experiment` in database `db`.
    func run(_ db: String, _ experiment: String) throws -> (id: String, status: RunStatus, database: ResultsDatabase) {
        let database = try ResultsDatabase(path: file(db))
        let runs = try database.runs(experiment: experiment)
        try #require(runs.count == 1, "\(db): \(runs.count) runs of \(experiment)")
        return (runs[0].id, runs[0].status, database)
    }

    /// The values of `key` logged by the one run of `experiment`, by step.
    func curve(_ db: String, _ experiment: String, _ key: String) throws -> [Double] {
        let (id, _, database) = try run(db, experiment)
        return try database.metric(runID: id, key: key).map { $0.value ?? .nan }
    }

    /// Whether two checkpoint files hold the same tensors and metadata, bit for bit (naming the first that differs).
    func sameCheckpoints(_ a: String, _ b: String) throws -> String? {
        let x = try Safetensors.read(folder.file(a)), y = try Safetensors.read(folder.file(b))
        guard x.names == y.names else { return "tensor names differ" }
        if let name = x.names.first(where: { x[$0] != y[$0] }) { return "tensor \(name) differs" }
        return x.metadata == y.metadata ? nil : "metadata differs"
    }
}

@Suite(.serialized) struct DistributedTrainingTests {
    /// A tiny generator on synthetic tokens: 20 steps of 8, T = 4 (so importance sampling of t
    /// starts within the run and the ranks' per-row losses must be gathered), metrics every step.
    static func generator(_ family: String, extra: [String] = []) -> [String] {
        ["train", "--synthetic", "--model", family, "--preset", "tiny", "--steps", "20", "--warmup", "2", "--batch-size", "8",
         "--diffusion-steps", "4", "--log-every", "1", "--checkpoint-every", "10"] + extra
    }

    @Test func twoRanksOfOneShardEqualOneProcessOfTwoShardsBitForBit() throws {
        let runs = DistributedRuns()
        for family in ["diffusion", "ar"] {
            let one = try runs.vqd(Self.generator(family, extra: ["--shards", "2", "--db", runs.file("\(family)-1.sqlite"),
                                                                  "--out", runs.file("\(family)-1.safetensors")]))
            try #require(one.status == 0, "\(one.output.suffix(2000))")
            let two = try runs.vqd(Self.generator(family, extra: ["--shards", "2", "--db", runs.file("\(family)-2.sqlite"),
                                                                  "--out", runs.file("\(family)-2.safetensors")]), ranks: 2)
            try #require(two.status == 0, "\(two.output.suffix(2000))")
            #expect(try runs.sameCheckpoints("\(family)-1.safetensors", "\(family)-2.safetensors") == nil, "\(family)")
            let (a, b) = (try runs.curve("\(family)-1.sqlite", "train-\(family)", "loss"),
                          try runs.curve("\(family)-2.sqlite", "train-\(family)", "loss"))
            #expect(a.count == 20 && a == b, "\(family): \(a) against \(b)")
            // Rank 0 alone logged; the ranks checked that they hold the same state at the end.
            let (id, status, database) = try runs.run("\(family)-2.sqlite", "train-\(family)")
            let tags = Dictionary(try database.tags(runID: id).map { ($0.key, $0.value ?? "") }) { $1 }
            #expect(status == .finished && tags["sys.mpi_ranks"] == "2" && tags["mpi.ranks_agree_at_step"] == "20", "\(tags)")
            #expect(try database.params(runID: id).contains { $0.key == "shards" && $0.value == "2" })
            // Rank 0 alone printed (the summary line once).
            #expect(two.output.components(separatedBy: "\(family) model:").count == 2, "\(two.output.suffix(1000))")
        }
        // Every rank resumes from the checkpoint: 10 steps, then 10 more, equal 20 at once.
        let first = try runs.vqd(Self.generator("diffusion", extra: ["--shards", "2", "--stop-at", "10", "--db", runs.file("resumed.sqlite"),
                                                                     "--out", runs.file("resumed.safetensors")]), ranks: 2)
        try #require(first.status == 0, "\(first.output.suffix(2000))")
        let rest = try runs.vqd(Self.generator("diffusion", extra: ["--shards", "2", "--resume", "--db", runs.file("resumed.sqlite"),
                                                                    "--out", runs.file("resumed.safetensors")]), ranks: 2)
        try #require(rest.status == 0, "\(rest.output.suffix(2000))")
        #expect(try runs.sameCheckpoints("diffusion-1.safetensors", "resumed.safetensors") == nil)
    }

    /// Both families on synthetic tokens, and VQ-Diffusion on the committed VQ-VAE's tokens of 64
    /// Shapes images with the trainable tiny text encoder (tokenized by rank 0 first; the encoder's
    /// gradients summed with the model's). In fp32, whose rounding the tolerance is set for (bf16,
    /// vqd train's default where the CPU has it, rounds the ranks' operands at other places).
    @Test func twoRanksFollowOneBatchInOneProcessWithinFloatRounding() throws {
        let runs = DistributedRuns()
        let vqvae = packageRoot.appendingPathComponent("results/models/vqvae-shapes-k64-32.safetensors").path
        let tiny = ["train", "--vqvae", vqvae, "--count", "64", "--text-encoder", "tiny", "--preset", "tiny", "--steps", "20",
                    "--warmup", "2", "--batch-size", "8", "--diffusion-steps", "4", "--log-every", "1"]
        for (name, arguments, family) in [("diffusion", Self.generator("diffusion"), "diffusion"),
                                          ("ar", Self.generator("ar"), "ar"), ("tiny", tiny, "diffusion")] {
            let arguments = arguments + ["--precision", "fp32"]
            let one = try runs.vqd(arguments + ["--shards", "1", "--db", runs.file("\(name)-1.sqlite"),
                                                "--out", runs.file("\(name)-1.safetensors")])
            try #require(one.status == 0, "\(one.output.suffix(2000))")
            let two = try runs.vqd(arguments + ["--db", runs.file("\(name)-2.sqlite"), "--out", runs.file("\(name)-2.safetensors")],
                                   ranks: 2)
            try #require(two.status == 0, "\(two.output.suffix(2000))")
            let (a, b) = (try runs.curve("\(name)-1.sqlite", "train-\(family)", "loss"),
                          try runs.curve("\(name)-2.sqlite", "train-\(family)", "loss"))
            try #require(a.count == 20 && b.count == 20)
            let worst = zip(a, b).map { abs($0 - $1) / abs($0) }.max()!
            #expect(worst <= 1e-5, "\(name): relative difference \(worst): \(a) against \(b)")
        }
    }

    @Test func vqvaeAndEvaluatorTrainOverRanksAsInOneProcess() throws {
        let runs = DistributedRuns()
        let vqvae = ["vqvae", "train", "--dataset", "shapes", "--size", "16", "--train-count", "64", "--codes", "16",
                     "--code-dim", "8", "--widths", "8,16,16", "--res-blocks", "1", "--steps", "8", "--batch-size", "8",
                     "--log-every", "1", "--eval-count", "8"]
        let evaluator = ["evaluator", "train", "--dataset", "shapes", "--size", "16", "--steps", "6", "--batch-size", "8",
                         "--val-count", "8", "--calibration-count", "8"]
        for (name, arguments, experiment, key) in [("vqvae", vqvae, "vqvae", "train/loss"),
                                                   ("evaluator", evaluator, "evaluator", "train/loss")] {
            let one = try runs.vqd(arguments + ["--db", runs.file("\(name)-1.sqlite"), "--out", runs.file("\(name)-1.safetensors")])
            try #require(one.status == 0, "\(one.output.suffix(2000))")
            let two = try runs.vqd(arguments + ["--db", runs.file("\(name)-2.sqlite"), "--out", runs.file("\(name)-2.safetensors")],
                                   ranks: 2)
            try #require(two.status == 0, "\(two.output.suffix(2000))")
            let (a, b) = (try runs.curve("\(name)-1.sqlite", experiment, key), try runs.curve("\(name)-2.sqlite", experiment, key))
            try #require(!a.isEmpty && a.count == b.count, "\(name): \(a) against \(b)")
            let worst = zip(a, b).map { abs($0 - $1) / abs($0) }.max()!
            #expect(worst <= 1e-5, "\(name): relative difference \(worst): \(a) against \(b)")
            #expect(FileManager.default.fileExists(atPath: runs.file("\(name)-2.safetensors")))
        }
    }

    @Test func aRankThatDiesEndsTheJobAndLeavesTheLastCheckpoint() throws {
        let runs = DistributedRuns()
        let job = try runs.start(["train", "--synthetic", "--preset", "tiny", "--steps", "100000", "--warmup", "2", "--batch-size", "8",
                                  "--checkpoint-every", "5", "--db", runs.file("r.sqlite"), "--out", runs.file("c.safetensors")],
                                 ranks: 2)
        // Wait for a checkpoint, then kill rank 1 (a child of mpirun whose environment names it).
        let deadline = Date().addingTimeInterval(60)
        var rank1: Int32?
        while Date() < deadline && job.process.isRunning && (rank1 == nil || !FileManager.default.fileExists(atPath: runs.file("c.safetensors"))) {
            Thread.sleep(forTimeInterval: 0.1)
            rank1 = rank1 ?? Self.child(of: job.process.processIdentifier, rank: 1)
        }
        let pid = try #require(rank1, "rank 1 of the job was not found")
        try #require(job.process.isRunning && FileManager.default.fileExists(atPath: runs.file("c.safetensors")),
                     "the job ended before a checkpoint: \(job.finish().output.suffix(2000))")
        kill(pid, SIGKILL)
        let (status, output) = job.finish()
        #expect(status != 0)
        #expect(output.contains("signal 9") || output.contains("Killed"), "\(output.suffix(2000))")
        let checkpoint = try TrainingCheckpoint.read(runs.folder.file("c.safetensors"), expectingKind: DiffusionTrainer.checkpointKind)
        let step = try checkpoint.step
        #expect(step >= 5 && step % 5 == 0)
        // Rank 0's run does not stay RUNNING (killed by the launcher, or found dead when the database is opened).
        #expect(try runs.run("r.sqlite", "train-diffusion").status == .killed)
    }

    @Test func aRankThatFailsEndsTheJobWithItsMessage() throws {
        let runs = DistributedRuns()
        let shards = try runs.vqd(["train", "--synthetic", "--preset", "tiny", "--steps", "2", "--batch-size", "8", "--shards", "3",
                                   "--db", runs.file("r.sqlite"), "--out", runs.file("c.safetensors")], ranks: 2)
        #expect(shards.status != 0)
        #expect(shards.output.contains("MPI rank") && shards.output.contains("--shards 3 cannot be divided among 2 MPI ranks"),
                "\(shards.output.suffix(2000))")
        let sample = try runs.vqd(["sample", "--model", "none.safetensors", "--prompt", "a red circle", "--out", runs.file("x.png")], ranks: 2)
        #expect(sample.status != 0 && sample.output.contains("does not run as the ranks of an MPI job"), "\(sample.output.suffix(2000))")
        let info = try runs.vqd(["info"], ranks: 2)
        #expect(info.status == 0 && info.output.contains("MPI: rank 0 of 2 under mpirun"), "\(info.output)")
        #expect(!info.output.contains("rank 1 of 2"), "rank 1 printed: \(info.output)")
        let alone = try runs.vqd(["info"])
        #expect(alone.status == 0 && alone.output.contains("MPI: not under mpirun") && alone.output.contains("libmpi loadable"),
                "\(alone.output)")
    }

    /// The pid of the child of `parent` that Open MPI started as `rank`, or nil.
    static func child(of parent: Int32, rank: Int) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == parent,
                  let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }
}
