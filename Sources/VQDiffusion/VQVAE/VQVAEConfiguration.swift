import Foundation

/// The architecture and quantizer settings of a VQ-VAE (van den Oord et al., "Neural Discrete
/// Representation Learning", 2017, with the EMA codebook of its appendix A.1).
///
/// The encoder maps an image (C, H, W) to a grid (d, H/f, W/f) of vectors with f the
/// `downsampling` factor; each vector is replaced by its nearest of `codes` codebook entries, and
/// the decoder maps the quantized grid back to an image. The default gives 8×8 tokens for 32×32
/// images.
public struct VQVAEConfiguration: Codable, Equatable, Sendable {
    /// Image channels: 1 (grey) or 3 (RGB).
    public var channels: Int = 3
    /// Spatial downsampling factor f: 2, 4 or 8 (one stride-2 convolution per factor of 2).
    public var downsampling: Int = 4
    /// Feature widths from full resolution down to the token grid, log2(f) + 1 entries; nil takes
    /// `defaultWidths(downsampling:)`.
    public var widths: [Int]? = nil
    /// Residual blocks at the token-grid resolution, in the encoder and again in the decoder.
    public var residualBlocks: Int = 2
    /// Codebook size K.
    public var codes: Int = 512
    /// Code vector dimension d.
    public var codeDimension: Int = 64
    /// Weight β of the commitment loss ‖z_e − sg(z_q)‖² (eq. 3 of the paper).
    public var commitment: Float = 0.25
    /// Decay γ of the exponential moving averages of code counts and sums.
    public var emaDecay: Float = 0.99
    /// A code whose moving-average count (assignments per training batch) is below this is dead
    /// and is moved onto a random encoder output of the current batch after every step.
    public var restartThreshold: Float = 1

    public init(channels: Int = 3, downsampling: Int = 4, widths: [Int]? = nil, residualBlocks: Int = 2,
                codes: Int = 512, codeDimension: Int = 64, commitment: Float = 0.25, emaDecay: Float = 0.99,
                restartThreshold: Float = 1) {
        (self.channels, self.downsampling, self.widths) = (channels, downsampling, widths)
        (self.residualBlocks, self.codes, self.codeDimension) = (residualBlocks, codes, codeDimension)
        (self.commitment, self.emaDecay, self.restartThreshold) = (commitment, emaDecay, restartThreshold)
    }

    /// Number of stride-2 stages: log2(f).
    public var levels: Int { downsampling.trailingZeroBitCount }

    /// The widths in use, full resolution first.
    public var resolvedWidths: [Int] { widths ?? VQVAEConfiguration.defaultWidths(downsampling: downsampling) }

    /// 32 channels at full resolution, doubling per stage up to 128: f = 4 gives [32, 64, 128].
    public static func defaultWidths(downsampling: Int) -> [Int] {
        let levels = downsampling.trailingZeroBitCount
        return (0...levels).map { min(128, 32 << $0) }
    }

    /// A small model for tests: f = 4, widths [8, 16, 16], one residual block, 32 codes of size 8.
    public static let tiny = VQVAEConfiguration(channels: 3, downsampling: 4, widths: [8, 16, 16], residualBlocks: 1,
                                                codes: 32, codeDimension: 8)

    /// Throws when the configuration cannot build a model, saying which field to change.
    public func validate() throws {
        func fail(_ message: String) -> VQVAEError { VQVAEError(message) }
        guard channels == 1 || channels == 3 else { throw fail("channels is \(channels): a VQ-VAE takes 1- or 3-channel images.") }
        guard [2, 4, 8].contains(downsampling) else {
            throw fail("downsampling factor \(downsampling) is not supported: use 2, 4 or 8.")
        }
        let w = resolvedWidths
        guard w.count == levels + 1, w.allSatisfy({ $0 > 0 }) else {
            throw fail("widths \(w) must hold \(levels + 1) positive values for downsampling \(downsampling) (full resolution first).")
        }
        guard residualBlocks >= 0 else { throw fail("residualBlocks is \(residualBlocks): use 0 or more.") }
        guard codes >= 2 else { throw fail("codes is \(codes): a codebook needs at least 2 codes.") }
        guard codeDimension >= 1 else { throw fail("codeDimension is \(codeDimension): use at least 1.") }
        guard commitment >= 0 else { throw fail("commitment β is \(commitment): use a non-negative weight (0.25 is usual).") }
        guard emaDecay > 0 && emaDecay < 1 else { throw fail("emaDecay is \(emaDecay): use a value in (0, 1), e.g. 0.99.") }
        guard restartThreshold >= 0 else { throw fail("restartThreshold is \(restartThreshold): use 0 (never restart) or more.") }
    }

    /// The token grid (h, w) of an H×W image.
    public func tokenGrid(height: Int, width: Int) -> (height: Int, width: Int) {
        (height / downsampling, width / downsampling)
    }

    /// A one-line summary for logs.
    public var summary: String {
        "f=\(downsampling), widths \(resolvedWidths), \(residualBlocks) residual block(s), K=\(codes), d=\(codeDimension), β=\(commitment), EMA \(emaDecay)"
    }
}

/// A problem a user can fix: an unsupported option, an image of the wrong size, a mismatched file.
public struct VQVAEError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
