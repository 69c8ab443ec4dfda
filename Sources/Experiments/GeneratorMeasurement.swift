import CLibs
import Engine
import Foundation
import VQDiffusion

/// One evaluation a study needs of a generator it trains: the model's recipe, where and how it is
/// evaluated, and the params that tell this evaluation apart from the study's others.
public struct GeneratorMeasurement {
    /// The measurement run's name.
    public var name: String
    public var recipe: GeneratorRecipe
    public var dataset: DatasetModels
    public var eval: EvalSettings
    public var sampling: GeneratorSamplingOptions
    /// Also measure the real-data floor at the same N.
    public var floor: Bool
    /// Params that identify the evaluation beside the recipe and the settings (a study's stage,
    /// say): a recorded evaluation is reused only where every one of them matches.
    public var params: [String: String]
    /// Params logged with the run but not matched (descriptions, the training's compute).
    public var notes: [String: String]
    /// The operands' precision of the sampling.
    public var precision: Precision

    /// `precision` nil: the process's (a study's `--precision`, fp32 by default).
    public init(name: String, recipe: GeneratorRecipe, dataset: DatasetModels, eval: EvalSettings,
                sampling: GeneratorSamplingOptions, floor: Bool = false, params: [String: String] = [:],
                notes: [String: String] = [:], precision: Precision? = nil) {
        (self.name, self.recipe, self.dataset, self.eval, self.sampling) = (name, recipe, dataset, eval, sampling)
        (self.floor, self.params, self.notes, self.precision) = (floor, params, notes, precision ?? BLAS.precision)
    }

    /// What a recorded evaluation must match: the recipe, every setting that decides the
    /// generated images and their scoring, and `params`.
    public var identity: [String: String] {
        var p = params
        p.merge(StudyContext.evaluationParams(dataset: dataset, eval: eval, sampling: sampling)) { $1 }
        p["recipe"] = recipe.key
        p["sampling_precision"] = precision.rawValue
        return p
    }
}

/// What a measurement found: the scores and the evaluator features of the generated and the real
/// images (rounded to half precision, as they are stored, whether measured now or recalled).
public struct MeasuredGenerator {
    public var scores: GeneratorScores
    public var generatedFeatures: [Float]
    public var referenceFeatures: [Float]
    /// The measurement run (of this study run, or of an earlier one when recalled).
    public var runID: String
}

extension StudyContext {
    /// Where the evaluator features of the measurements are kept: `features/` beside the database.
    public var featuresDirectory: URL {
        URL(fileURLWithPath: database.path).deletingLastPathComponent().appendingPathComponent("features")
    }

    /// Measures every one of `list`, in order. A measurement that an earlier run of the study
    /// recorded (same recipe, settings and params, with its features in `featuresDirectory`) is
    /// recalled rather than measured again, unless `remeasure`; its model is then not needed, so a
    /// study stopped on one machine continues on another without its models. The models still to
    /// measure are trained `prepareWidth` at a time through `prepare`, and each group is measured
    /// as soon as it is trained (models already present first): a study stopped midway loses at
    /// most the trainings of one group, and those resume from their checkpoints.
    public func measure(_ list: [GeneratorMeasurement]) throws -> [MeasuredGenerator] {
        var results = [MeasuredGenerator?](repeating: nil, count: list.count)
        if !remeasure {
            for (i, m) in list.enumerated() {
                results[i] = try recall(m)
                if let r = results[i] {
                    try markReused(r.runID)
                    print("\(m.name): FID \(formatNumber(r.scores.fid)), recorded by run \(r.runID) (features kept); not measured again")
                }
            }
        }
        // The models still to measure, in the list's order, the ones on this machine first.
        var recipes: [GeneratorRecipe] = []
        for (i, m) in list.enumerated() where results[i] == nil && !recipes.contains(where: { $0.key == m.recipe.key }) {
            recipes.append(m.recipe)
        }
        let present = try recipes.filter { try store.existing($0) != nil }
        let absent = recipes.filter { r in !present.contains { $0.key == r.key } }
        var groups = present.map { [$0] }
        var start = 0
        while start < absent.count {
            groups.append(Array(absent[start..<min(absent.count, start + max(1, prepareWidth))]))
            start += max(1, prepareWidth)
        }
        for group in groups {
            try prepare(group.map { StudyPrerequisite($0) })
            for recipe in group {
                for (i, m) in list.enumerated() where results[i] == nil && m.recipe.key == recipe.key {
                    results[i] = try measureNow(m)
                }
            }
        }
        return results.map { $0! }
    }

    /// Evaluates `m` now (training its model if it is missing), keeping its features in
    /// `featuresDirectory` (the run's own file and a shared one of the real images, named in the
    /// run's param `reference_features`) before the run finishes.
    func measureNow(_ m: GeneratorMeasurement) throws -> MeasuredGenerator {
        let url = try store.model(m.recipe)
        var params = m.notes
        params.merge(m.identity) { $1 }
        var kept: (generated: FeatureFile, reference: FeatureFile)?
        let directory = featuresDirectory
        let (scores, report) = try BLAS.withPrecision(m.precision) {
            try evaluateWithReport(m.name, generator: url, dataset: m.dataset, eval: m.eval, sampling: m.sampling,
                                   floor: m.floor, params: params) { run, report in
                let dimension = report.referenceFeatures.count / max(1, m.eval.count)
                let generated = FeatureFile(rows: report.generatedFeatures.count / max(1, dimension), columns: dimension,
                                            values: report.generatedFeatures)
                let reference = FeatureFile(rows: m.eval.count, columns: dimension, values: report.referenceFeatures)
                let referenceName = "reference-\(reference.digest).vqdf"
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try generated.write(to: directory.appendingPathComponent("\(run.id).vqdf"))
                let referenceURL = directory.appendingPathComponent(referenceName)
                if !FileManager.default.fileExists(atPath: referenceURL.path) { try reference.write(to: referenceURL) }
                run.logParams(["reference_features": referenceName])
                kept = (generated, reference)
            }
        }
        guard let runID = report.runID, let kept else { throw MetricError("the evaluation of \(m.name) kept no features") }
        return MeasuredGenerator(scores: scores, generatedFeatures: kept.generated.values,
                                 referenceFeatures: kept.reference.values, runID: runID)
    }

    /// Tags a recalled measurement run `reused_by:<study run>` (its `study_run` tag keeps naming
    /// the run that measured it), so that queries and figures of this study run find it.
    func markReused(_ runID: String) throws {
        try database.withLock {
            _ = try database.connection.query("INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?, ?, 'recalled')",
                                              [.text(runID), .text("reused_by:" + studyRun.id)])
        }
    }

    /// `m` as an earlier run of the study recorded it, with its features, if it did.
    func recall(_ m: GeneratorMeasurement) throws -> MeasuredGenerator? {
        guard let runID = try recordedRun(params: m.identity, metric: m.floor ? "floor/fid" : "fid") else { return nil }
        let params = Dictionary(try database.params(runID: runID).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        let generatedURL = featuresDirectory.appendingPathComponent("\(runID).vqdf")
        guard let referenceName = params["reference_features"],
              FileManager.default.fileExists(atPath: generatedURL.path) else { return nil }
        let generated = try FeatureFile.read(generatedURL)
        let reference = try FeatureFile.read(featuresDirectory.appendingPathComponent(referenceName))
        let values = Dictionary(try database.finalMetrics(runID: runID).compactMap { m in m.point.value.map { (m.key, $0) } },
                                uniquingKeysWith: { $1 })
        var alignment: [String: Double] = [:], throughput: [Int: Double] = [:]
        for (key, value) in values {
            let parts = key.split(separator: "/").map(String.init)
            if parts.count == 2 && parts[0] == "alignment" { alignment[parts[1]] = value }
            if parts.count == 3 && parts[0] == "throughput" && parts[2] == "images_per_second",
               let b = Int(parts[1].replacingOccurrences(of: "batch_", with: "")) { throughput[b] = value }
        }
        guard let fid = values["fid"] else { return nil }
        let scores = GeneratorScores(fid: fid, kid: values["kid"] ?? .nan, floorFID: values["floor/fid"], alignment: alignment,
                                     imagesPerSecond: throughput, parameters: Int(params["parameters"] ?? "") ?? 0)
        return MeasuredGenerator(scores: scores, generatedFeatures: generated.values, referenceFeatures: reference.values,
                                 runID: runID)
    }

    /// This study's latest finished measurement run whose params include every one of `params`
    /// and that recorded `metric`, if there is one.
    public func recordedRun(params: [String: String], metric: String) throws -> String? {
        let conditions = params.keys.sorted().enumerated().map { i, _ in
            "JOIN params p\(i) ON p\(i).run_id = r.id AND p\(i).key = ? AND p\(i).value = ?"
        }.joined(separator: " ")
        let arguments: [SQLValue] = params.sorted { $0.key < $1.key }.flatMap { [SQLValue.text($0.key), .text($0.value)] }
        return try database.withLock {
            try database.connection.query("""
                SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id \(conditions)
                JOIN tags k ON k.run_id = r.id AND k.key = 'kind' AND k.value = 'measurement'
                WHERE e.name = ? AND r.status = 'FINISHED'
                  AND EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.key = ? AND m.value IS NOT NULL)
                ORDER BY r.start_ms DESC LIMIT 1
                """, arguments + [.text(experiment), .text(metric)]).first?[0].text
        }
    }
}

/// A matrix of evaluator features kept with the results: rows × columns half-precision values,
/// zlib-compressed. Layout: "VQDF", version 1 (UInt32), rows, columns (UInt32 each), the
/// compressed length (UInt64), then the compressed little-endian binary16 values, row-major.
public struct FeatureFile: Equatable {
    public var rows: Int
    public var columns: Int
    /// The values as stored: rounded to half precision.
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for \(rows)×\(columns)")
        (self.rows, self.columns) = (rows, columns)
        self.values = values.map { Float(Float16($0)) }
    }

    /// A 16-hex-digit FNV-1a hash of the stored values (names the shared reference files).
    public var digest: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in values {
            var bits = Float16(v).bitPattern
            for _ in 0..<2 {
                h ^= UInt64(bits & 0xff)
                h = h &* 0x100_0000_01b3
                bits >>= 8
            }
        }
        return String(format: "%016llx", h)
    }

    public func encoded() throws -> Data {
        var raw = [UInt8](repeating: 0, count: values.count * 2)
        for (i, v) in values.enumerated() {
            let bits = Float16(v).bitPattern
            (raw[2 * i], raw[2 * i + 1]) = (UInt8(bits & 0xff), UInt8(bits >> 8))
        }
        var length = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(length))
        let status = compress2(&compressed, &length, raw, uLong(raw.count), 6)
        guard status == Z_OK else { throw MetricError("zlib could not compress the features (status \(status))") }
        var out = Data("VQDF".utf8)
        for word in [UInt32(1), UInt32(rows), UInt32(columns)] { withUnsafeBytes(of: word.littleEndian) { out.append(contentsOf: $0) } }
        withUnsafeBytes(of: UInt64(length).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: compressed[0..<Int(length)])
        return out
    }

    public func write(to url: URL) throws { try AtomicFile.write(try encoded(), to: url) }

    public static func read(_ url: URL) throws -> FeatureFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FileError(url, "cannot read the feature file: \(error.localizedDescription)")
        }
        return try decode([UInt8](data), source: url)
    }

    public static func decode(_ bytes: [UInt8], source: URL) throws -> FeatureFile {
        func fail(_ what: String) -> FileError { FileError(source, "not a valid feature file: \(what)") }
        /// The little-endian unsigned integer of `size` bytes at `at`.
        func integer(_ at: Int, _ size: Int) -> Int {
            Int((0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) })
        }
        guard bytes.count >= 24, Array(bytes[0..<4]) == Array("VQDF".utf8) else { throw fail("no VQDF header") }
        guard integer(4, 4) == 1 else { throw fail("version \(integer(4, 4)), this build reads version 1") }
        let (rows, columns, length) = (integer(8, 4), integer(12, 4), integer(16, 8))
        guard bytes.count == 24 + length else { throw fail("\(bytes.count - 24) compressed bytes where the header says \(length)") }
        var raw = [UInt8](repeating: 0, count: rows * columns * 2)
        var rawLength = uLong(raw.count)
        let status = bytes.withUnsafeBufferPointer { b in uncompress(&raw, &rawLength, b.baseAddress! + 24, uLong(length)) }
        guard status == Z_OK, Int(rawLength) == raw.count else {
            throw fail("the values do not decompress to \(rows)×\(columns) half-precision numbers (zlib status \(status))")
        }
        let values = (0..<(rows * columns)).map { i in Float(Float16(bitPattern: UInt16(raw[2 * i]) | UInt16(raw[2 * i + 1]) << 8)) }
        return FeatureFile(rows: rows, columns: columns, values: values)
    }
}
