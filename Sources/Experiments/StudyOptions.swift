import ArgumentParser
import Engine
import Foundation
import VQDiffusion

extension StudyProfile: ExpressibleByArgument {}

/// The options every study executable takes, and the code that runs a study with them.
public struct StudyOptions: ParsableArguments {
    @Option(help: "quick (a tiny configuration, minutes; what the tests run), paper (the reproduction) or, where a study offers it, preview (a shorter paper run; not a verdict).")
    public var profile: StudyProfile = .paper
    @Option(help: "The results database.")
    public var db: String = ResultsDatabase.defaultPath
    @Option(help: "Where the claims table is written.")
    public var results: String = "results"
    @Option(help: "The committed models (with their index.json).")
    public var models: String = "results/models"
    @Option(help: "Cache folder: models trained on demand, token grids, text features.")
    public var cache: String = "cache"
    @Option(help: "BLAS and kernel threads (default: OpenBLAS's choice).")
    public var threads: Int?
    @Option(help: """
        Operands of the matrix products and convolutions, for the study's trainings (its \
        generator.precision) and its sampling: fp32 (default) or bf16 (needs AVX512_BF16).
        """)
    public var precision: Precision?
    @Flag(name: .customLong("show-config"), help: "Print the configuration (after overrides) as key = value and exit.")
    public var showConfig = false
    @Flag(name: .customLong("no-progress"), help: "No progress bars.")
    public var noProgress = false
    @Option(help: """
        Train the study's missing models N at a time before it starts, each in a process of its \
        own with one thread (on 2 cores two such trainings do more steps per second than one with \
        two threads). 1: train each when the study reaches it.
        """)
    public var jobs: Int = 1
    @Option(name: .customLong("mpi-ranks"), help: """
        Train the study's missing models first, --jobs at a time, each as N MPI ranks of one thread \
        (mpirun -np N, Open MPI's mpirun from the PATH): --jobs J --mpi-ranks N keeps J·N processes \
        busy. 1: one process per training.
        """)
    public var mpiRanks: Int = 1
    @Flag(name: .customLong("prepare-only"),
          help: "Train the models the study needs before it measures (--jobs at a time) and stop. The quality and mask studies train their other generators while they measure, a group of --jobs at a time, each evaluated as soon as it is trained.")
    public var prepareOnly = false
    @Flag(help: """
        Evaluate every generator again, even where the database records the evaluation with its \
        features (by default such a record stands in for the model, which then need not be on this \
        machine). Needs the models.
        """)
    public var remeasure = false
    @Option(name: .customLong("prepare-kind"), help: .hidden)
    public var prepareKind: String?
    @Option(name: .customLong("prepare-recipe"), help: .hidden)
    public var prepareRecipe: String?
    @Argument(parsing: .allUnrecognized,
              help: ArgumentHelp("Overrides of configuration fields: --key value (keys as --show-config prints them).",
                                 valueName: "--key value"))
    public var overrides: [String] = []

    public init() {}

    public func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs).") }
        guard mpiRanks >= 1 else { throw ValidationError("--mpi-ranks must be at least 1, got \(mpiRanks).") }
    }

    /// Whether missing models are trained in child processes (`--jobs` above 1, or `--mpi-ranks`).
    var inChildren: Bool { jobs > 1 || mpiRanks > 1 }

    /// The study's configuration for the profile with the overrides applied.
    public func configuration<S: Study>(_ study: S.Type) throws -> S.Configuration {
        var pairs = try ConfigurationOverrides.pairs(overrides)
        if let precision { pairs.insert((key: "generator.precision", value: precision.rawValue), at: 0) }
        return try ConfigurationOverrides.apply(pairs, to: S.configuration(profile))
    }

    /// Runs the study (or prints its configuration), exiting non-zero with a message on failure.
    public func run<S: Study>(_ study: S.Type) throws {
        guard S.profiles.contains(profile) else {
            throw ValidationError("study-\(S.name) has no \(profile.rawValue) profile; its profiles are "
                                  + S.profiles.map(\.rawValue).joined(separator: ", "))
        }
        let configuration: S.Configuration
        do { configuration = try self.configuration(study) } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
        if showConfig {
            for (key, value) in try ConfigurationOverrides.listing(configuration) { print("\(key) = \(value)") }
            return
        }
        setvbuf(stdout, nil, _IOLBF, 0)   // line by line, also into a log file
        let group = ProcessGroup.world
        if group.isDistributed && prepareKind == nil {
            throw ValidationError("a study runs as one process: start it without mpirun (--mpi-ranks N runs its trainings over MPI).")
        }
        if let threads { BLAS.setThreads(threads) }
        do { try ComputePolicy.use(precision) } catch let error as ConfigurationError { throw ValidationError(error.message) }
        let database = group.isRoot ? try ResultsDatabase(path: db) : nil   // rank 0 alone logs a training child's run
        let cacheURL = URL(fileURLWithPath: cache)
        let store = ModelStore(committed: URL(fileURLWithPath: models), cache: cacheURL.appendingPathComponent("models"),
                               tokenCache: cacheURL.appendingPathComponent("tokens"),
                               textFeatureCache: cacheURL.appendingPathComponent("text-features"),
                               database: database, profile: profile.rawValue, showProgress: !noProgress)
        if let kind = prepareKind, let recipe = prepareRecipe {
            // A child of --jobs: train one model and stop.
            let url = try StudyPrerequisite(kind: kind, recipe: recipe).prepare(in: store)
            print("ready: \(portablePath(url))")
            return
        }
        guard let database else { return }
        let context = StudyContext(study: S.name, profile: profile, database: database, store: store,
                                   resultsDirectory: URL(fileURLWithPath: results), showProgress: !noProgress)
        if inChildren || prepareOnly { try prepare(S.prerequisites(configuration, context: context), store: store) }
        if prepareOnly { return }
        if inChildren {
            context.prepare = { try self.prepare($0, store: store) }
            context.prepareWidth = jobs
        }
        context.remeasure = remeasure
        print("study \(S.name), profile \(profile.rawValue), \(BLAS.threads) thread(s), database \(db)")
        if let advice = BLASKernels.advice { print("note: " + advice) }
        _ = try StudyContext.execute(study, configuration: configuration, context: context)
    }

    /// Trains the missing models of `all`, `jobs` at a time in child processes of this executable
    /// (one thread each): VQ-VAEs and evaluators first, then the generators that train on them.
    func prepare(_ all: [StudyPrerequisite], store: ModelStore) throws {
        let missing = StudyPrerequisite.ordered(all).filter { !$0.isAvailable(in: store) }
        guard !missing.isEmpty else { return }
        print("preparing \(missing.count) model(s), \(jobs) at a time, "
              + (mpiRanks > 1 ? "each as \(mpiRanks) MPI ranks of one thread" : "one thread each"))
        let launcher = try self.launcher()
        for wave in [missing.filter { $0.kind != GeneratorRecipe.kind }, missing.filter { $0.kind == GeneratorRecipe.kind }] {
            var pending = wave[...]
            var running: [(process: Process, model: StudyPrerequisite)] = []
            var failed: [String] = []
            while !pending.isEmpty || !running.isEmpty {
                while running.count < jobs, let next = pending.popFirst() {
                    let child = Process()
                    (child.executableURL, child.arguments) = childCommand(next, launcher: launcher)
                    try child.run()
                    running.append((child, next))
                }
                usleep(200_000)
                running.removeAll { entry in
                    guard !entry.process.isRunning else { return false }
                    if entry.process.terminationStatus != 0 { failed.append(entry.model.summary) }
                    return true
                }
            }
            guard failed.isEmpty else {
                throw ValidationError("training failed for: \(failed.joined(separator: "; ")) (see the messages above)")
            }
        }
    }

    /// What starts the training children: this executable, or Open MPI's mpirun for
    /// `--mpi-ranks` above 1.
    func launcher() throws -> URL {
        guard mpiRanks > 1 else { return ProjectRoot.runningExecutable }
        do { return try MPIRun.find() } catch let error as ConfigurationError {
            throw ValidationError("--mpi-ranks \(mpiRanks): " + error.message)
        }
    }

    /// The program and arguments of the child that trains `model`: this executable with one
    /// thread and no progress bars, under `launcher` (mpirun -np N …) when that is not itself.
    func childCommand(_ model: StudyPrerequisite, launcher: URL) -> (URL, [String]) {
        let executable = ProjectRoot.runningExecutable
        let arguments = ["--profile", profile.rawValue, "--db", db, "--models", models, "--cache", cache,
                         "--threads", "1", "--no-progress", "--prepare-kind", model.kind, "--prepare-recipe", model.recipe]
        guard mpiRanks > 1 else { return (executable, arguments) }
        return (launcher, ["-np", String(mpiRanks), executable.path] + arguments)
    }
}
