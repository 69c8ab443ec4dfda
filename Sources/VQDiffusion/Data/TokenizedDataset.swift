import Engine

/// A dataset split as VQ-VAE token grids plus captions: what the generators train on.
/// Produced once per (VQ-VAE, dataset, split) and cached, so training never re-runs the encoder.
public struct TokenizedDataset {
    /// (count, height, width) row-major code indices in 0..<codes.
    public var tokens: [Int32]
    public var count: Int
    /// Token grid height h and width w (N = h·w tokens per image).
    public var height: Int
    public var width: Int
    /// Codebook size K (the diffusion model's [MASK] is index K).
    public var codes: Int
    /// One caption per image.
    public var captions: [String]

    public init(tokens: [Int32], count: Int, height: Int, width: Int, codes: Int, captions: [String]) {
        precondition(tokens.count == count * height * width,
                     "\(tokens.count) tokens do not fill \(count) grids of \(height)×\(width)")
        precondition(captions.count == count, "\(captions.count) captions for \(count) token grids")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < codes }, "token outside 0..<\(codes)")
        self.tokens = tokens
        self.count = count
        self.height = height
        self.width = width
        self.codes = codes
        self.captions = captions
    }

    /// Tokens per image, N = h·w.
    public var sequenceLength: Int { height * width }

    /// The token grid of image `index`, flattened in raster order.
    public func grid(_ index: Int) -> ArraySlice<Int32> {
        let n = sequenceLength
        return tokens[(index * n)..<((index + 1) * n)]
    }

    /// The grids of samples `indices`, one after another (a training batch's tokens).
    public func grids(_ indices: [Int]) -> [Int32] {
        var out = [Int32]()
        out.reserveCapacity(indices.count * sequenceLength)
        for i in indices { out.append(contentsOf: grid(i)) }
        return out
    }
}
