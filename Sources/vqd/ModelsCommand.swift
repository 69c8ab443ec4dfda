import ArgumentParser
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
            quarter of its size.
            """,
        subcommands: [ModelsListCommand.self, ModelsRegisterCommand.self, ModelsExportCommand.self])
}

struct ModelsListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List committed and cached models.")
    @Option(help: "The committed models folder.")
    var models = "results/models"
    @Option(help: "The folder of models trained on demand.")
    var cache = "cache/models"

    func run() throws {
        let store = ModelStore(committed: URL(fileURLWithPath: models), cache: URL(fileURLWithPath: cache), database: nil, profile: nil)
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
        let data = Data(recipe.utf8)
        let key: String
        do {
            switch kind {
            case VQVAERecipe.kind:
                let r = try JSONDecoder().decode(VQVAERecipe.self, from: data); try store.register(r, file: name); key = r.key
            case EvaluatorRecipe.kind:
                let r = try JSONDecoder().decode(EvaluatorRecipe.self, from: data); try store.register(r, file: name); key = r.key
            case GeneratorRecipe.kind:
                let r = try JSONDecoder().decode(GeneratorRecipe.self, from: data); try store.register(r, file: name); key = r.key
            default:
                throw ValidationError("--kind must be vqvae, evaluator or generator, got \(kind)")
            }
        } catch let error as DecodingError {
            throw ValidationError("the recipe is not a valid \(kind) recipe: \(error)")
        }
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
