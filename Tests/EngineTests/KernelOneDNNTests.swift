import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel oneDNN matmul")
    struct KernelOneDNNTests {
        /// op(A)·op(B) in Double, row-major.
        func reference(_ a: [Float], _ b: [Float], M: Int, N: Int, K: Int, transposeA: Bool, transposeB: Bool) -> [Double] {
            var c = [Double](repeating: 0, count: M * N)
            for i in 0..<M { for j in 0..<N { for k in 0..<K {
                let x = transposeA ? a[k * M + i] : a[i * K + k]
                let y = transposeB ? b[j * K + k] : b[k * N + j]
                c[i * N + j] += Double(x) * Double(y)
            } } }
            return c
        }

        /// fp32 matches the dense reference to rounding, in every transpose and with accumulation;
        /// bf16 to bf16's 8-bit mantissa; primitives are reused across calls of one shape. 97 rows
        /// are split over two workers (each part a product of its own).
        @Test func matchesTheDenseReferenceInBothPrecisions() {
            var rng = RandomGenerator(seed: 5)
            let threads = BLAS.threads
            BLAS.setThreads(2)
            defer { BLAS.setThreads(threads) }
            for (M, N, K) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (97, 19, 41)] {
                for transposeA in [false, true] { for transposeB in [false, true] {
                    let a = (0..<(M * K)).map { _ in rng.normal() }, b = (0..<(K * N)).map { _ in rng.normal() }
                    let expected = reference(a, b, M: M, N: N, K: K, transposeA: transposeA, transposeB: transposeB)
                    let scale = sqrt(Double(K))
                    for precision in Precision.allCases {
                        var c = [Float](repeating: 0, count: M * N)
                        OneDNN.matmul(a, b, into: &c, M: M, N: N, K: K, transposeA: transposeA, transposeB: transposeB,
                                      precision: precision)
                        let worst = zip(c, expected).map { abs(Double($0) - $1) }.max()!
                        let tolerance = precision == .fp32 ? 1e-5 * scale : 2e-2 * scale
                        #expect(worst < tolerance, "\(M)×\(N)×\(K) tA \(transposeA) tB \(transposeB) \(precision): \(worst)")
                        // += : the same product again on top.
                        OneDNN.matmul(a, b, into: &c, M: M, N: N, K: K, transposeA: transposeA, transposeB: transposeB,
                                      accumulate: true, precision: precision)
                        let worstTwice = zip(c, expected).map { abs(Double($0) - 2 * $1) }.max()!
                        #expect(worstTwice < 2 * tolerance, "accumulate \(precision): \(worstTwice)")
                    }
                } }
            }
        }

        @Test func bfloat16RoundsToNearestEven() {
            let values: [Float] = [1, 1 + 1 / 256, 1 + 1 / 128 + 1 / 256, -2.5, 0, .infinity]
            var out = [UInt16](repeating: 0, count: values.count)
            BFloat16.round(values, into: &out, count: values.count)
            // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
            #expect(out.map(BFloat16.float) == [1, 1, 1 + 1 / 64, -2.5, 0, .infinity])
            var nan = [UInt16](repeating: 0, count: 1)
            BFloat16.round([Float.nan], into: &nan, count: 1)
            #expect(BFloat16.float(nan[0]).isNaN)
        }
    
        /// The packed copies (oneDNN's reorder for the bf16 products, the 16-lane rounding of the
        /// emulation; transposed or not, a tail, a row stride wider than the rows) hold exactly the
        /// scalar rule's bf16 of every value, NaN and ties included.
        @Test func packedRoundingMatchesTheScalarRule() {
            var rng = RandomGenerator(seed: 21)
            for (rows, columns) in [(1, 1), (5, 37), (40, 19), (33, 64)] {
                let stride = columns + 3, transposedStride = rows + 2
                var x = (0..<(rows * stride)).map { _ in rng.normal() * 100 }
                x[0] = .nan
                if x.count > 1 { x[1] = 1 + 1 / 256 }
                let plain = OneDNN.bf16Copy(x, rows: rows, columns: columns, stride: stride)
                let floats = BFloat16.roundedFloats(x, rows: rows, columns: columns, stride: stride)
                defer { plain.deallocate(); floats.deallocate() }
                for r in 0..<rows { for c in 0..<columns {
                    let expected = BFloat16.bits(x[r * stride + c])
                    #expect(plain[r * columns + c] == expected, "\(rows)×\(columns) [\(r), \(c)]")
                    #expect(floats[r * columns + c].bitPattern == BFloat16.float(expected).bitPattern)
                } }
                // The transpose of the columns × rows matrix stored with row stride `transposedStride`.
                let y = (0..<(columns * transposedStride)).map { _ in rng.normal() }
                let transposed = OneDNN.bf16Copy(y, rows: rows, columns: columns, stride: transposedStride, transposed: true)
                defer { transposed.deallocate() }
                for r in 0..<rows { for c in 0..<columns {
                    #expect(transposed[r * columns + c] == BFloat16.bits(y[c * transposedStride + r]))
                } }
            }
        }

        /// BLAS.gemm's whole contract (row strides wider than the rows, alpha, beta) on oneDNN gives
        /// OpenBLAS's result: in fp32 to rounding, in bf16 to bf16's precision.
        @Test func gemmWithStridesAlphaAndBetaMatchesOpenBLAS() {
            var rng = RandomGenerator(seed: 9)
            let (m, n, k) = (9, 11, 13)
            for transA in [false, true] { for transB in [false, true] {
                let (lda, ldb, ldc) = ((transA ? m : k) + 3, (transB ? k : n) + 2, n + 4)
                let a = (0..<((transA ? k : m) * lda)).map { _ in rng.normal() }
                let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.normal() }
                let c0 = (0..<(m * ldc)).map { _ in rng.normal() }
                var expected = c0
                BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                          beta: 2, c: &expected, ldc: ldc)
                for precision in Precision.allCases {
                    var c = c0
                    OneDNN.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                                beta: 2, c: &c, ldc: ldc, precision: precision)
                    var worst: Float = 0
                    for i in 0..<m { for j in 0..<n { worst = max(worst, abs(c[i * ldc + j] - expected[i * ldc + j])) } }
                    #expect(worst < (precision == .fp32 ? 1e-4 : 0.1), "tA \(transA) tB \(transB) \(precision): \(worst)")
                    // The padding between rows of C is left alone.
                    #expect((0..<m).allSatisfy { i in (n..<ldc).allSatisfy { c[i * ldc + $0] == c0[i * ldc + $0] } })
                }
            } }
        }
    
        /// A linear layer's forward and backward through the switch (BLAS.backend = .onednn) equal
        /// OpenBLAS's to rounding; bf16 (BLAS.precision) stays close.
        @Test func aLayerTrainsTheSameThroughTheSwitch() {
            func pass() -> [Float] {
                var rng = RandomGenerator(seed: 4)
                let layer = Linear(24, 16, activation: .gelu, using: &rng)
                let x = Tensor(shape: [5, 24], values: (0..<120).map { _ in rng.normal() })
                let y = layer(x)
                (y * y).sum().backward()
                return y.values + layer.weight.grad!.values
            }
            let reference = pass()
            defer { (BLAS.backend, BLAS.precision) = (.openblas, .fp32) }
            for (backend, precision, tolerance) in [(MatrixBackend.onednn, Precision.fp32, Float(1e-4)), (.onednn, .bf16, 0.25)] {
                (BLAS.backend, BLAS.precision) = (backend, precision)
                let other = pass()
                let worst = zip(reference, other).map { abs($0 - $1) }.max()!
                #expect(worst < tolerance, "\(backend) \(precision): \(worst)")
                // bf16 operands do change the numbers: the switch really routes the products.
                if precision == .bf16 { #expect(worst > 0) }
            }
        }

        /// Small integers are bf16-representable and their products sum exactly in fp32: there bf16
        /// must equal fp32 exactly, whatever the summation order.
        @Test func bf16IsExactOnRepresentableData() {
            var rng = RandomGenerator(seed: 12)
            let (M, N, K) = (19, 23, 37)
            let a = (0..<(M * K)).map { _ in Float(rng.int(below: 9) - 4) }, b = (0..<(K * N)).map { _ in Float(rng.int(below: 9) - 4) }
            var half = [Float](repeating: 0, count: M * N), full = half
            OneDNN.matmul(a, b, into: &half, M: M, N: N, K: K, precision: .bf16)
            OneDNN.matmul(a, b, into: &full, M: M, N: N, K: K, precision: .fp32)
            #expect(half == full)
        }

        /// The three convolution passes on oneDNN against the im2col kernels: forward overwrites,
        /// the gradients add into what is there; fp32 to rounding, bf16 within its precision, and
        /// exact on small integers.
        @Test func convolutionMatchesIm2col() {
            var rng = RandomGenerator(seed: 21)
            let geometries = [ConvGeometry(N: 3, C: 5, H: 9, W: 7, O: 6, kh: 3, kw: 3, stride: 1, padding: 1),
                              ConvGeometry(N: 2, C: 4, H: 8, W: 8, O: 3, kh: 4, kw: 4, stride: 2, padding: 1),
                              ConvGeometry(N: 2, C: 16, H: 5, W: 5, O: 8, kh: 1, kw: 1, stride: 1, padding: 0)]
            defer { BLAS.precision = .fp32; BLAS.backend = .openblas }
            for g in geometries {
                for integers in [false, true] {
                    func draw(_ n: Int) -> [Float] { (0..<n).map { _ in integers ? Float(rng.int(below: 7) - 3) : rng.normal() } }
                    let x = draw(g.N * g.C * g.H * g.W), w = draw(g.O * g.K), bias = draw(g.O)
                    let dy = draw(g.N * g.O * g.P)
                    let start = (dx: draw(x.count), dw: draw(w.count), db: draw(g.O))
                    func passes() -> [[Float]] {
                        var y = [Float](repeating: .nan, count: dy.count)
                        var (dx, dw, db) = start
                        conv2dForward(out: &y, x: x, weight: w, bias: bias, g)
                        conv2dBackward(dx: &dx, dweight: &dw, dbias: &db, dout: dy, x: x, weight: w, g)
                        return [y, dx, dw, db]
                    }
                    (BLAS.backend, BLAS.precision) = (.openblas, .fp32)
                    let reference = passes()
                    for precision in Precision.allCases {
                        (BLAS.backend, BLAS.precision) = (.onednn, precision)
                        let got = passes()
                        for (i, name) in ["y", "dx", "dw", "db"].enumerated() {
                            // Error relative to the size of what the pass computed (the gradients'
                            // increments over their starting values).
                            let base = [[Float](repeating: 0, count: dy.count), start.dx, start.dw, start.db][i]
                            let error = zip(reference[i], got[i]).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
                            let size = zip(reference[i], base).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
                            let tolerance = integers ? 0 : (precision == .fp32 ? 1e-6 : 1e-2)
                            #expect(error <= tolerance * size, "\(g) \(precision) integers \(integers) \(name): \(error / size)")
                        }
                    }
                }
            }
        }

        /// bf16 on the fp32 kernels (operands rounded, then sgemm) computes what oneDNN's bf16
        /// matmul computes: the same exact products, summed in another order.
        @Test func roundedOperandsOnFP32KernelsMatchOneDNNsBF16() {
            var rng = RandomGenerator(seed: 31)
            let (m, n, k) = (17, 29, 45)
            let a = (0..<(k * m)).map { _ in rng.normal() }, b = (0..<(n * k)).map { _ in rng.normal() }
            var viaOneDNN = [Float](repeating: 0, count: m * n), rounded = viaOneDNN, full = viaOneDNN
            OneDNN.gemm(transA: true, transB: true, m: m, n: n, k: k, a: a, lda: m, b: b, ldb: k, c: &viaOneDNN, ldc: n,
                        precision: .bf16)
            let saved = BLAS.roundsBF16OnFP32Kernels
            defer { BLAS.roundsBF16OnFP32Kernels = saved; BLAS.precision = .fp32 }
            BLAS.roundsBF16OnFP32Kernels = true
            BLAS.precision = .bf16
            BLAS.gemm(transA: true, transB: true, m: m, n: n, k: k, a: a, lda: m, b: b, ldb: k, c: &rounded, ldc: n)
            BLAS.precision = .fp32
            BLAS.gemm(transA: true, transB: true, m: m, n: n, k: k, a: a, lda: m, b: b, ldb: k, c: &full, ldc: n)
            let agreement = zip(viaOneDNN, rounded).map { abs($0 - $1) }.max()!
            let bf16Effect = zip(full, rounded).map { abs($0 - $1) }.max()!
            #expect(agreement < 1e-4, "rounded-operand sgemm against oneDNN bf16: \(agreement)")
            #expect(bf16Effect > 100 * agreement, "the rounding itself changes the result by \(bf16Effect)")
        }
    }
}
