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
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List committed and cached models.")
    @OptionGroup var folders: ModelFolderOptions

    func run() throws {
        let (models, cache) = (folders.models, folders.cache)
        let store = folders.store()
        let entries = try store.index().values.sorted { $0.file < $1.file }
        print("committed (\(models)/\(ModelStore.indexName)):")
        if entries.isEmpty { print("  none") }
        for e in entries { print("  \(e.file)  \(e.kind)-\(e.key)  \(e.summary)") }
        let cached = ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [])
            .filter { $0.hasSuffix(".safetensors") && !$0.contains(".ckpt.") }.sorted()
        print("cached (\(cache)):")
        if cached.isEmpty { print("  none") }
        for name in cached { print("  \(name)") }
    }
}

struct ModelsRegisterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register", abstract: "Record a file of the committed folder as the model of a recipe.")
    @Option(help: "The recipe's kind: vqvae, evaluator or generator.")
    var kind: String
    @Option(help: "The recipe as JSON (as `vqd models list` or a study's --show-config describe it).")
    var recipe: String
    @Option(help: "The model file, inside the committed folder.")
    var file: String
    @Option(help: "The committed models folder.")
    var models = "results/models"

    func run() throws {
        let store = ModelStore(committed: URL(fileURLWithPath: models), cache: URL(fileURLWithPath: "cache/models"),
                               database: nil, profile: nil)
        let name = URL(fileURLWithPath: file).lastPathComponent
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: models).appendingPathComponent(name).path) else {
            throw ValidationError("\(name) is not in \(models): copy the model there first")
        }
        let key = try decodeRecipe(kind: kind, json: recipe) { try store.register($0, file: name); return $0.key }
        print("registered \(name) as \(kind)-\(key)")
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

/// Decodes `json` as a recipe of `kind` and hands it to `body`.
func decodeRecipe<T>(kind: String, json: String, _ body: (any ModelRecipe) throws -> T) throws -> T {
    let recipe: any ModelRecipe
    do { recipe = try decodeModelRecipe(kind: kind, json: json) } catch let error as ConfigurationError {
        throw ValidationError(error.message)
    }
    return try body(recipe)
}

struct ModelsTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a recipe's model into the cache (or find it), as a study would.",
        discussion: """
            The model lands in cache/models/<kind>-<key>.safetensors under the same lock a study \
            takes, so a study started meanwhile waits for it instead of training it twice, and an \
            interrupted run resumes from its checkpoint. A recipe already committed or cached is \
            only reported. Recipes are the JSON that `vqd models list` and the index show.
            """)
    @Option(help: "The recipe's kind: vqvae, evaluator or generator.")
    var kind: String
    @Option(help: "The recipe as JSON.")
    var recipe: String
    @Option(help: "The profile recorded with the training run.")
    var profile = "paper"
    @Option(help: "BLAS and kernel threads (default: OpenBLAS's choice).")
    var threads: Int?
    @Option(help: "The results database (training runs are logged there).")
    var db = ResultsDatabase.defaultPath
    @OptionGroup var folders: ModelFolderOptions
    @Flag(help: "No progress bars.")
    var noProgress = false

    func run() throws {
        if let threads { BLAS.setThreads(threads) }
        let store = folders.store(database: try ResultsDatabase(path: db), profile: profile, showProgress: !noProgress)
        let url = try decodeRecipe(kind: kind, json: recipe) { try store.model($0) }
        print("model: \(url.path)")
    }
}
