import Engine
import Foundation
import Testing
@testable import Experiments
@testable import VQDiffusion

// The studies' plumbing (overrides, model store, claims) and the four study executables run end to
// end with the quick profile.

struct OverrideSample: Codable, Equatable {
    struct Inner: Codable, Equatable {
        var steps: Int
        var rate: Double
        var flag: Bool
        var name: String
        var optional: Int?
    }
    var inner: Inner
    var list: [Double]
    var words: [String]
}

@Suite struct ConfigurationOverrideTests {
    let base = OverrideSample(inner: .init(steps: 10, rate: 0.5, flag: false, name: "a", optional: nil),
                              list: [0, 0.9], words: ["shapes"])

    @Test func setsNestedFieldsOfEveryType() throws {
        let pairs = try ConfigurationOverrides.pairs(["--inner.steps", "200", "--inner.rate=0.25", "--inner.flag", "true",
                                                      "--inner.name", "b", "--list", "0.1,0.3,1", "--words", "shapes,fashion",
                                                      "--inner.optional", "7"])
        let c = try ConfigurationOverrides.apply(pairs, to: base)
        #expect(c == OverrideSample(inner: .init(steps: 200, rate: 0.25, flag: true, name: "b", optional: 7),
                                    list: [0.1, 0.3, 1], words: ["shapes", "fashion"]))
    }

    @Test func rejectsUnknownKeysAndWrongTypes() throws {
        let unknown = thrownMessage { _ = try ConfigurationOverrides.apply([("steps", "3")], to: base) }
        #expect(unknown?.contains("unknown configuration key 'steps'") == true)
        #expect(unknown?.contains("inner.steps") == true)       // the close match is suggested
        let wrong = thrownMessage { _ = try ConfigurationOverrides.apply([("inner.steps", "many")], to: base) }
        #expect(wrong?.contains("takes a number") == true)
        let fraction = thrownMessage { _ = try ConfigurationOverrides.apply([("inner.steps", "2.5")], to: base) }
        #expect(fraction != nil)                                 // not an integer
        #expect(thrownMessage { _ = try ConfigurationOverrides.pairs(["steps"]) }?.contains("--key value") == true)
        #expect(thrownMessage { _ = try ConfigurationOverrides.pairs(["--steps"]) }?.contains("needs a value") == true)
    }

    @Test func namesWhatDiffersFromTheBase() throws {
        let changed = try ConfigurationOverrides.apply([("inner.steps", "20"), ("inner.optional", "3"), ("list", "0.5")], to: base)
        #expect(try ConfigurationOverrides.changes(changed, from: base) == ["inner.optional = 3", "inner.steps = 20", "list = 0.5"])
        #expect(try ConfigurationOverrides.changes(base, from: changed) == ["inner.optional = null", "inner.steps = 10", "list = 0,0.9"])
        #expect(try ConfigurationOverrides.changes(base, from: base).isEmpty)
        let table = ClaimsTable().markdown(study: "s", profile: .quick, runID: "r", seconds: 60, commit: nil, changes: ["inner.steps = 20"])
        #expect(table.contains("Configuration changed from the profile's: `inner.steps = 20`."))
    }

    @Test func listsEveryLeaf() throws {
        let keys = try ConfigurationOverrides.listing(base).map(\.key)
        #expect(keys == ["inner.flag", "inner.name", "inner.rate", "inner.steps", "list", "words"])
    }
}

/// A recipe whose "training" writes its value to the file and counts how often it ran.
struct CountingRecipe: ModelRecipe {
    static let kind = "counting"
    var value: Int
    var counter: String
    var summary: String { "counting \(value)" }
    static let defaults = CountingRecipe(value: 0, counter: "")
    static let firstSchema = #"{"value":0,"counter":0}"#

    func validate() throws {}

    func trainModel(_ job: TrainingJob, store: ModelStore) throws {
        let url = job.model!
        let previous = (try? String(contentsOfFile: counter, encoding: .utf8)).flatMap { Int($0) } ?? 0
        try String(previous + 1).write(toFile: counter, atomically: true, encoding: .utf8)
        Thread.sleep(forTimeInterval: 0.2)      // long enough for a second caller to arrive
        try AtomicFile.write(Data("\(value)".utf8), to: url)
    }
}

@Suite struct ModelStoreTests {
    @Test func trainsOnceAndFindsItByRecipe() throws {
        let folder = TemporaryFolder()
        let store = ModelStore(committed: folder.file("committed"), cache: folder.file("cache"), database: nil, profile: nil,
                               showProgress: false, log: { _ in })
        let counter = folder.file("count").path
        let recipe = CountingRecipe(value: 3, counter: counter)
        #expect(try store.existing(recipe) == nil)
        let url = try store.model(recipe)
        #expect(try String(contentsOf: url, encoding: .utf8) == "3")
        #expect(try store.model(recipe) == url)
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "1")
        // Another recipe, another model; the key depends on every field.
        #expect(CountingRecipe(value: 4, counter: counter).key != recipe.key)
        _ = try store.model(CountingRecipe(value: 4, counter: counter))
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "2")
    }

    /// A model's training compute is its last chain of runs: a copy trained earlier and lost (with
    /// another machine's cache) does not count, a resumption does.
    @Test func trainingComputeCountsTheLastChainOfRuns() throws {
        let folder = TemporaryFolder()
        let database = try ResultsDatabase(path: folder.file("results.sqlite").path)
        let recipe = CountingRecipe(value: 1, counter: "")
        func train(from first: Int, to last: Int, cpu: Double, _ status: RunStatus) throws {
            let run = try database.startRun(experiment: "train-counting", handleSignals: false)
            var params = ["key": recipe.key, "step_gflop": "2"]
            if first > 0 { params["resumed_from_step"] = String(first) }
            run.logParams(params)
            run.logMetric("compute/cpu_seconds", cpu, step: last)
            run.logMetric("compute/wall_seconds", cpu + 1, step: last)
            try run.finish(status: status)
            Thread.sleep(forTimeInterval: 0.005)    // distinct start times
        }
        let store = ModelStore(committed: folder.file("committed"), cache: folder.file("cache"), database: nil, profile: nil,
                               showProgress: false, log: { _ in })
        let context = StudyContext(study: "counting", profile: .quick, database: database, store: store,
                                   resultsDirectory: folder.url, showProgress: false)
        #expect(try context.trainingCompute(of: recipe).cpuSeconds.isNaN)
        try train(from: 0, to: 300, cpu: 40, .finished)     // a first copy, lost
        try train(from: 0, to: 150, cpu: 15, .killed)       // trained again, stopped,
        try train(from: 150, to: 300, cpu: 20, .finished)   // and resumed
        let compute = try context.trainingCompute(of: recipe)
        #expect(compute.cpuSeconds == 35 && compute.wallSeconds == 37 && compute.gflop == 600)
    }

    @Test func concurrentRequestsTrainOnce() throws {
        let folder = TemporaryFolder()
        let counter = folder.file("count").path
        let recipe = CountingRecipe(value: 5, counter: counter)
        let group = DispatchGroup()
        nonisolated(unsafe) var urls: [URL?] = [nil, nil, nil]
        for i in 0..<3 {
            group.enter()
            DispatchQueue.global().async {
                let store = ModelStore(committed: folder.file("committed"), cache: folder.file("cache"), database: nil,
                                       profile: nil, showProgress: false, log: { _ in })
                urls[i] = try? store.model(recipe)
                group.leave()
            }
        }
        group.wait()
        #expect(Set(urls.compactMap { $0 }).count == 1 && urls.allSatisfy { $0 != nil })
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "1")
    }

    @Test func baselineKeyIgnoresDiffusionOnlySettings() throws {
        let vqvae = VQVAERecipe(dataset: .shapes, codes: 64)
        var a = GeneratorSettings(), b = GeneratorSettings()
        b.auxiliaryWeight = 0.1
        b.gammaFinal = 0.5
        b.diffusionSteps = 20
        #expect(GeneratorRecipe(family: .ar, vqvae: vqvae, settings: a).key == GeneratorRecipe(family: .ar, vqvae: vqvae, settings: b).key)
        #expect(GeneratorRecipe(family: .diffusion, vqvae: vqvae, settings: a).key
                != GeneratorRecipe(family: .diffusion, vqvae: vqvae, settings: b).key)
        a.steps = 10
        #expect(GeneratorRecipe(family: .ar, vqvae: vqvae, settings: a).key != GeneratorRecipe(family: .ar, vqvae: vqvae, settings: b).key)
    }

    @Test func committedIndexComesFirst() throws {
        let folder = TemporaryFolder()
        let committed = folder.file("committed")
        try FileManager.default.createDirectory(at: committed, withIntermediateDirectories: true)
        let store = ModelStore(committed: committed, cache: folder.file("cache"), database: nil, profile: nil,
                               showProgress: false, log: { _ in })
        let recipe = CountingRecipe(value: 9, counter: folder.file("count").path)
        try Data("committed".utf8).write(to: committed.appendingPathComponent("model-9.safetensors"))
        try store.register(recipe, file: "model-9.safetensors")
        #expect(try store.model(recipe).lastPathComponent == "model-9.safetensors")
        #expect(!FileManager.default.fileExists(atPath: folder.file("count").path))    // never trained
        #expect(try store.index()[recipe.key]?.summary == "counting 9")
    }
}

/// The budget the studies built on the quality study's choices read: the override when given,
/// else the quality study's largest, with an error naming the override when a run lacks it.
@Suite struct QualityChoicesTests {
    @Test func budgetIsTheOverrideElseTheLargestRecorded() throws {
        var settings = GeneratorSettings()
        (settings.steps, settings.warmupSteps) = (5000, 400)
        let recipe = GeneratorRecipe(family: .diffusion, vqvae: VQVAERecipe(dataset: .shapes, codes: 64), settings: settings)
        let choice = QualityChoices.Choice(recipe: recipe, sampling: SamplingChoice(guidance: 1, truncation: 0.86))
        var choices = QualityChoices(run: "r", diffusion: choice, ar: choice, largestSteps: 10_000)
        #expect(try choices.budget(nil, key: "steps") == 10_000)
        #expect(try choices.budget(2500, key: "steps") == 2500)
        // The chosen recipe at another budget keeps its warm-up fraction.
        let largest = choice.recipe(steps: try choices.budget(nil, key: "steps"), seed: 1)
        #expect(largest.settings.steps == 10_000 && largest.settings.warmupSteps == 800 && largest.settings.seed == 1)
        choices.largestSteps = nil
        #expect(thrownMessage { _ = try choices.budget(nil, key: "tunedSteps") }?.contains("--tunedSteps") == true)
        #expect(try choices.budget(2500, key: "tunedSteps") == 2500)
    }
}

/// A measurement samples in the process's precision (a study's `--precision`) unless told
/// otherwise, and a recorded evaluation is matched on it.
@Suite(.serialized) struct GeneratorMeasurementTests {
    @Test func precisionDefaultsToTheProcessAndIsPartOfTheIdentity() {
        let recipe = GeneratorRecipe(family: .diffusion, vqvae: VQVAERecipe(dataset: .shapes, codes: 64), settings: GeneratorSettings())
        let dataset = DatasetModels.standard(.shapes, profile: .quick)
        func make(_ precision: Precision? = nil) -> GeneratorMeasurement {
            GeneratorMeasurement(name: "m", recipe: recipe, dataset: dataset, eval: .standard(.quick),
                                 sampling: GeneratorSamplingOptions(), precision: precision)
        }
        let saved = BLAS.precision
        defer { BLAS.precision = saved }
        BLAS.precision = .fp32
        #expect(make().precision == .fp32 && make(.bf16).precision == .bf16)
        BLAS.precision = .bf16
        #expect(make().precision == .bf16 && make(.fp32).precision == .fp32)
        #expect(make().identity["sampling_precision"] == "bf16")
        #expect(make(.fp32).identity["sampling_precision"] == "fp32")
    }
}

/// What `--jobs` prepares: each recipe once, VQ-VAEs and evaluators before generators, and the
/// recipe JSON decoding back to the same key.
@Suite struct StudyPrerequisiteTests {
    @Test func orderedOnceWithTheGeneratorsLast() throws {
        let vqvae = VQVAERecipe(dataset: .shapes, codes: 64)
        let evaluator = EvaluatorRecipe(dataset: .shapes)
        let diffusion = GeneratorRecipe(family: .diffusion, vqvae: vqvae, settings: GeneratorSettings())
        let ar = GeneratorRecipe(family: .ar, vqvae: vqvae, settings: GeneratorSettings())
        let list = [diffusion, ar].map(StudyPrerequisite.init) + [StudyPrerequisite(vqvae), StudyPrerequisite(evaluator),
                                                                  StudyPrerequisite(diffusion)]
        let ordered = StudyPrerequisite.ordered(list)
        #expect(ordered.map(\.fileName) == [vqvae.fileName, evaluator.fileName, diffusion.fileName, ar.fileName])
        for p in ordered {
            let decoded = try StudyPrerequisite(kind: p.kind, recipe: p.recipe)
            #expect(decoded == p)
        }
        #expect(throws: ConfigurationError.self) { try StudyPrerequisite(kind: "nonsense", recipe: "{}") }
        #expect(throws: ConfigurationError.self) { try StudyPrerequisite(kind: "vqvae", recipe: "{\"codes\": \"many\"}") }
    }
}

/// `--mpi-ranks`: a study's training children start under mpirun.
@Suite struct StudyMPIRanksTests {
    @Test func childrenRunUnderMpirunWithOneThreadEach() throws {
        let options = try StudyOptions.parse(["--jobs", "2", "--mpi-ranks", "2", "--profile", "quick"])
        let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")
        let model = StudyPrerequisite(VQVAERecipe.defaults)
        let (program, arguments) = options.childCommand(model, launcher: mpirun)
        #expect(program == mpirun)
        #expect(Array(arguments.prefix(3)) == ["-np", "2", ProjectRoot.runningExecutable.path])
        #expect(arguments.contains("--prepare-recipe") && arguments.contains(model.recipe))
        #expect(arguments.firstIndex(of: "--threads").map { arguments[$0 + 1] } == "1")
        let single = try StudyOptions.parse(["--jobs", "2"])
        #expect(single.childCommand(model, launcher: ProjectRoot.runningExecutable).0 == ProjectRoot.runningExecutable)
        let plain = try StudyOptions.parse([])
        #expect(single.inChildren && options.inChildren && !plain.inChildren)
        #expect(thrownMessage { _ = try StudyOptions.parse(["--mpi-ranks", "0"]) }?.contains("--mpi-ranks") == true)
    }
}

/// The five studies' quick profiles, run as a user runs them, sharing one database and one cache.
@Suite struct FeatureFileTests {
    @Test func roundTripsHalfPrecisionValuesAndRejectsDamage() throws {
        var rng = RandomGenerator(seed: 7)
        let values = (0..<(40 * 16)).map { i in i % 3 == 0 ? 0 : rng.uniform(0, 20) }
        let file = FeatureFile(rows: 40, columns: 16, values: values)
        // Stored values are the inputs rounded to binary16: relative error at most 2^-11.
        for (a, b) in zip(values, file.values) { #expect(abs(a - b) <= abs(a) * 0x1p-11) }
        #expect(file.values.map { Float(Float16($0)) } == file.values)
        let folder = TemporaryFolder()
        let url = folder.file("f.vqdf")
        try file.write(to: url)
        #expect(try FeatureFile.read(url) == file)
        let bytes = try [UInt8](Data(contentsOf: url))
        #expect(bytes.count < 40 * 16 * 2, "zeros should compress: \(bytes.count) bytes")
        // The digest names the content: equal for equal values, different after one change.
        var changed = values
        changed[5] += 1
        #expect(FeatureFile(rows: 40, columns: 16, values: values).digest == file.digest)
        #expect(FeatureFile(rows: 40, columns: 16, values: changed).digest != file.digest)
        // A truncated file, a wrong magic number and a bad compressed body are refused with the path.
        let truncated = thrownMessage { _ = try FeatureFile.decode(Array(bytes.dropLast(3)), source: url) }
        #expect(truncated?.contains("f.vqdf") == true && truncated?.contains("compressed bytes") == true)
        var magic = bytes
        magic[0] = 0x41
        #expect(thrownMessage { _ = try FeatureFile.decode(magic, source: url) }?.contains("no VQDF header") == true)
        var body = bytes
        for i in 24..<body.count { body[i] ^= 0x5a }
        #expect(thrownMessage { _ = try FeatureFile.decode(body, source: url) }?.contains("do not decompress") == true)
    }
}

@Suite(.serialized) struct StudyEndToEndTests {
    static let folder = TemporaryFolder()
    var db: String { Self.folder.file("results.sqlite").path }

    func arguments(_ extra: [String] = []) -> [String] {
        ["--profile", "quick", "--db", db, "--results", Self.folder.url.path, "--cache", Self.folder.file("cache").path,
         "--models", Self.folder.file("no-committed-models").path, "--no-progress"] + extra
    }

    func start(_ study: String, _ extra: [String] = []) throws -> ChildProcess {
        try ChildProcess(try builtExecutable("study-\(study)"), arguments(extra), in: packageRoot)
    }

    func finish(_ p: ChildProcess) -> (status: Int32, output: String) { p.finish() }

    func rows(_ sql: String) throws -> [[SQLValue]] {
        let database = try ResultsDatabase(path: db)
        return try database.withLock { try database.connection.query(sql) }
    }

    func text(_ v: SQLValue) -> String { if case .text(let s) = v { return s } else { return "" } }
    func integer(_ v: SQLValue) -> Int { if case .integer(let i) = v { return Int(i) } else { return 0 } }

    func studyRuns(_ study: String) throws -> [(id: String, status: String)] {
        try rows("""
            SELECT r.id, r.status FROM runs r JOIN experiments e ON e.id = r.experiment_id
            JOIN tags k ON k.run_id = r.id AND k.key = 'kind' AND k.value = 'study'
            WHERE e.name = 'study-\(study)' ORDER BY r.start_ms
            """).map { (id: text($0[0]), status: text($0[1])) }
    }

    func measurements(of studyRun: String) throws -> [(id: String, status: String, metrics: Int)] {
        try rows("""
            SELECT r.id, r.status, (SELECT count(*) FROM metrics m WHERE m.run_id = r.id) FROM runs r
            JOIN tags t ON t.run_id = r.id AND t.key = 'study_run' AND t.value = '\(studyRun)' ORDER BY r.start_ms
            """).map { (id: text($0[0]), status: text($0[1]), metrics: integer($0[2])) }
    }

    @Test func quickProfilesRunEndToEndAndDrawTheirFigures() throws {
        // Quality first: it trains the shared prerequisites (VQ-VAEs, evaluators, main generators).
        // Its bf16 check runs on any machine with bf16's numerics on the fp32 kernels.
        setenv(ComputePolicy.emulationVariable, "1", 1)
        let quality = finish(try start("quality"))
        #expect(quality.status == 0, "\(quality.output.suffix(2000))")
        #expect(quality.output.contains("## Claims: study quality (profile quick)"))
        // Mask and reparam at once, writing to the same database; mask trains four of its six models
        // (γ̄_T = 0.9 uses the quality study's tuned models), two at a time in child processes,
        // evaluating each pair as soon as it is trained.
        let mask = try start("mask", ["--jobs", "2"]), reparam = try start("reparam")
        let (m, r) = (finish(mask), finish(reparam))
        #expect(m.status == 0, "\(m.output.suffix(2000))")
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let speed = finish(try start("speed"))
        #expect(speed.status == 0, "\(speed.output.suffix(2000))")
        // Inpainting edits with the quality study's largest-budget models: nothing to train.
        let inpaint = finish(try start("inpaint"))
        #expect(inpaint.status == 0, "\(inpaint.output.suffix(2000))")
        #expect(!inpaint.output.contains("training "), "\(inpaint.output.prefix(2000))")
        #expect(inpaint.output.contains("kept tokens unchanged 100.0 %"), "VQ-Diffusion must keep every kept token: \(inpaint.output.suffix(2000))")
        #expect(m.output.components(separatedBy: "preparing 2 model(s), 2 at a time").count == 3, "\(m.output.prefix(3000))")
        // The prerequisites trained by the quality study are reused, not retrained.
        #expect(!m.output.contains("training vqvae") && !r.output.contains("training vqvae"))
        #expect(!m.output.contains("training evaluator") && !r.output.contains("training evaluator"))

        let reparamMeasurements = try measurements(of: try studyRuns("reparam").last!.id)
        #expect(reparamMeasurements.count == 15, "\(reparamMeasurements)")

        // Without their models the mask and reparam studies recall every evaluation from the
        // database and the features kept beside it: nothing trained, nothing measured, the same claims.
        let maskClaims = Self.folder.file("claims-mask-quick.md"), reparamClaims = Self.folder.file("claims-reparam-quick.md")
        let tableRows = { (text: String) in text.split(separator: "\n").filter { $0.hasPrefix("| ") } }
        let before = try String(contentsOf: maskClaims, encoding: .utf8)
        let reparamBefore = try String(contentsOf: reparamClaims, encoding: .utf8)
        let models = Self.folder.file("cache/models"), aside = Self.folder.file("generators-aside")
        try FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
        let generators = try FileManager.default.contentsOfDirectory(atPath: models.path).filter { $0.hasPrefix("generator-") }
        for file in generators { try FileManager.default.moveItem(at: models.appendingPathComponent(file), to: aside.appendingPathComponent(file)) }
        let again = finish(try start("mask", ["--jobs", "2"]))
        let reparamAgain = finish(try start("reparam"))
        for file in generators { try FileManager.default.moveItem(at: aside.appendingPathComponent(file), to: models.appendingPathComponent(file)) }
        #expect(again.status == 0, "\(again.output.suffix(2000))")
        #expect(!again.output.contains("training diffusion") && !again.output.contains("preparing"), "\(again.output.prefix(2000))")
        #expect(again.output.components(separatedBy: "not measured again").count == 7, "\(again.output.prefix(3000))")
        #expect(tableRows(try String(contentsOf: maskClaims, encoding: .utf8)) == tableRows(before))
        #expect(try measurements(of: try studyRuns("mask").last!.id).isEmpty)
        #expect(reparamAgain.status == 0, "\(reparamAgain.output.suffix(2000))")
        #expect(!reparamAgain.output.contains("training "), "\(reparamAgain.output.prefix(2000))")
        #expect(reparamAgain.output.components(separatedBy: "not measured again").count == 16, "\(reparamAgain.output.prefix(3000))")
        #expect(tableRows(try String(contentsOf: reparamClaims, encoding: .utf8)) == tableRows(reparamBefore))

        let expected = ["quality": 25, "mask": 0, "reparam": 0, "speed": 8, "inpaint": 6]
        for (study, count) in expected {
            let runs = try studyRuns(study)
            #expect(runs.last?.status == "FINISHED", "\(study): \(runs)")
            let children = try measurements(of: runs.last?.id ?? "")
            #expect(children.count == count, "\(study): \(children.count) measurement runs")
            #expect(children.allSatisfy { $0.status == "FINISHED" && $0.metrics > 0 }, "\(study): \(children)")
            let claims = Self.folder.file("claims-\(study)-quick.md")
            #expect(FileManager.default.fileExists(atPath: claims.path))
        }
        // Figures from the database alone.
        let (status, log) = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"),
                                             ["bash", packageRoot.appendingPathComponent("scripts/figures.sh").path,
                                              "-d", db, "-o", Self.folder.url.path, "-p", "quick"]).finish()
        #expect(status == 0, "\(log)")
        for study in expected.keys {
            let png = Self.folder.file("figures/\(study)-quick.png")
            let size = (try? FileManager.default.attributesOfItem(atPath: png.path)[.size] as? Int) ?? 0
            #expect(size > 10_000, "\(study): figure \(png.path) missing or empty; \(log)")
            let data = try String(contentsOf: Self.folder.file("data/\(study)-quick.tsv"), encoding: .utf8)
            #expect(!data.isEmpty, "\(study): no exported data")
        }
    }

    @Test func killedStudyKeepsEarlierRunsAndIsMarkedKilled() throws {
        // A slow speed study (longer timing budget, larger grid) interrupted after its first measurement.
        let p = try start("speed", ["--pointBudgetSeconds", "3", "--grids", "4,8,16", "--batches", "1,4"])
        var finishedChild: String?
        let deadline = Date().addingTimeInterval(120)
        while finishedChild == nil && Date() < deadline && p.process.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            if let run = try studyRuns("speed").last, run.status == "RUNNING" {
                finishedChild = try measurements(of: run.id).first { $0.status == "FINISHED" }?.id
            }
        }
        try #require(finishedChild != nil && p.process.isRunning, "the study ended before it could be interrupted")
        kill(p.process.processIdentifier, SIGTERM)
        let result = finish(p)
        #expect(result.status != 0)
        let run = try #require(try studyRuns("speed").last)
        #expect(run.status == "KILLED" || run.status == "FAILED")
        let children = try measurements(of: run.id)
        #expect(children.first { $0.id == finishedChild }?.status == "FINISHED")
        #expect(children.first { $0.id == finishedChild }.map { $0.metrics > 0 } == true)
        #expect(children.allSatisfy { $0.status != "RUNNING" }, "\(children)")
    }
}

@Test func linearSystemSolvesANonSymmetricSystem() {
    // A = [[2, 1, 0], [1, 3, 1], [0, 4, 5]] (row-major, not symmetric), x = [1, −2, 3].
    let a: [Double] = [2, 1, 0, 1, 3, 1, 0, 4, 5]
    let x: [Double] = [1, -2, 3]
    let b = (0..<3).map { i in (0..<3).reduce(0.0) { $0 + a[i * 3 + $1] * x[$1] } }
    let solved = solveLinearSystem(a, b)!
    #expect(zip(solved, x).allSatisfy { abs($0 - $1) < 1e-12 })
    #expect(solveLinearSystem([1, 2, 2, 4], [1, 2]) == nil)      // singular
}

@Suite struct SamplingModelFileTests {
    @Test func keepsTheEMAWeightsAndRewritesTheVQVAE() throws {
        let folder = TemporaryFolder()
        var config = DiffusionTrainingTests.configuration(steps: 10)
        config.vqvae = "somewhere/vqvae.safetensors"
        let trainer = try DiffusionTrainer(configuration: config, dataset: DiffusionTrainingTests.dataset(),
                                           textEncoder: WordVectorTextEncoder())
        for _ in 0..<5 { _ = try trainer.trainStep() }
        let checkpoint = folder.file("train.safetensors"), sampling = folder.file("sample.safetensors")
        try trainer.saveCheckpoint(to: checkpoint)
        try SamplingModelFile.export(checkpoint: checkpoint, to: sampling, vqvae: "results/models/v.safetensors")
        let full = try DiffusionModelFile(checkpoint), small = try DiffusionModelFile(sampling)
        for (a, b) in zip(full.model.namedParameters, small.model.namedParameters) {
            #expect(a.name == b.name && a.tensor.values == b.tensor.values)
        }
        #expect(small.configuration.vqvae == "results/models/v.safetensors")
        #expect(small.configuration.model == full.configuration.model && small.configuration.training == full.configuration.training)
        let sizes = try [checkpoint, sampling].map { try FileManager.default.attributesOfItem(atPath: $0.path)[.size] as! Int }
        #expect(sizes[1] * 3 < sizes[0])
        let raw = thrownMessage { _ = try DiffusionModelFile(sampling, useEMA: false) }
        #expect(raw?.contains("only the EMA weights") == true)

        // Half precision: half the size again, weights within F16 rounding, same predictions nearly.
        let half = folder.file("half.safetensors")
        try SamplingModelFile.export(checkpoint: checkpoint, to: half, half: true)
        let halfFile = try DiffusionModelFile(half)
        let halfSize = try FileManager.default.attributesOfItem(atPath: half.path)[.size] as! Int
        #expect(halfSize < sizes[1] * 6 / 10)
        for (a, b) in zip(full.model.namedParameters, halfFile.model.namedParameters) {
            let worst = zip(a.tensor.values, b.tensor.values).map { abs($0 - $1) / max(abs($0), 1e-3) }.max() ?? 0
            #expect(worst < 1e-3, "\(a.name): relative error \(worst)")
        }
        let text = try WordVectorTextEncoder().encode(["a red circle"])
        let x = [Int32](repeating: Int32(full.model.configuration.classes), count: full.model.configuration.tokens)
        let p = Autograd.withoutGrad { full.model(x, t: [5], text: text).values }
        let q = Autograd.withoutGrad { halfFile.model(x, t: [5], text: text).values }
        #expect(zip(p, q).map { abs($0 - $1) }.max()! < 1e-2)
    }
}
