import ArgumentParser
import Experiments
import Foundation
import VQDiffusion

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "Inspect, export and preview the captioned datasets.",
        subcommands: [DatasetStatsCommand.self, DatasetExportCommand.self, DatasetSheetCommand.self])
}

/// The dataset a command reads: shapes, fashion or folder.
typealias DatasetName = DatasetSelection.Source

struct DatasetStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Count the samples per attribute value, caption template, relation and split.",
        discussion: """
            Shapes: scenes with one or two objects, shapes, colours, sizes, grid positions, relations, \
            templates and held-out pairs, and the generation rate. Fashion-MNIST: classes and templates. \
            A folder (--dataset folder --folder DIR: PNG files plus captions.jsonl): samples, image \
            sizes as stored, channels, and caption lengths in characters and words.
            """)

    @OptionGroup var source: DatasetSourceOptions

    @Option(help: "Samples per split (Shapes: default 5000; Fashion-MNIST: default the whole split, otherwise its first N).")
    var count: Int?

    var dataset: DatasetName { source.dataset }
    var split: DatasetSplit? { source.split }
    var size: Int? { source.size }
    var seed: UInt64 { source.seed }

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
        if dataset == .folder && split != nil {
            throw ValidationError("a folder is a single split: leave out --split.")
        }
    }

    func run() throws {
        switch dataset {
        case .shapes: try shapesStats()
        case .fashion: try fashionStats()
        case .folder: try folderStats()
        }
    }

    func folderStats() throws {
        let data = try FolderDataset(directory: URL(fileURLWithPath: source.folder!), size: size, resize: source.resize)
        print(FolderStatistics(data).report)
    }

    /// A table of counts: one row per (attribute, value), one column per split.
    struct CountTable {
        var columns: [String] = []
        var rows: [(String, String)] = []
        var cells: [String: [Int]] = [:]

        mutating func add(_ attribute: String, _ value: String, column: Int, by n: Int = 1) {
            let key = attribute + "\u{1}" + value
            if cells[key] == nil {
                rows.append((attribute, value))
                cells[key] = [Int](repeating: 0, count: columns.count)
            }
            cells[key]![column] += n
        }

        func render() -> String {
            let valueWidth = max(5, rows.map { $0.1.count }.max() ?? 0)
            let attributeWidth = max(9, rows.map { $0.0.count }.max() ?? 0)
            func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
            func left(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
            var lines = [pad("attribute", attributeWidth) + "  " + pad("value", valueWidth)
                + columns.map { "  " + left($0, 8) }.joined()]
            var previous = ""
            for (attribute, value) in rows {
                let counts = cells[attribute + "\u{1}" + value]!
                lines.append(pad(attribute == previous ? "" : attribute, attributeWidth) + "  " + pad(value, valueWidth)
                    + counts.map { "  " + left(String($0), 8) }.joined())
                previous = attribute
            }
            return lines.joined(separator: "\n")
        }
    }

    func shapesStats() throws {
        let splits = split.map { [$0] } ?? DatasetSplit.allCases
        let n = count ?? 5_000
        let size = self.size ?? 32
        print("Shapes: \(size)×\(size), seed \(seed), \(n) samples per split")
        var table = CountTable(columns: splits.map(\.rawValue))
        // Row order: every value of every attribute, so that zero counts show.
        for (column, _) in splits.enumerated() {
            for k in [1, 2] { table.add("objects", "\(k)", column: column, by: 0) }
            for v in ShapeKind.allCases { table.add("shape", v.name, column: column, by: 0) }
            for v in ShapeColor.allCases { table.add("colour", v.name, column: column, by: 0) }
            for v in SizeClass.allCases { table.add("size", v.name, column: column, by: 0) }
            for v in GridPosition.allCases { table.add("position", v.name, column: column, by: 0) }
            for v in Relation.allCases { table.add("relation", v.phrase, column: column, by: 0) }
            for v in ShapesTemplate.allCases { table.add("template", v.description, column: column, by: 0) }
            table.add("held out", "scenes with one", column: column, by: 0)
        }
        var rates: [String] = []
        for (column, s) in splits.enumerated() {
            let data = try ShapesDataset(ShapesConfiguration(imageSize: size, seed: seed, split: s, count: n))
            let start = DispatchTime.now().uptimeNanoseconds
            for i in 0..<data.count {
                let sample = data.shapesSample(at: i)
                let scene = sample.scene
                table.add("objects", "\(scene.objects.count)", column: column)
                for o in scene.objects {
                    table.add("shape", o.shape.name, column: column)
                    table.add("colour", o.color.name, column: column)
                    table.add("size", o.size.name, column: column)
                }
                if let p = scene.position { table.add("position", p.name, column: column) }
                if let r = scene.relation { table.add("relation", r.phrase, column: column) }
                table.add("template", scene.template.description, column: column)
                if scene.containsHeldOutPair { table.add("held out", "scenes with one", column: column) }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            rates.append(String(format: "%@ %.0f", s.rawValue, Double(data.count) / max(seconds, 1e-9)))
        }
        print(table.render())
        print("generated and counted, images/s (one thread): " + rates.joined(separator: ", "))
    }

    func fashionStats() throws {
        let splits = split.map { [$0] } ?? [.train, .val, .test]
        print("Fashion-MNIST: 32×32 grey (28×28 padded), seed \(seed)")
        var table = CountTable(columns: splits.map(\.rawValue))
        for (column, _) in splits.enumerated() {
            table.add("samples", "all", column: column, by: 0)
            for name in FashionMNIST.classNames { table.add("class", name, column: column, by: 0) }
            for t in FashionMNIST.templates { table.add("template", t, column: column, by: 0) }
        }
        for (column, s) in splits.enumerated() {
            let data = try FashionMNIST(split: s, seed: seed)
            let n = Swift.min(count ?? data.count, data.count)
            table.add("samples", "all", column: column, by: n)
            for i in 0..<n {
                table.add("class", FashionMNIST.classNames[data.label(at: i)], column: column)
                table.add("template", FashionMNIST.templates[data.templateIndex(at: i)], column: column)
            }
        }
        print(table.render())
    }
}
