import Engine

/// Learned position embeddings of an h×w token grid: one table for rows and one for columns,
/// summed, so position (i, j) in raster order n = i·w + j gets row_i + column_j.
public final class PositionEmbedding2D: Module {
    public let rows: Embedding      // (h, C)
    public let columns: Embedding   // (w, C)
    private let rowIndex: [Int32]   // (N) i of each raster position
    private let columnIndex: [Int32]

    public init(height: Int, width: Int, dimension: Int, std: Float = Embedding.defaultStd, using rng: inout RandomGenerator) {
        precondition(height >= 1 && width >= 1, "PositionEmbedding2D: grid \(height)×\(width) is empty")
        rows = Embedding(height, dimension, std: std, using: &rng)
        columns = Embedding(width, dimension, std: std, using: &rng)
        rowIndex = (0..<(height * width)).map { Int32($0 / width) }
        columnIndex = (0..<(height * width)).map { Int32($0 % width) }
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
