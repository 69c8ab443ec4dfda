import Engine
import Foundation
import VQDiffusion

// The one training loop of the suite, for all four trainers (VQ-VAE, evaluator, VQ-Diffusion,
// VQ-AR), from the command line and from recipes alike:
//
//   open the run (status RUNNING; SIGINT/SIGTERM mark it KILLED) → log its parameters →
//   step … step, a progress bar with ETA, metrics averaged over each logging window, an atomic
//   checkpoint every N steps and at the end → the trainer's last words (save the model, measure
//   it) → close the run FINISHED, or FAILED with the error rethrown.
//
// A resumed trainer starts at its checkpoint's step and continues to the same total: the data
// order and noise are functions of the seed and the step, so the result is the uninterrupted one.
//
// Under MPI (`ProcessGroup.world` of several ranks) every rank runs this loop and takes every step
// on its rows of the batch; rank 0 alone opens the run, logs, draws the progress bar, writes the
// checkpoints and has the last words. Before the first step, at every checkpoint and at the last
// step the ranks check that they hold the same checkpoint, byte for byte, and stop with an error
// naming the ranks that differ otherwise.

/// Where a training run logs and saves, and how often.
public struct TrainingOutput {
    /// The checkpoint written every `checkpointEvery` steps and at the end (nil: none).
    public var checkpoint: URL?
    public var checkpointEvery: Int = 500
    /// Continue from this checkpoint (usually the same file) instead of starting afresh.
    public var resume: URL?
    /// The results database (nil: log nothing).
    public var database: ResultsDatabase?
    public var experiment: String
    public var runName: String?
    /// Recorded with the run (a study's profile).
    public var profile: String?
    /// Steps per logging window.
    public var logEvery: Int = 10
    public var showProgress: Bool = true

    public init(checkpoint: URL?, checkpointEvery: Int = 500, resume: URL? = nil, database: ResultsDatabase? = nil,
                experiment: String, runName: String? = nil, profile: String? = nil, logEvery: Int = 10,
                showProgress: Bool = true) {
        self.checkpoint = checkpoint
        self.checkpointEvery = checkpointEvery
        self.resume = resume
        self.database = database
        self.experiment = experiment
        self.runName = runName
        self.profile = profile
        self.logEvery = logEvery
        self.showProgress = showProgress
    }

    /// Opens a run in the results database (when there is one, on rank 0 of an MPI job alone),
    /// logs `params`, runs `body`, and closes the run as finished — or as failed, rethrowing, when
    /// `body` throws. A signal that ends the process marks it killed (`RunTermination`).
    public func withRun<T>(params: [String: String], _ body: (Run?) throws -> T) throws -> T {
        let group = ProcessGroup.world
        guard group.isRoot,
              let run = try database?.startRun(experiment: experiment, name: runName, profile: profile, threads: BLAS.threads) else {
            return try body(nil)
        }
        run.logParams(params)
        if group.isDistributed { run.setTag("sys.mpi_ranks", String(group.size)) }
        return try run.closing(body)
    }
}

public enum TrainingLoop {
    /// Trains `trainer` until its step reaches `steps`, inside a run opened by `output` with
    /// `params`, then calls `finish` (inside the same run, so a failure there fails the run; on
    /// rank 0 alone under MPI).
    public static func run<T: Trainer>(_ trainer: T, until steps: Int, label: String, output: TrainingOutput,
                                       params: [String: String], finish: (T, Run?) throws -> Void = { _, _ in }) throws {
        var params = params
        params["resumed_from_step"] = "\(trainer.step)"
        params["steps"] = "\(steps)"
        try output.withRun(params: params) { run in
            try train(trainer, until: steps, label: label, output: output, run: run)
            if ProcessGroup.world.isRoot { try finish(trainer, run) }
        }
    }

    /// The steps themselves, logging to `run`. Besides the trainer's figures, every logged step
    /// records the compute this run has spent so far: `compute/wall_seconds` (of the steps) and
    /// `compute/cpu_seconds` (the process's CPU time over them, all threads), so that a model's
    /// training compute is the sum over its runs (a resumed model has several).
    /// Under MPI, the seconds each step spent summing the ranks' gradients are logged too
    /// (`mpi/allreduce_ms`, averaged over the window).
    public static func train(_ trainer: some Trainer, until steps: Int, label: String, output: TrainingOutput,
                             run: Run?) throws {
        guard steps > trainer.step else { return }
        let group = ProcessGroup.world
        let first = trainer.step
        try checkpoint(trainer, to: nil, group: group, run: run)
        let cpuStart = MonotonicClock.processCPUSeconds()
        var wallSeconds = 0.0
        let progress = output.showProgress && group.isRoot ? ProgressBar(total: steps - first, label: label) : nil
        var window = Window()
        while trainer.step < steps {
            let communication = group.gradientSeconds
            var report = try trainer.advance()
            if group.isDistributed { report.averaged.append(("mpi/allreduce_ms", 1000 * (group.gradientSeconds - communication))) }
            window.add(report)
            wallSeconds += report.seconds
            let step = trainer.step
            progress?.update(step - first, values: report.shown.map { ($0.name, $0.value) })
            if step % output.logEvery == 0 || step == steps, let run {
                for (name, value) in window.averages() { run.logMetric(name, value, step: step) }
                for (name, value) in report.latest { run.logMetric(name, value, step: step) }
                for (name, value) in window.rates() { run.logMetric(name, value, step: step) }
                for (name, value) in trainer.windowMetrics() { run.logMetric(name, value, step: step) }
                run.logMetric("compute/wall_seconds", wallSeconds, step: step)
                run.logMetric("compute/cpu_seconds", MonotonicClock.processCPUSeconds() - cpuStart, step: step)
                window = Window()
            }
            if step % output.checkpointEvery == 0 || step == steps {
                try checkpoint(trainer, to: output.checkpoint, group: group, run: run)
            }
        }
        progress?.finish()
    }

    /// Writes the trainer's checkpoint to `url` (when given), after checking under MPI that every
    /// rank holds the same one, byte for byte; rank 0 alone writes it.
    static func checkpoint(_ trainer: some Trainer, to url: URL?, group: ProcessGroup, run: Run?) throws {
        guard group.isDistributed else {
            if let url { try trainer.saveCheckpoint(to: url) }
            return
        }
        let bytes = TrainingCheckpoint.encode(try trainer.checkpointContents())
        try group.checkAgreement(TrainingCheckpoint.fingerprint(bytes), "the training state at step \(trainer.step)")
        run?.setTag("mpi.ranks_agree_at_step", String(trainer.step))
        if group.isRoot, let url { try AtomicFile.write(bytes, to: url) }
    }

    /// The figures of the steps since the last logged one.
    struct Window {
        var sums: [String: (total: Double, count: Int)] = [:]
        var order: [String] = []
        var work: [String: Double] = [:]
        var workOrder: [String] = []
        var seconds = 0.0

        mutating func add(_ report: TrainingStepReport) {
            seconds += report.seconds
            for (name, value) in report.averaged {
                if sums[name] == nil { sums[name] = (0, 0); order.append(name) }
                if value.isFinite { sums[name]!.total += value; sums[name]!.count += 1 }
            }
            for (name, value) in report.perStep {
                if work[name] == nil { work[name] = 0; workOrder.append(name) }
                work[name]! += value
            }
        }

        /// Each averaged figure's mean over the steps where it was finite.
        func averages() -> [(String, Double)] {
            order.compactMap { name in
                let s = sums[name]!
                return s.count > 0 ? (name, s.total / Double(s.count)) : nil
            }
        }

        /// Work per second over the window.
        func rates() -> [(String, Double)] {
            guard seconds > 0 else { return [] }
            return workOrder.map { ($0, work[$0]! / seconds) }
        }
    }
}
