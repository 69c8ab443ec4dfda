import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

/// `vqd models …`: the committed models the studies find by recipe, and sampling files.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the committed models, register one under its recipe, or export a sampling file.",
        discussion: """
            The studies find their prerequisite models by the hash of a recipe (every setting that \
            decides the weights): first in results/models/index.json, then in cache/models. \
            `vqd models list` shows both; `register` records a file of results/models under a recipe; \
            `export` writes the part of a generator checkpoint that sampling needs (EMA weights), a \
            quarter of its size. `train` trains a recipe into cache/models as a study would: run \
            several at once (each with --threads 1) to prepare a study's models in parallel.
            """,
        subcommands: [ModelsListCommand.self, ModelsRegisterCommand.self, ModelsExportCommand.self, ModelsTrainCommand.self])
}

struct ModelsListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the committed and cached models (with --recipes, each committed model's whole recipe).")
    @OptionGroup var folders: ModelFolderOptions
    @Flag(help: "Print each committed model's recipe file (every field), as `vqd models train --recipe` reads it.")
    var recipes = false

    func run() throws {
        let (models, cache) = (folders.models, folders.cache)
        let entries = try folders.store().index().values.sorted { $0.file < $1.file }
        print("committed (\(models)/\(ModelStore.indexName)):")
        if entries.isEmpty { print("  none") }
        for e in entries {
            print("  \(e.file)  \(e.kind)-\(e.key)  \(e.summary)")
            if recipes { print(try RecipeFile(try e.decodedRecipe()).json().split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")) }
        }
        let cached = ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [])
            .filter { $0.hasSuffix(".safetensors") && !$0.contains(".ckpt.") }.sorted()
        print("cached (\(cache)):")
        if cached.isEmpty { print("  none") }
        for name in cached { print("  \(name)") }
    }
}

/// `--recipe FILE|JSON` and `--kind`: a recipe given as a file (as --show-recipe and
/// `vqd models list --recipes` print it) or as inline JSON.
struct RecipeOptions: ParsableArguments {
    @Option(help: "The recipe: a recipe file, or its JSON inline (a bare recipe needs --kind).")
    var recipe: String
    @Option(help: "The recipe's kind when the JSON is a bare recipe: vqvae, evaluator or generator.")
    var kind: String?

    func load() throws -> any ModelRecipe {
        do {
            let trimmed = recipe.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.hasPrefix("{") ? try RecipeFile(json: trimmed, kind: kind).recipe
                                          : try RecipeFile(contentsOf: recipe, kind: kind).recipe
        } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
    }
}

struct ModelsRegisterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register", abstract: "Record a file of the committed folder as the model of a recipe.")
    @OptionGroup var recipe: RecipeOptions
    @Option(help: "The model file, inside the committed folder.")
    var file: String
    @OptionGroup var folders: ModelFolderOptions

    func run() throws {
        let store = folders.store()
        let name = URL(fileURLWithPath: file).lastPathComponent
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: folders.models).appendingPathComponent(name).path) else {
            throw ValidationError("\(name) is not in \(folders.models): copy the model there first")
        }
        let r = try recipe.load()
        try store.register(r, file: name)
        print("registered \(name) as \(type(of: r).kind)-\(r.key)")
    }
}

struct ModelsExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write the sampling part (EMA weights) of a generator checkpoint.")
    @Option(help: "The training checkpoint (vqd train --out).")
    var checkpoint: String
    @Option(help: "The sampling file to write.")
    var out: String
    @Option(help: "Record this VQ-VAE path in the exported configuration (e.g. the committed copy).")
    var vqvae: String?
    @Flag(help: "Store the weights as F16 (half the size; sampling reads them back as Float32).")
    var half = false

    func run() throws {
        try SamplingModelFile.export(checkpoint: URL(fileURLWithPath: checkpoint), to: URL(fileURLWithPath: out), vqvae: vqvae, half: half)
        print("wrote \(out)")
    }
}

struct ModelsTrainCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a recipe's model: into the cache as a study would, or afresh into --out.",
        discussion: """
            Without --out the model lands in cache/models/<kind>-<key>.safetensors under the same \
            lock a study takes, so a study started meanwhile waits for it instead of training it \
            twice, and an interrupted run resumes from its checkpoint; a recipe already committed or \
            cached is only reported. With --out the recipe is trained afresh into that file (a \
            committed model rebuilt from its recipe), its checkpoint beside it (--resume continues it). \
            Recipes are the files that --show-recipe and `vqd models list --recipes` print.
            """)
    @OptionGroup var recipe: RecipeOptions
    @Option(help: "Train afresh into this file instead of the cache.")
    var out: String?
    @Flag(help: "With --out: continue from the checkpoint beside it when there is one.")
    var resume = false
    @Option(help: "The profile recorded with the training run.")
    var profile = "paper"
    @Option(help: "BLAS and kernel threads (default: OpenBLAS's choice).")
    var threads: Int?
    @OptionGroup var database: DatabaseOption
    @OptionGroup var folders: ModelFolderOptions
    @Flag(help: "No progress bars.")
    var noProgress = false

    func run() throws {
        if let threads { BLAS.setThreads(threads) }
        let r = try recipe.load()
        let store = folders.store(database: try database.openForTraining(), profile: profile, showProgress: !noProgress)
        if let out {
            try trainAfresh(r, into: URL(fileURLWithPath: out), store: store)
            print("model: \(out)")
        } else {
            print("model: \(try store.model(r).path)")
        }
    }

    func trainAfresh(_ r: some ModelRecipe, into url: URL, store: ModelStore) throws {
        try ensureFolder(of: url.path)
        let checkpoint = URL(fileURLWithPath: VQVAETrainCommand.checkpointPath(for: url.path))
        var job = store.job(r, model: url, checkpoint: checkpoint)
        if !resume { job.output.resume = nil }
        try r.train(job, store: store)
    }
}

/// Refuses an output path whose folder does not exist, before any work is done.
func ensureFolder(of path: String) throws {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw CommandError("the folder of \(path) does not exist: create \(folder) first, or write elsewhere.")
    }
}
