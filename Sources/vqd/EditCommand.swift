import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

struct EditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Redraw a region of an image for a caption (inpainting) with a trained generator.",
        discussion: """
            The image (--image, or --dataset … --split … --index N) is tokenized by the model's \
            VQ-VAE; the tokens whose receptive field (the token's patch grown by --margin pixels) \
            meets the region (--box x0,y0,x1,y1 in pixels, x1 and y1 exclusive, or --mask, a PNG \
            whose non-black pixels mark it) are redrawn for --prompt, the caption of the whole \
            edited image. VQ-Diffusion holds the other tokens at their values through the whole \
            reverse process, so it fills the region with context on every side. A VQ-AR model \
            decodes in raster order: it keeps the tokens before the region's first token and draws \
            everything after it, the known tokens after it unused; the command says so. The sheet \
            (--out) shows the original, the region over it, then the results.
            """)

    @Option(help: "The image to edit (PNG of the model's image size). Without it: --index N of --dataset/--split.")
    var image: String?
    @OptionGroup var source: DatasetSourceOptions
    @Option(help: "With --dataset: the index of the image in the split.")
    var index: Int?
    @Option(help: "The region as x0,y0,x1,y1 in pixels (x1, y1 exclusive), e.g. 0,0,16,16.")
    var box: String?
    @Option(help: "The region as a PNG of the image's size: non-black pixels are redrawn.")
    var mask: String?
    @Option(help: "Pixels a token's receptive field reaches beyond its patch (default: half the VQ-VAE's downsampling).")
    var margin: Int?
    @Option(help: "The caption of the whole edited image (default: the dataset image's own caption).")
    var prompt: String?
    @OptionGroup var draw: GeneratorDrawOptions
    @OptionGroup var output: ImageOutputOptions

    func validate() throws {
        guard output.wantsImages else { throw ValidationError("Nothing to write: give --out and/or --out-dir.") }
        guard (box == nil) != (mask == nil) else { throw ValidationError("Give the region as exactly one of --box x0,y0,x1,y1 and --mask FILE.") }
        guard image != nil || index != nil else { throw ValidationError("Give the image: --image FILE, or --dataset … --split … --index N.") }
        guard image == nil || index == nil else { throw ValidationError("--image and --index are two ways to give the image: use one.") }
        if let margin, margin < 0 { throw ValidationError("--margin must be at least 0, got \(margin).") }
    }

    func run() throws {
        try output.checkFolders()
        let generator = try draw.generator()
        let (count, seed) = (draw.count, draw.seed)
        let f = try generator.downsampling()
        let (width, height) = (generator.gridWidth * f, generator.gridHeight * f)
        // The image and its caption.
        let original: Image, caption: String?
        if let image {
            original = try PNG.read(URL(fileURLWithPath: image))
            caption = nil
        } else {
            let dataset = try source.open(count: index! + 1)
            guard index! >= 0 && index! < dataset.count else {
                throw ValidationError("--index \(index!) is outside the split's \(dataset.count) images.")
            }
            let sample = dataset.sample(at: index!)
            (original, caption) = (sample.image, sample.caption)
        }
        guard original.width == width && original.height == height else {
            throw ValidationError("the image is \(original.width)×\(original.height); this model draws \(width)×\(height) images.")
        }
        guard let prompt = prompt ?? caption else { throw ValidationError("--prompt is needed: the caption of the whole edited image.") }
        let region = try self.region(width: width, height: height)
        let redrawn = region.tokens(downsampling: f, margin: margin ?? EditRegion.defaultMargin(downsampling: f))
        let imageTensor = original.tensor()
        let tokens = try generator.encode(imageTensor.reshape([1] + imageTensor.shape))
        let N = tokens.count
        let edit = TokenEdit(tokens: Array((0..<count).map { _ in tokens }.joined()),
                             kept: Array((0..<count).map { _ in redrawn.map { !$0 } }.joined()))
        print("redrawing \(redrawn.filter { $0 }.count) of \(N) tokens for \"\(prompt)\"")
        if generator.isAutoregressive {
            let kept = CheckpointGenerator.keptPrefixes(edit, tokensPerGrid: N)[0]   // every grid is the same image
            print("VQ-AR decodes in raster order: it keeps the \(kept) tokens before the region's first token and draws "
                  + "the other \(N - kept) anew; the \(redrawn[kept...].filter { !$0 }.count) known tokens after it cannot be used.")
        }
        var rng = RandomGenerator(seed: seed)
        let result = try generator.edit(captions: [String](repeating: prompt, count: count), edit, using: &rng)
        // Kept tokens that came back unchanged; every other token was drawn.
        var (kept, unchanged) = (0, 0)
        for i in result.indices where edit.kept[i] {
            kept += 1
            if result[i] == edit.tokens[i] { unchanged += 1 }
        }
        print(String(format: "kept tokens unchanged: %.1f %%; tokens drawn: %d", 100 * Double(unchanged) / Double(max(1, kept)),
                     result.count - unchanged))
        let images = Image.batch(try generator.decode(result, count: count))
        try output.write(images, leading: [original, Self.overlay(original, redrawn, downsampling: f)],
                         columns: min(count + 2, 10), caption: prompt)
    }

    /// The region from --box or --mask.
    func region(width: Int, height: Int) throws -> EditRegion {
        do {
            if let box {
                let v = box.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard v.count == 4, v.allSatisfy({ $0 != nil }) else {
                    throw ValidationError("--box takes four integers x0,y0,x1,y1, e.g. 0,0,16,16; got \(box).")
                }
                return try EditRegion(box: v[0]!, v[1]!, v[2]!, v[3]!, width: width, height: height)
            }
            let picture = try PNG.read(URL(fileURLWithPath: mask!))
            guard picture.width == width && picture.height == height else {
                throw ValidationError("the mask is \(picture.width)×\(picture.height); the image is \(width)×\(height).")
            }
            let channels = min(picture.channels, 3)
            let pixels = (0..<(width * height)).map { i in (0..<channels).contains { picture.pixels[i * picture.channels + $0] > 0 } }
            return try EditRegion(pixels: pixels, width: width, height: height)
        } catch let error as EditRegionError {
            throw ValidationError(error.message)
        }
    }

    /// The image with the redrawn tokens' patches tinted (red, or white on grey images).
    static func overlay(_ image: Image, _ redrawn: [Bool], downsampling f: Int) -> Image {
        var out = image
        let gw = image.width / f
        let tint: [Float] = image.channels >= 3 ? [255, 0, 0] : [255]
        for y in 0..<image.height {
            for x in 0..<image.width where redrawn[(y / f) * gw + x / f] {
                for c in 0..<min(image.channels, tint.count) {
                    let i = (y * image.width + x) * image.channels + c
                    out.pixels[i] = UInt8((Float(image.pixels[i]) + tint[c]) / 2)
                }
            }
        }
        return out
    }
}
