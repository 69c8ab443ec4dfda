import Engine

/// Element types of arrays stored in files. Raw values are the safetensors dtype names.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f64 = "F64", i32 = "I32", i64 = "I64", u8 = "U8", f16 = "F16"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32, .i32: 4
        case .f64, .i64: 8
        case .u8: 1
        case .f16: 2
        }
    }
}

/// The values of a stored array, typed. The engine's `Tensor` is Float32 only; everything else
/// (token ids, generator state, step counters, images) travels as one of these.
public enum TensorValues: Equatable, Sendable {
    case f32([Float]), f64([Double]), i32([Int32]), i64([Int64]), u8([UInt8])
    /// IEEE half precision, as bit patterns (weights stored at half size; read back as Float).
    case f16([UInt16])

    public var dtype: DType {
        switch self {
        case .f32: .f32
        case .f64: .f64
        case .i32: .i32
        case .i64: .i64
        case .u8: .u8
        case .f16: .f16
        }
    }

    public var count: Int {
        switch self {
        case .f32(let v): v.count
        case .f64(let v): v.count
        case .i32(let v): v.count
        case .i64(let v): v.count
        case .u8(let v): v.count
        case .f16(let v): v.count
        }
    }

    /// The raw little-endian bytes (this code assumes a little-endian host, checked at runtime).
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case .f32(let v): try v.withUnsafeBytes(body)
        case .f64(let v): try v.withUnsafeBytes(body)
        case .i32(let v): try v.withUnsafeBytes(body)
        case .i64(let v): try v.withUnsafeBytes(body)
        case .u8(let v): try v.withUnsafeBytes(body)
        case .f16(let v): try v.withUnsafeBytes(body)
        }
    }

    /// Values of `dtype` decoded from `count` little-endian elements at `bytes`.
    static func decode(_ dtype: DType, count: Int, from bytes: UnsafeRawBufferPointer) -> TensorValues {
        precondition(bytes.count == count * dtype.byteSize,
                     "\(bytes.count) bytes do not hold \(count) values of \(dtype.rawValue)")
        func copy<T>(_: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: count) { out, n in
                if count > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
                n = count
            }
        }
        switch dtype {
        case .f32: return .f32(copy(Float.self))
        case .f64: return .f64(copy(Double.self))
        case .i32: return .i32(copy(Int32.self))
        case .i64: return .i64(copy(Int64.self))
        case .u8: return .u8(copy(UInt8.self))
        case .f16: return .f16(copy(UInt16.self))
        }
    }
}

/// A typed array with a shape: what safetensors and .npy files hold.
public struct TensorData: Equatable, Sendable {
    public let shape: [Int]
    public let values: TensorValues

    public init(shape: [Int], _ values: TensorValues) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == values.count,
                     "\(values.count) values do not fit shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// The values of a tensor (copied), dtype F32.
    public init(_ tensor: Tensor) {
        self.init(shape: tensor.shape, .f32(tensor.values))
    }

    public var dtype: DType { values.dtype }
    public var count: Int { values.count }
    public var byteCount: Int { count * dtype.byteSize }

    /// A Float32 tensor with these values; nil unless the dtype is F32.
    public func tensor() -> Tensor? {
        guard case .f32(let v) = values else { return nil }
        return Tensor(shape: shape, values: v)
    }

    /// Float32 values: F32 as stored, F16 widened.
    public var floats: [Float]? {
        switch values {
        case .f32(let v): v
        case .f16(let v): v.map { Float(Float16(bitPattern: $0)) }
        default: nil
        }
    }

    /// The same array with F32 values narrowed to F16 (rounded to nearest); other types unchanged.
    public func halved() -> TensorData {
        guard case .f32(let v) = values else { return self }
        return TensorData(shape: shape, .f16(v.map { Float16($0).bitPattern }))
    }
    public var doubles: [Double]? { if case .f64(let v) = values { v } else { nil } }
    public var int32s: [Int32]? { if case .i32(let v) = values { v } else { nil } }
    public var int64s: [Int64]? { if case .i64(let v) = values { v } else { nil } }
    public var bytes: [UInt8]? { if case .u8(let v) = values { v } else { nil } }
}

/// Byte order check for the raw copies in the file formats.
@inline(__always)
func requireLittleEndianHost() {
    precondition(UInt16(1).littleEndian == 1, "the file formats assume a little-endian host")
}

/// The number of elements of an array of `shape` (a file's header), or nil when it overflows Int.
func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for d in shape {
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = p
    }
    return count
}
