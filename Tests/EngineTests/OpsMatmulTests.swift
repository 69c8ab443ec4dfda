import Testing
import Engine

extension OpsTests {
    @Suite struct OpsMatmulTests {
        /// Triple-loop reference: op(a) (M, K) × op(b) (K, N) for one batch entry at the given offsets.
        func naive(_ a: Tensor, _ b: Tensor, M: Int, K: Int, N: Int, tA: Bool, tB: Bool,
                   aOffset: Int = 0, bOffset: Int = 0) -> [Float] {
            var c = [Float](repeating: 0, count: M * N)
            for i in 0..<M { for j in 0..<N {
                var s: Float = 0
                for k in 0..<K {
                    let av = a.pointer[aOffset + (tA ? k * M + i : i * K + k)]
                    let bv = b.pointer[bOffset + (tB ? j * K + k : k * N + j)]
                    s += av * bv
                }
                c[i * N + j] = s
            } }
            return c
        }

        /// OpenBLAS's AVX-512 kernel families only ever run where the CPU has AVX-512.
        @Test func kernelFamilyMatchesTheCPU() {
            let avx512Families: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
            #expect(!BLASKernels.coreName.isEmpty)
            if avx512Families.contains(BLASKernels.coreName) { #expect(BLASKernels.cpuHasAVX512) }
        }

        @Test func twoDimensionalWithTransposes() {
            let (M, K, N) = (4, 5, 3)
            for tA in [false, true] { for tB in [false, true] {
                let a = opsUniform(tA ? [K, M] : [M, K], seed: 1)
                let b = opsUniform(tB ? [N, K] : [K, N], seed: 2)
                let c = matmul(a, b, transposeA: tA, transposeB: tB)
                #expect(c.shape == [M, N])
                #expect(opsMaxDiff(c.values, naive(a, b, M: M, K: K, N: N, tA: tA, tB: tB)) < 1e-5)
                let err = gradientError([a, b]) { matmul($0[0], $0[1], transposeA: tA, transposeB: tB) }
                #expect(err < 1e-2, "transposeA \(tA) transposeB \(tB): error \(err)")
            } }
        }

        @Test func batchedWithEqualBatchDimensions() {
            let (B, H, M, K, N) = (2, 3, 4, 5, 2)
            for tA in [false, true] { for tB in [false, true] {
                let a = opsUniform(tA ? [B, H, K, M] : [B, H, M, K], seed: 3)
                let b = opsUniform(tB ? [B, H, N, K] : [B, H, K, N], seed: 4)
                let c = matmul(a, b, transposeA: tA, transposeB: tB)
                #expect(c.shape == [B, H, M, N])
                var ref: [Float] = []
                for i in 0..<(B * H) {
                    ref += naive(a, b, M: M, K: K, N: N, tA: tA, tB: tB, aOffset: i * M * K, bOffset: i * K * N)
                }
                #expect(opsMaxDiff(c.values, ref) < 1e-5)
                let err = gradientError([a, b]) { matmul($0[0], $0[1], transposeA: tA, transposeB: tB) }
                #expect(err < 1e-2, "batched transposeA \(tA) transposeB \(tB): error \(err)")
            } }
        }

        @Test func sharedRightOperandAcrossBatch() {
            let (B, T, K, N) = (3, 4, 5, 6)
            for tA in [false, true] { for tB in [false, true] {
                let a = opsUniform(tA ? [B, K, T] : [B, T, K], seed: 5)
                let w = opsUniform(tB ? [N, K] : [K, N], seed: 6)
                let c = matmul(a, w, transposeA: tA, transposeB: tB)
                #expect(c.shape == [B, T, N])
                var ref: [Float] = []
                for i in 0..<B { ref += naive(a, w, M: T, K: K, N: N, tA: tA, tB: tB, aOffset: i * T * K) }
                #expect(opsMaxDiff(c.values, ref) < 1e-5)
                let err = gradientError([a, w]) { matmul($0[0], $0[1], transposeA: tA, transposeB: tB) }
                #expect(err < 1e-2, "shared b, transposeA \(tA) transposeB \(tB): error \(err)")
            } }
        }

        @Test func gradientsAccumulateAcrossUses() {
            // x used on both sides: d/dx sum(x·x) for square x.
            let x = opsUniform([3, 3], seed: 7)
            let err = gradientError([x]) { matmul($0[0], $0[0]) + matmul($0[0], $0[0], transposeB: true) }
            #expect(err < 1e-2)
        }
    }
}
