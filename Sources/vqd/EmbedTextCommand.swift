import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

/// `vqd embed-text`: run the frozen text encoder (all-MiniLM-L6-v2) on one prompt.
struct EmbedTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-text",
        abstract: "Encode a prompt with the frozen text encoder (all-MiniLM-L6-v2) and save the embedding as .npy.",
        discussion: """
            Prints the embedding's norm and first values and, with --out, writes the sentence \
            embedding (384 Float32: the mean of the last hidden states over the prompt's tokens, \
            L2-normalised) or, with --per-token, the conditioning features the generators see \
            ([max-length, 384]: each token's hidden state L2-normalised, padding rows 0). \
            Needs the weights fetched by `make deps`. A prompt longer than --max-length tokens \
            ([CLS] and [SEP] included) is truncated with a warning.
            """)

    @Option(help: "The text to encode (any Unicode; must not be empty or only whitespace).")
    var prompt: String?
    @Flag(help: "Print the token ids and WordPiece pieces.")
    var tokens = false
    @Flag(help: "Output the per-token features [max-length, 384] instead of the sentence embedding.")
    var perToken = false
    @Option(help: "Write the embedding or features to this .npy file (Float32).")
    var out: String?
    @Option(help: "Maximum tokens per prompt, [CLS] and [SEP] included.")
    var maxLength = MiniLMTextEncoder.defaultMaxLength
    @Option(help: .hidden)
    var benchmark: Int?

    func validate() throws {
        guard (3...512).contains(maxLength) else {
            throw ValidationError("--max-length must be between 3 and 512, got \(maxLength)")
        }
        if let benchmark, benchmark < 1 { throw ValidationError("--benchmark needs a positive count") }
        if benchmark == nil && prompt == nil { throw ValidationError("give the text to encode with --prompt \"…\"") }
    }

    func run() throws {
        let encoder = try MiniLMTextEncoder(files: .located(), maxLength: maxLength)
        if let benchmark { return try runBenchmark(encoder, repetitions: benchmark) }

        let result = try encoder.inspect(prompt ?? "")
        let encoding = result.encoding
        if tokens {
            print("tokens (\(encoding.ids.count)\(encoding.truncated ? ", truncated" : "")):")
            for (id, piece) in zip(encoding.ids, encoding.tokens) { print("  \(id)\t\(piece)") }
        }
        let values: [Float]
        let shape: [Int]
        if perToken {
            values = result.features.features.values
            shape = [maxLength, encoder.width]
            let real = result.features.mask.filter { $0 }.count
            print("per-token features [\(maxLength), \(encoder.width)]: \(real) real tokens, \(maxLength - real) padding rows (all 0)")
        } else {
            values = result.sentenceEmbedding.values
            shape = [encoder.width]
            print("sentence embedding [\(encoder.width)]")
        }
        let norm = values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        print(String(format: "norm: %.6f", norm))
        print("first values: " + values.prefix(8).map { String(format: "%.6f", $0) }.joined(separator: " "))
        if let out {
            try Npy.save(TensorData(shape: shape, .f32(values)), to: URL(fileURLWithPath: out))
            print("wrote \(out) \(shape)")
        }
    }

    /// Encodes a 16-token caption `repetitions` times after a warm-up and prints the median time.
    private func runBenchmark(_ encoder: MiniLMTextEncoder, repetitions: Int) throws {
        let caption = "a small red circle in the top left corner next to a blue square"
        let length = try encoder.inspect(caption).encoding.ids.count
        for _ in 0..<5 { _ = try encoder.inspect(caption) }
        var times: [Double] = []
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try encoder.inspect(caption)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        print(String(format: "embed-text benchmark: %d-token caption, %d runs, %d BLAS threads: median %.3f ms (min %.3f, max %.3f)",
                     length, repetitions, BLAS.threads, median, times.first!, times.last!))
    }
}
