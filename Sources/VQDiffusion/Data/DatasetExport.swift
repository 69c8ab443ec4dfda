import Foundation

/// Writing samples of any `CaptionedDataset` to a folder that `FolderDataset` reads back:
/// zero-padded PNG files (`00000.png`, `00001.png`, …; at least 5 digits) and a captions.jsonl
/// whose lines hold the file, the caption, the source index and, where the source knows them,
/// the structured attributes:
///
///     {"file":"00000.png","caption":"a small red circle in the top left corner","index":0,
///      "attributes":{"objects":[{"shape":"circle","color":"red","size":"small","center":[6.1,5.8],
///      "extent":7.4,"rgb":[214.2,45.0,37.9]}],"position":"top left","relation":null,
///      "template":"a {size} {color} {shape} {pos}"}}
///     {"file":"00000.png","caption":"a photo of a sneaker","index":0,"attributes":{"label":7,"class":"Sneaker"}}
///
/// Shapes coordinates are in pixels from the top-left corner; `rgb` is the jittered colour drawn.
public enum DatasetExport {
    /// The file name of sample `index` among `count`: at least 5 digits, more when needed.
    public static func fileName(index: Int, count: Int) -> String {
        let digits = max(5, String(max(count - 1, 0)).count)
        let number = String(index)
        return String(repeating: "0", count: max(0, digits - number.count)) + number + ".png"
    }

    /// Writes samples 0..<count of `data` into `directory` (created if needed). A folder that
    /// already holds files is refused unless `force` (then files of the same names are replaced;
    /// other files stay, and only the new ones are listed in captions.jsonl). Returns the file names.
    @discardableResult
    public static func export(_ data: any CaptionedDataset, count: Int, to directory: URL, force: Bool = false) throws -> [String] {
        guard count >= 1 && count <= data.count else {
            throw DatasetError("cannot export \(count) samples: the source has \(data.count); give a count from 1 to \(data.count).")
        }
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw DatasetError("\(directory.path) is a file, not a folder: choose another output folder.")
            }
            let existing = (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
            if !existing.isEmpty && !force {
                throw DatasetError("\(directory.path) is not empty (\(existing.count) entries): choose an empty or new folder, or pass --force to write into it.")
            }
        } else {
            do {
                try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw DatasetError("cannot create \(directory.path) (\(error.localizedDescription)): check the path and permissions.")
            }
        }
        var names: [String] = []
        var lines = ""
        for index in 0..<count {
            let sample = data.sample(at: index)
            let name = fileName(index: index, count: count)
            let image = sample.image
            try PNG.write(Image(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels),
                          to: directory.appendingPathComponent(name))
            lines += jsonLine(file: name, index: index, sample: sample) + "\n"
            names.append(name)
        }
        try AtomicFile.write(Data(lines.utf8), to: directory.appendingPathComponent(FolderDataset.captionsFileName))
        return names
    }

    /// One captions.jsonl line (no newline).
    public static func jsonLine(file: String, index: Int, sample: DatasetSample) -> String {
        var fields: [(String, JSONValue)] = [("file", .string(file)), ("caption", .string(sample.caption)), ("index", .int(index))]
        if let attributes = sample.attributes { fields.append(("attributes", json(attributes))) }
        return JSONValue.object(fields).text
    }

    /// The attributes as a JSON object (see the type's documentation for the keys).
    public static func json(_ attributes: SampleAttributes) -> JSONValue {
        switch attributes {
        case .classLabel(let label):
            let name = FashionMNIST.classNames.indices.contains(label) ? JSONValue.string(FashionMNIST.classNames[label]) : .null
            return .object([("label", .int(label)), ("class", name)])
        case .shapes(let scene):
            let objects = scene.objects.map { o in
                JSONValue.object([
                    ("shape", .string(o.shape.name)), ("color", .string(o.color.name)), ("size", .string(o.size.name)),
                    ("center", .array([.float(o.centerX), .float(o.centerY)])),
                    ("extent", .float(o.extent)),
                    ("rgb", .array([.float(o.red), .float(o.green), .float(o.blue)])),
                ])
            }
            return .object([
                ("objects", .array(objects)),
                ("position", scene.position.map { .string($0.name) } ?? .null),
                ("relation", scene.relation.map { .string($0.phrase) } ?? .null),
                ("template", .string(scene.template.description)),
            ])
        }
    }
}

/// A JSON value with object keys kept in the order given, written compactly.
public indirect enum JSONValue: Equatable, Sendable {
    case string(String), int(Int), number(Double), float(Float), array([JSONValue]), object([(String, JSONValue)]), null

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.text == b.text }

    /// The compact JSON text. Non-finite numbers become null; others use the shortest
    /// representation that reads back to the same Double (or Float, for `.float`).
    public var text: String {
        switch self {
        case .string(let s): return JSONValue.quoted(s)
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? "\(d)" : "null"
        case .float(let f): return f.isFinite ? "\(f)" : "null"
        case .null: return "null"
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.map { JSONValue.quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ s: String) -> String { jsonString(s) }
}
