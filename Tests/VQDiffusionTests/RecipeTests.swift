import Engine
import Foundation
import Testing
@testable import Experiments
@testable import VQDiffusion

// Recipes: one per model kind, one JSON rule, the committed models' keys unchanged; and the one
// training loop every trainer goes through.

@Suite struct SchemaRuleTests {
    struct Inner: Codable, Equatable { var a = 1; var b = "x"; var later = false }
    struct Sample: VersionedSchema, Equatable {
        var first = 0
        var inner = Inner()
        var added = 0.5
        var addedNested = Inner()
        static let defaults = Sample()
        static let firstSchema = #"{"first":0,"inner":{"a":0,"b":0}}"#
    }

    @Test func laterFieldsAtTheirDefaultsAreLeftOut() throws {
        #expect(try SchemaJSON.encode(Sample()) == #"{"first":0,"inner":{"a":1,"b":"x"}}"#)
        var s = Sample()
        s.added = 2
        s.inner.later = true
        s.addedNested.b = "y"
        #expect(try SchemaJSON.encode(s) == #"{"added":2,"addedNested":{"b":"y"},"first":0,"inner":{"a":1,"b":"x","later":true}}"#)
    }

    @Test func absentFieldsReadAsTheirDefaults() throws {
        var expected = Sample()
        expected.first = 7
        expected.inner.a = 3
        #expect(try SchemaJSON.decode(Sample.self, from: #"{"first":7,"inner":{"a":3}}"#) == expected)
        var s = Sample()
        s.added = -1
        s.addedNested.later = true
        #expect(try SchemaJSON.decode(Sample.self, from: try SchemaJSON.encode(s)) == s)
    }

    @Test func numbersPrintAsTheEncoderPrintsThem() throws {
        struct Numbers: Encodable { var f: Float = 5e-4; var g: Float = 1e-5; var d = 0.045; var seed = UInt64.max; var n = -3 }
        #expect(try JSONTree(encoding: Numbers()).sortedJSON() == sortedJSON(Numbers()))
    }
}

@Suite struct RecipeTests {
    /// Every committed model's recipe, decoded from the index and hashed again, gives the key it
    /// was committed under; its file is there; a VQ-VAE file's recorded settings give the same recipe.
    @Test func committedModelsKeepTheirKeys() throws {
        let store = ModelStore(committed: packageRoot.appendingPathComponent("results/models"),
                               cache: URL(fileURLWithPath: "/nonexistent"), database: nil, profile: nil)
        let index = try store.index()
        #expect(index.count >= 7)
        for (key, entry) in index {
            let recipe = try entry.decodedRecipe()
            #expect(recipe.key == key, "\(entry.file)")
            #expect(try recipe.json() == entry.recipe, "\(entry.file)")
            let file = store.committed.appendingPathComponent(entry.file)
            #expect(FileManager.default.fileExists(atPath: file.path), "\(entry.file)")
            if let full = entry.fullRecipe {
                #expect(try RecipeFile.decode(kind: entry.kind, full).key == key, "\(entry.file)")
            }
            if entry.kind == VQVAERecipe.kind {
                #expect(try VQVAERecipe(file: file).key == key, "\(entry.file)")
            }
        }
    }

    @Test func recipeFilesRoundTripWithEveryField() throws {
        var s = GeneratorSettings()
        s.gridConvolution = true
        s.captionDropout = 0.1
        s.embeddingStd = 1
        s.trainCount = 20_000
        let recipe = GeneratorRecipe(family: .diffusion, vqvae: VQVAERecipe(dataset: .shapes, codes: 64), settings: s)
        let text = try RecipeFile(recipe).json()
        #expect(text.contains("\"gridConvolution\" : true") && text.contains("\"schema\" : \(RecipeFile.schemaVersion)"))
        #expect(text.contains("\"minimumLearningRate\""))                 // every field, defaults too
        let read = try RecipeFile(json: text).recipe as? GeneratorRecipe
        #expect(read == recipe)
        #expect(read?.key == recipe.key)
        // A bare recipe with only some fields reads the rest as defaults.
        let bare = try RecipeFile(json: #"{"family":"ar","settings":{"steps":10}}"#, kind: "generator").recipe as? GeneratorRecipe
        #expect(bare?.family == .ar && bare?.settings.steps == 10 && bare?.settings.batchSize == 32)
        #expect(thrownMessage { _ = try RecipeFile(json: text, kind: "vqvae") }?.contains("not a vqvae one") == true)
        #expect(thrownMessage { _ = try RecipeFile(json: "{\"kind\":\"nope\",\"recipe\":{}}") }?.contains("unknown model kind") == true)
    }

    /// Options added in schema 2 leave a recipe's key alone at their defaults and move it otherwise.
    @Test func newOptionsMoveTheKeyOnlyWhenSet() throws {
        let base = GeneratorRecipe(family: .diffusion, vqvae: VQVAERecipe(dataset: .shapes, codes: 64), settings: GeneratorSettings())
        let json = try base.json()
        for key in ["gridConvolution", "captionDropout", "embeddingStd", "shards", "synthetic", "textLength"] {
            #expect(!json.contains(key))
        }
        var grid = base
        grid.settings.gridConvolution = true
        #expect(grid.key != base.key)
        #expect(try grid.json().contains("\"gridConvolution\":true"))
        // VQ-AR's key ignores the diffusion-only loss options, and it refuses the diffusion model's initialisation.
        var ar = base, arLoss = base
        ar.family = .ar
        arLoss.family = .ar
        arLoss.settings.maskedWeight = 2
        arLoss.settings.referenceSchedule = true
        #expect(ar.key == arLoss.key)
        // The grid convolution applies to both (VQ-AR's is causal) and moves VQ-AR's key too.
        var arGrid = ar
        arGrid.settings.gridConvolution = true
        try arGrid.validate()
        #expect(arGrid.key != ar.key)
        var arEmbedding = ar
        arEmbedding.settings.embeddingStd = 1
        #expect(thrownMessage { try arEmbedding.validate() }?.contains("--embedding-std is a VQ-Diffusion option") == true)
    }

    @Test func validationNamesTheOption() throws {
        var r = GeneratorRecipe.defaults
        r.settings.captionDropout = 1
        #expect(thrownMessage { try r.validate() }?.contains("--caption-dropout") == true)
        r = .defaults
        r.settings.shards = 64
        #expect(thrownMessage { try r.validate() }?.contains("--shards") == true)
        var v = VQVAERecipe.defaults
        v.dataset = .folder
        #expect(thrownMessage { try v.validate() }?.contains("--folder") == true)
    }

    @Test func projectRootComesFromTheEnvironmentOrTheProjectFolder() {
        let elsewhere = URL(fileURLWithPath: "/")
        #expect(ProjectRoot.locate(environment: ["VQD_HOME": "/some/where"], current: elsewhere, executable: elsewhere).path == "/some/where")
        let fromExecutable = ProjectRoot.locate(environment: [:], current: elsewhere,
                                                executable: packageRoot.appendingPathComponent(".build/release/vqd"))
        #expect(fromExecutable.path == packageRoot.standardizedFileURL.path)
        let fromFolder = ProjectRoot.locate(environment: [:], current: packageRoot.appendingPathComponent("docs"), executable: elsewhere)
        #expect(fromFolder.path == packageRoot.standardizedFileURL.path)
    }
}

/// A trainer whose step is a counter, for the loop's own behaviour.
final class CountingTrainer: Trainer {
    var step = 0
    var saved: [Int] = []
    func advance() throws -> TrainingStepReport {
        step += 1
        return TrainingStepReport(averaged: [("value", Double(step)), ("sometimes", step % 2 == 0 ? 1 : .nan)],
                                  latest: [("last", Double(step))], perStep: [("work", 10)], seconds: 0.5)
    }
    func saveCheckpoint(to url: URL) throws { saved.append(step) }
    func checkpointContents() throws -> TrainingCheckpoint.Contents {
        try TrainingCheckpoint.Contents(kind: "counting", configuration: ["step": step], model: [],
                                        generator: RandomGenerator(seed: 0), step: step)
    }
}

@Suite(.serialized) struct TrainingLoopTests {
    @Test func logsWindowsAndCheckpointsOnSchedule() throws {
        let folder = TemporaryFolder()
        let db = try ResultsDatabase(path: folder.file("r.sqlite").path)
        let trainer = CountingTrainer()
        let output = TrainingOutput(checkpoint: folder.file("c"), checkpointEvery: 4, database: db, experiment: "loop",
                                    logEvery: 3, showProgress: false)
        try TrainingLoop.run(trainer, until: 10, label: "t", output: output, params: ["p": "1"])
        #expect(trainer.saved == [4, 8, 10])
        let run = try db.runs(experiment: "loop").first!
        #expect(run.status == .finished)
        #expect(try db.metric(runID: run.id, key: "value").map(\.value) == [2, 5, 8, 10])     // means of 1–3, 4–6, 7–9, 10
        #expect(try db.metric(runID: run.id, key: "sometimes").map(\.step) == [3, 6, 9, 10])
        #expect(try db.metric(runID: run.id, key: "last").map(\.value) == [3, 6, 9, 10])
        #expect(try db.metric(runID: run.id, key: "work").map(\.value) == [20, 20, 20, 20])   // 10 per 0.5 s
        #expect(try db.params(runID: run.id).contains { $0.key == "resumed_from_step" && $0.value == "0" })
    }

    @Test func aFailingStepFailsTheRun() throws {
        final class Failing: Trainer {
            var step = 0
            func advance() throws -> TrainingStepReport { throw ConfigurationError("step failed") }
            func saveCheckpoint(to url: URL) throws {}
            func checkpointContents() throws -> TrainingCheckpoint.Contents {
                try TrainingCheckpoint.Contents(kind: "failing", configuration: ["step": step], model: [],
                                                generator: RandomGenerator(seed: 0), step: step)
            }
        }
        let folder = TemporaryFolder()
        let db = try ResultsDatabase(path: folder.file("r.sqlite").path)
        let output = TrainingOutput(checkpoint: nil, database: db, experiment: "loop", showProgress: false)
        #expect(thrownMessage { try TrainingLoop.run(Failing(), until: 3, label: "t", output: output, params: [:]) } == "step failed")
        #expect(try db.runs(experiment: "loop").first?.status == .failed)
    }

    /// The evaluator, now resumable like every trainer: two steps, a checkpoint, two more steps
    /// equal four uninterrupted steps bit for bit.
    @Test func evaluatorResumeEqualsAnUninterruptedRun() throws {
        let folder = TemporaryFolder()
        let data = try ShapesDataset(ShapesConfiguration(imageSize: 16, seed: 0, split: .train, count: 64))
        let settings = TrainingRunSettings.evaluator.with(steps: 4, batchSize: 8, learningRate: 2e-3, seed: 1)
        let configuration = EvaluatorConfiguration.tiny(.shapes, imageSize: 16)
        let straight = try EvaluatorTrainer(configuration, training: settings, dataset: data)
        for _ in 0..<4 { _ = try straight.advance() }
        let first = try EvaluatorTrainer(configuration, training: settings, dataset: data)
        for _ in 0..<2 { _ = try first.advance() }
        let checkpoint = folder.file("e.ckpt.safetensors")
        try first.saveCheckpoint(to: checkpoint)
        let resumed = try EvaluatorTrainer(configuration, training: settings, dataset: data)
        try resumed.resume(from: checkpoint)
        #expect(resumed.step == 2)
        for _ in 0..<2 { _ = try resumed.advance() }
        for (a, b) in zip(straight.evaluator.namedParameters, resumed.evaluator.namedParameters) {
            #expect(a.tensor.values == b.tensor.values, "\(a.name)")
        }
    }
}

/// The committed generator and evaluator files' configurations read, and write back, as stored
/// (the same document; a sampling file's exporter may have written its slashes unescaped).
@Suite struct CheckpointConfigurationTests {
    @Test func committedConfigurationsRoundTrip() throws {
        func same(_ written: String, _ stored: String) throws -> Bool { try JSONTree(parsing: written) == JSONTree(parsing: stored) }
        let folder = packageRoot.appendingPathComponent("results/models")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".safetensors") {
            let loaded = try TrainingCheckpoint.read(folder.appendingPathComponent(name))
            let stored = loaded.metadata[Safetensors.configurationKey]!
            switch loaded.kind {
            case DiffusionTrainer.checkpointKind:
                #expect(try same(SchemaJSON.encode(loaded.configuration(as: DiffusionRunConfiguration.self)), stored), "\(name)")
            case ARTrainer.checkpointKind:
                #expect(try same(SchemaJSON.encode(loaded.configuration(as: ARRunConfiguration.self)), stored), "\(name)")
            case Evaluator.checkpointKind:
                #expect(try same(SchemaJSON.encode(loaded.configuration(as: EvaluatorConfiguration.self)), stored), "\(name)")
            default: continue
            }
        }
    }
}

/// The command line as a user runs it: a recipe printed by --show-recipe trains the same model as
/// the flags it came from, and vqd finds the project's files from another folder.
@Suite(.serialized) struct RecipeCommandLineTests {
    /// Runs vqd with `arguments` in `folder`; returns its exit status and output.
    func vqd(_ arguments: [String], in folder: URL = packageRoot) throws -> (status: Int32, output: String) {
        try ChildProcess(try builtExecutable("vqd"), arguments, in: folder).finish()
    }

    @Test func aPrintedRecipeTrainsTheSameModelAsItsFlags() throws {
        let folder = TemporaryFolder()
        let flags = ["train", "--synthetic", "--preset", "tiny", "--steps", "3", "--warmup", "1", "--batch-size", "4",
                     "--caption-dropout", "0.2", "--shards", "1", "--db", folder.file("r.sqlite").path]
        let shown = try vqd(flags + ["--show-recipe"])
        #expect(shown.status == 0)
        try Data(shown.output.utf8).write(to: folder.file("recipe.json"))
        let recipe = try #require(try RecipeFile(contentsOf: folder.file("recipe.json").path).recipe as? GeneratorRecipe)
        #expect(recipe.settings.synthetic && recipe.settings.captionDropout == 0.2 && recipe.settings.steps == 3)
        // No --precision: the generator-training default of this machine (bf16 where native).
        #expect(recipe.settings.precision == ComputePolicy.defaultGeneratorTrainingPrecision)
        #expect(try vqd(flags + ["--out", folder.file("a.safetensors").path]).status == 0)
        #expect(try vqd(["train", "--recipe", folder.file("recipe.json").path, "--out", folder.file("b.safetensors").path,
                         "--db", folder.file("r.sqlite").path]).status == 0)
        let a = try Safetensors.read(folder.file("a.safetensors")), b = try Safetensors.read(folder.file("b.safetensors"))
        #expect(a.names == b.names)
        for name in a.names { #expect(a[name] == b[name], "\(name)") }
    }

    /// A run records the commit its process was handed (as a study hands its own to the trainings
    /// it starts), not whatever the repository's HEAD is by then.
    @Test func runsRecordTheCommitTheirProcessWasHanded() throws {
        let folder = TemporaryFolder()
        let commit = String(repeating: "c0ffee", count: 6) + "c0ff"
        let trained = try ChildProcess(try builtExecutable("vqd"),
                                       ["train", "--synthetic", "--preset", "tiny", "--steps", "1", "--warmup", "1",
                                        "--batch-size", "4", "--out", folder.file("m.safetensors").path,
                                        "--db", folder.file("r.sqlite").path],
                                       environment: ["VQD_GIT_COMMIT": commit]).finish()
        #expect(trained.status == 0, "\(trained.output)")
        let database = try ResultsDatabase(path: folder.file("r.sqlite").path, create: false)
        let runs = try database.connection.query("SELECT git_commit FROM runs").map { $0[0].text }
        #expect(!runs.isEmpty && runs.allSatisfy { $0 == commit }, "\(runs)")
    }

    @Test func samplesFromAnotherFolderAndRefusesAMissingOutputFolderFirst() throws {
        let elsewhere = TemporaryFolder()
        let model = "results/models/diffusion-shapes-32-tuned.safetensors"
        let tokens = try vqd(["sample", "--model", model, "--prompt", "a red circle", "--count", "1", "--steps", "2",
                              "--tokens-out", "t.npy"], in: elsewhere.url)
        #expect(tokens.status == 0, "\(tokens.output)")
        #expect(FileManager.default.fileExists(atPath: elsewhere.file("t.npy").path))
        let refused = try vqd(["sample", "--model", model, "--prompt", "a red circle", "--out", "missing/x.png"], in: elsewhere.url)
        #expect(refused.status != 0 && refused.output.contains("does not exist") && !refused.output.contains("sampled"))
    }
}
