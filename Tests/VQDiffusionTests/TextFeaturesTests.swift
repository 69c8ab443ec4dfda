import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// The conditioning features of the frozen encoder: normalisation, mask, padding invariance, the
/// feature cache (memory and disk) and bad input. Needs the weights of `make deps`; without them the
/// tests fail with a message saying to run it.
@Suite(.serialized)
struct TextFeaturesTests {
    static func encoder(maxLength: Int = 32, cacheDirectory: URL? = nil) throws -> (MiniLMTextEncoder, Warnings) {
        let encoder = try MiniLMTextEncoder(model: MiniLMReferenceTests.model(),
                                            tokenizer: MiniLMReferenceTests.files.tokenizer(),
                                            maxLength: maxLength, cacheDirectory: cacheDirectory)
        let warnings = Warnings()
        encoder.warning = { warnings.messages.append($0) }
        return (encoder, warnings)
    }

    final class Warnings { var messages: [String] = [] }

    static let captions = ["a small red circle in the top left corner", "a blue square to the left of a large green triangle",
                           "a green square below a red circle"]

    @Test func featuresAreUnitRowsWithTheRightMask() throws {
        let (encoder, _) = try Self.encoder()
        let text = try encoder.encode(Self.captions)
        #expect(text.features.shape == [3, 32, 384])
        #expect(encoder.width == 384 && encoder.maxLength == 32 && !encoder.isTrainable)
        let tokenizer = encoder.tokenizer
        let f = text.features.values
        for (b, caption) in Self.captions.enumerated() {
            let real = tokenizer.encode(caption, maxLength: 32, padded: false).ids.count
            for i in 0..<32 {
                #expect(text.mask[b * 32 + i] == (i < real))
                let row = f[((b * 32 + i) * 384)..<((b * 32 + i + 1) * 384)]
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if i < real { #expect(abs(norm - 1) < 1e-5) } else { #expect(norm == 0) }
            }
        }
    }

    @Test func featuresAreTheNormalisedHiddenStates() throws {
        let (encoder, _) = try Self.encoder()
        let caption = Self.captions[0]
        let ids = encoder.tokenizer.encode(caption, maxLength: 32, padded: false).ids
        let hidden = encoder.model.hiddenStates(ids: ids, batch: 1, length: ids.count).values
        let features = try encoder.encode([caption]).features.values
        for i in 0..<ids.count {
            let row = hidden[(i * 384)..<((i + 1) * 384)]
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for j in 0..<384 { #expect(abs(features[i * 384 + j] - row[i * 384 + j] / norm) < 1e-6) }
        }
    }

    @Test func paddingDoesNotChangeRealTokens() throws {
        let (short, _) = try Self.encoder(maxLength: 16)
        let (long, _) = try Self.encoder(maxLength: 32)
        let caption = Self.captions[1]
        let a = try short.encode([caption]), b = try long.encode([caption])
        let real = a.mask.filter { $0 }.count
        #expect(b.mask.filter { $0 }.count == real)
        let (fa, fb) = (a.features.values, b.features.values)
        for i in 0..<(real * 384) { #expect(abs(fa[i] - fb[i]) < 1e-6) }

        // The model itself: one caption padded to 32 in a batch with a longer one, against alone.
        let model = long.model
        let ids = long.tokenizer.encode(caption, maxLength: 32, padded: false).ids
        let alone = model.hiddenStates(ids: ids, batch: 1, length: ids.count).values
        let other = long.tokenizer.encode(Self.captions[0], maxLength: 32, padded: true)
        let padded = long.tokenizer.encode(caption, maxLength: 32, padded: true)
        let batch = model.hiddenStates(ids: other.ids + padded.ids, mask: other.attentionMask + padded.attentionMask,
                                       batch: 2, length: 32).values
        var worst: Float = 0
        for i in 0..<(ids.count * 384) { worst = max(worst, abs(batch[32 * 384 + i] - alone[i])) }
        #expect(worst < 1e-4, "padding changed real-token hidden states by \(worst)")
    }

    @Test func cacheHitReturnsIdenticalFeaturesWithoutRecomputing() throws {
        let (encoder, _) = try Self.encoder()
        let first = try encoder.encode(Self.captions)
        #expect(encoder.encodedCaptionCount == 3)
        let second = try encoder.encode(Self.captions.reversed() + Self.captions)
        #expect(encoder.encodedCaptionCount == 3)
        let (f1, f2) = (first.features.values, second.features.values)
        let n = 32 * 384
        for b in 0..<3 {
            #expect(Array(f1[(b * n)..<((b + 1) * n)]) == Array(f2[((2 - b) * n)..<((3 - b) * n)]))
            #expect(Array(f1[(b * n)..<((b + 1) * n)]) == Array(f2[((3 + b) * n)..<((4 + b) * n)]))
        }
        for b in 0..<3 {
            #expect(Array(second.mask[(b * 32)..<((b + 1) * 32)]) == Array(first.mask[((2 - b) * 32)..<((3 - b) * 32)]))
        }
    }

    @Test func diskCacheIsReusedByANewEncoder() throws {
        let folder = TemporaryFolder()
        let (writer, _) = try Self.encoder(cacheDirectory: folder.url)
        try writer.precompute(Self.captions + Self.captions)
        #expect(writer.encodedCaptionCount == 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(files == [TextFeatureCache.fileName(prefix: MiniLMTextEncoder.cachePrefix,
                                                    encoder: writer.model.fingerprint, maxLength: 32)])
        let (reader, _) = try Self.encoder(cacheDirectory: folder.url)
        #expect(reader.cache.count == 3)
        let again = try reader.encode(Self.captions)
        #expect(reader.encodedCaptionCount == 0)
        #expect(again.features.values == (try writer.encode(Self.captions)).features.values)
        #expect(again.mask == (try writer.encode(Self.captions)).mask)

        // A cache file of another length is a different file; a damaged one is refused plainly.
        let (other, _) = try Self.encoder(maxLength: 16, cacheDirectory: folder.url)
        #expect(other.cache.count == 0)
        let path = folder.url.appendingPathComponent(files[0])
        try Safetensors.save([], metadata: ["encoder": "0000000000000000", "max_length": "32", "width": "384"], to: path)
        let message = thrownMessage { _ = try Self.encoder(cacheDirectory: folder.url) }
        #expect(message?.contains("delete it") == true)
    }

    @Test func emptyOrBlankPromptsThrow() throws {
        let (encoder, _) = try Self.encoder()
        for blank in ["", "   ", "\t\n", "\u{3000}\u{00A0}"] {
            let message = thrownMessage { _ = try encoder.encode(["a red circle", blank]) }
            #expect(message?.contains("caption 2 is empty or only whitespace") == true, "\(blank.debugDescription)")
        }
        #expect(encoder.encodedCaptionCount == 0)
        // Characters the clean-up drops are not blank: such a caption encodes as [CLS] [SEP].
        let dropped = try encoder.encode(["\u{200B}\u{0007}"])
        #expect(dropped.mask.filter { $0 }.count == 2)
    }

    @Test func longPromptsAreTruncatedWithAWarning() throws {
        let (encoder, warnings) = try Self.encoder(maxLength: 8)
        let caption = "a small red circle in the top left corner next to a big blue square"
        let encoding = try encoder.tokenize(caption)
        #expect(encoding.truncated && encoding.ids.count == 8)
        #expect(warnings.messages.count == 1)
        #expect(warnings.messages.first?.contains("truncated from 17 to 8 tokens") == true)
        let text = try encoder.encode([caption])
        #expect(text.mask == [Bool](repeating: true, count: 8))
        #expect(warnings.messages.count == 2)
        _ = try encoder.encode([caption])                    // cached: no second computation, no warning
        #expect(warnings.messages.count == 2)
        _ = try encoder.encode(["a red circle"])
        #expect(warnings.messages.count == 2)
    }

    @Test func anyUnicodeIsAccepted() throws {
        let (encoder, _) = try Self.encoder()
        let text = try encoder.encode(["红色的圆在左上角", "🦜 parrot🫠melting", "ΣΑΣ Москва שלום مرحبا", "\u{E000}"])
        #expect(text.features.values.allSatisfy { $0.isFinite })
        #expect(text.mask.filter { $0 }.count >= 4 * 3)
    }

    @Test func choiceParsesAndMiniLMIsPreferredWhenPresent() throws {
        #expect(try TextEncoderChoice(parsing: " MiniLM ") == .minilm)
        #expect(try TextEncoderChoice(parsing: "tiny") == .tiny)
        #expect(thrownMessage { _ = try TextEncoderChoice(parsing: "clip") }?.contains("minilm, tiny") == true)
        #expect(TextEncoderChoice.preferred(files: MiniLMReferenceTests.files) == .minilm)
        let empty = TemporaryFolder()
        let missing = MiniLMFiles(directory: empty.url)
        #expect(TextEncoderChoice.preferred(files: missing) == .tiny)
        var rng = RandomGenerator(seed: 1)
        let message = thrownMessage {
            _ = try makeTextEncoder(choice: .minilm, captions: ["a red circle"], files: missing, using: &rng)
        }
        #expect(message?.contains("make deps") == true && message?.contains("--text-encoder tiny") == true)
    }
}
