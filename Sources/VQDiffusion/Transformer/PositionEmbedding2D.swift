import Engine
import Foundation

/// How the row and column tables of `PositionEmbedding2D` start.
public enum PositionInitialisation: String, Codable, Sendable, CaseIterable {
    /// Every entry drawn from N(0, std²), the reference's learned tables.
    case random
    /// Rows in the first half of the channels and columns in the second, as sine–cosine pairs
    /// whose frequencies run from π (period 2 tokens) down to π/(2·len) (a quarter period across
    /// the grid), scaled so that row + column has RMS std. The dot product of two positions then
    /// depends only on their offset along each axis, so attention can single out neighbours from
    /// the first step; the tables stay trainable.
    case sinusoidal
}

/// Learned position embeddings of an h×w token grid: one table for rows and one for columns,
/// summed, so position (i, j) in raster order n = i·w + j gets row_i + column_j.
public final class PositionEmbedding2D: Module {
    public let rows: Embedding      // (h, C)
    public let columns: Embedding   // (w, C)
    private let rowIndex: [Int32]   // (N) i of each raster position
    private let columnIndex: [Int32]

    /// The random tables are drawn in either case, so the parameters initialised after these are
    /// the same whichever start is chosen.
    public init(height: Int, width: Int, dimension: Int, std: Float = Embedding.defaultStd,
                initialisation: PositionInitialisation = .random, using rng: inout RandomGenerator) {
        precondition(height >= 1 && width >= 1, "PositionEmbedding2D: grid \(height)×\(width) is empty")
        rows = Embedding(height, dimension, std: std, using: &rng)
        columns = Embedding(width, dimension, std: std, using: &rng)
        if initialisation == .sinusoidal {
            precondition(dimension >= 4, "PositionEmbedding2D: sinusoidal tables need at least 4 channels, got \(dimension)")
            let half = dimension / 2
            Self.fillSinusoidal(rows.weight, channels: 0..<half, std: std)
            Self.fillSinusoidal(columns.weight, channels: half..<dimension, std: std)
        }
        rowIndex = (0..<(height * width)).map { Int32($0 / width) }
        columnIndex = (0..<(height * width)).map { Int32($0 % width) }
    }

    /// Writes position p's sine–cosine pairs into `channels` of row p of `table` and zeros elsewhere.
    private static func fillSinusoidal(_ table: Tensor, channels: Range<Int>, std: Float) {
        let (count, dimension) = (table.shape[0], table.shape[1])
        let pairs = channels.count / 2
        let amplitude = Double(std) * 2.0.squareRoot()   // sin² and cos² average ½ over the channels
        let lowest = Double.pi / Double(2 * count)
        let p = table.pointer
        for i in 0..<(count * dimension) { p[i] = 0 }
        for position in 0..<count {
            for k in 0..<pairs {
                let fraction = pairs > 1 ? Double(k) / Double(pairs - 1) : 0
                let frequency = Double.pi * Foundation.pow(lowest / Double.pi, fraction)
                let angle = frequency * Double(position)
                p[position * dimension + channels.lowerBound + 2 * k] = Float(amplitude * Foundation.sin(angle))
                p[position * dimension + channels.lowerBound + 2 * k + 1] = Float(amplitude * Foundation.cos(angle))
            }
        }
    }

    public var height: Int { rows.count }
    public var width: Int { columns.count }

    /// (1, N, C): the embedding of every raster position, to be added to (B, N, C) token embeddings.
    public func callAsFunction() -> Tensor {
        let n = height * width
        return rows(rowIndex, shape: [1, n]) + columns(columnIndex, shape: [1, n])
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        rows.visitParameters(prefix: childPrefix(prefix, "rows"), visit)
        columns.visitParameters(prefix: childPrefix(prefix, "columns"), visit)
    }
}
