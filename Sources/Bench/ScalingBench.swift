import Engine
import Experiments
import Foundation
import VQDiffusion

// `vqd-bench --scaling`: data-parallel training over processes against threads on this machine.
// The small preset's VQ-Diffusion training step at batch 32 on synthetic tokens (the
// `trainingStepCase` setting) in three layouts, each a child process of this executable:
//
//   1 process × 1 thread · 1 process × 2 threads (two data-parallel shards) ·
//   2 MPI ranks × 1 thread (mpirun -np 2, one shard each)
//
// and, for the ranks, the time per step spent summing the gradients (MPI_Allreduce of one flat fp32
// buffer, waiting for the slower rank included) and the same reduction timed alone after a barrier,
// with the gradients' bytes: what docs/distributed.md's estimate for more machines needs.

/// One layout's figures, as a worker prints them on one line and the parent reads them back.
struct ScalingFigures {
    var ranks = 1, threads = 1
    var stepsPerSecond = 0.0
    /// Per step: seconds in the gradient sum within the step, and the sum timed alone.
    var allreduceInStep = 0.0, allreduceAlone = 0.0
    var gradientBytes = 0

    static let prefix = "scaling-figures"

    var line: String {
        "\(Self.prefix) ranks=\(ranks) threads=\(threads) steps_per_s=\(stepsPerSecond) allreduce_in_step_s=\(allreduceInStep) "
            + "allreduce_alone_s=\(allreduceAlone) gradient_bytes=\(gradientBytes)"
    }

    init(ranks: Int, threads: Int) { (self.ranks, self.threads) = (ranks, threads) }

    init?(line: Substring) {
        guard line.hasPrefix(Self.prefix) else { return nil }
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let r = fields["ranks"].flatMap(Int.init), let t = fields["threads"].flatMap(Int.init),
              let s = fields["steps_per_s"].flatMap(Double.init), let a = fields["allreduce_in_step_s"].flatMap(Double.init),
              let b = fields["allreduce_alone_s"].flatMap(Double.init), let g = fields["gradient_bytes"].flatMap(Int.init)
        else { return nil }
        (ranks, threads, stepsPerSecond, allreduceInStep, allreduceAlone, gradientBytes) = (r, t, s, a, b, g)
    }
}

/// The worker: joins the MPI job when under mpirun, trains `steps` timed steps after 2 untimed ones,
/// times the gradient sum alone 5 times, and prints its figures on rank 0.
func runScalingWorker(steps: Int) throws {
    let group = try ProcessGroup.start()
    var settings = GeneratorSettings()
    (settings.preset, settings.synthetic, settings.batchSize, settings.steps, settings.warmupSteps) = ("small", true, 32, 100, 10)
    let recipe = GeneratorRecipe(family: .diffusion, vqvae: .defaults, settings: settings)
    let store = ModelStore(database: nil, profile: nil, showProgress: false, log: { _ in })
    let trainer = try recipe.prepareTrainer(store: store).trainer
    for _ in 0..<2 { _ = try trainer.advance() }
    let (reductions, communication) = (group.gradientReductions, group.gradientSeconds)
    let times = try (0..<steps).map { _ in
        let t0 = now()
        _ = try trainer.advance()
        return now() - t0
    }
    var figures = ScalingFigures(ranks: group.size, threads: BLAS.threads)
    figures.stepsPerSecond = 1 / median(times)
    if group.isDistributed {
        figures.allreduceInStep = (group.gradientSeconds - communication) / Double(group.gradientReductions - reductions)
        let parameters = trainer.trainedParameters.map(\.tensor)
        let alone = (0..<5).map { _ -> Double in
            group.barrier()
            let before = group.gradientSeconds
            group.sumGradients(parameters, weight: 1)
            return group.gradientSeconds - before
        }
        figures.allreduceAlone = median(alone)
        figures.gradientBytes = group.gradientBytes
    }
    if group.isRoot { print(figures.line) }
    group.finish()
}

/// The parent: the three layouts one after the other, then the table.
func runScaling(steps: Int, databasePath: String?) throws {
    let executable = ProjectRoot.runningExecutable
    let mpirun = try MPIRun.find()
    let worker = ["--scaling-worker", "--scaling-steps", String(steps)]
    let layouts: [(label: String, program: URL, arguments: [String])] = [
        ("1 process × 1 thread", executable, worker + ["--threads", "1"]),
        ("1 process × 2 threads (2 shards)", executable, worker + ["--threads", "2"]),
        ("2 MPI ranks × 1 thread", mpirun, ["-np", "2", executable.path] + worker + ["--threads", "1"]),
    ]
    print("vqd-bench --scaling: VQ-Diffusion small preset, batch 32, synthetic tokens; median of \(steps) steps after 2")
    var measured: [(label: String, figures: ScalingFigures)] = []
    for layout in layouts {
        let process = Process()
        process.executableURL = layout.program
        process.arguments = layout.arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let figures = output.split(separator: "\n").compactMap(ScalingFigures.init).first else {
            throw ConfigurationError("the layout \(layout.label) failed (exit status \(process.terminationStatus)); "
                + "its output: \(output.suffix(500))")
        }
        measured.append((layout.label, figures))
        print(padded(layout.label, 40) + String(format: "%7.2f steps/s", figures.stepsPerSecond))
    }
    let base = measured[0].figures.stepsPerSecond
    let threads = measured[1].figures, ranks = measured[2].figures
    print(String(format: "2 threads: %.2f×, 2 ranks: %.2f× one thread; ranks against threads: %.2f×",
                 threads.stepsPerSecond / base, ranks.stepsPerSecond / base, ranks.stepsPerSecond / threads.stepsPerSecond))
    let megabytes = Double(ranks.gradientBytes) / 1e6
    print(String(format: "gradients: %.1f MB (one flat fp32 buffer); allreduce per step %.1f ms within the step "
                 + "(waiting for the slower rank included), %.1f ms alone → %.2f GB/s",
                 megabytes, ranks.allreduceInStep * 1e3, ranks.allreduceAlone * 1e3, megabytes / 1e3 / ranks.allreduceAlone))
    guard let databasePath else { return }
    do {
        let db = try ResultsDatabase(path: databasePath)
        let run = try db.startRun(experiment: "bench", name: "scaling", profile: "bench", threads: 1)
        run.logParam("steps", steps)
        run.logMetric("steps_per_s.1x1", base, step: 0)
        run.logMetric("steps_per_s.1x2", threads.stepsPerSecond, step: 0)
        run.logMetric("steps_per_s.2x1", ranks.stepsPerSecond, step: 0)
        run.logMetric("allreduce_ms_in_step", ranks.allreduceInStep * 1e3, step: 0)
        run.logMetric("allreduce_ms_alone", ranks.allreduceAlone * 1e3, step: 0)
        run.logMetric("gradient_mb", megabytes, step: 0)
        try run.finish(status: .finished)
        print("logged as run \(run.id) in \(databasePath) (experiment \"bench\", run \"scaling\")")
    } catch {
        fputs("vqd-bench: could not log to \(databasePath): \(error)\n", stderr)
    }
}
