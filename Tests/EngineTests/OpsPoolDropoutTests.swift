import Testing
import Engine

extension OpsTests {
    @Suite struct OpsPoolDropoutTests {
        @Test func upsampleNearestRepeatsPixels() {
            let x = opsUniform([2, 3, 2, 3], seed: 1)
            let y = x.upsampleNearest(factor: 2)
            #expect(y.shape == [2, 3, 4, 6])
            for i in 0..<y.count {
                let idx = opsIndex(i, y.shape)
                let src = ((idx[0] * 3 + idx[1]) * 2 + idx[2] / 2) * 3 + idx[3] / 2
                #expect(y.pointer[i] == x.pointer[src])
            }
            #expect(gradientError([x.copy()]) { $0[0].upsampleNearest(factor: 3) } < 1e-2)
        }

        @Test func avgPoolMatchesNaive() {
            let x = opsUniform([2, 2, 5, 6], seed: 2)
            for (k, s) in [(2, 2), (3, 1), (3, 2)] {
                let y = x.avgPool2d(kernel: k, stride: s)
                let (Ho, Wo) = ((5 - k) / s + 1, (6 - k) / s + 1)
                #expect(y.shape == [2, 2, Ho, Wo])
                for i in 0..<y.count {
                    let idx = opsIndex(i, y.shape)
                    var acc: Float = 0
                    for u in 0..<k { for v in 0..<k {
                        acc += x.pointer[((idx[0] * 2 + idx[1]) * 5 + idx[2] * s + u) * 6 + idx[3] * s + v]
                    } }
                    #expect(abs(y.pointer[i] - acc / Float(k * k)) < 1e-6)
                }
                let err = gradientError([x.copy()]) { $0[0].avgPool2d(kernel: k, stride: s) }
                #expect(err < 1e-2, "kernel \(k) stride \(s): error \(err)")
            }
            // Pooling undoes upsampling.
            let u = x.upsampleNearest(factor: 2).avgPool2d(kernel: 2)
            #expect(opsMaxDiff(u.values, x.values) < 1e-6)
        }

        @Test func dropoutMasksAndScales() {
            let x = Tensor(shape: [100, 100], repeating: 1)
            var rng = RandomGenerator(seed: 3)
            #expect(x.dropout(0, using: &rng) === x)
            #expect(rng == RandomGenerator(seed: 3))
            x.requiresGrad = true
            let y = x.dropout(0.3, using: &rng)
            let v = y.values
            let dropped = v.filter { $0 == 0 }.count
            #expect(abs(Double(dropped) / 10_000 - 0.3) < 0.03)
            #expect(v.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
            // Gradient is the same mask.
            y.sum().backward()
            #expect(x.grad!.values == v)
            // Same seed, same mask.
            var r1 = RandomGenerator(seed: 4), r2 = RandomGenerator(seed: 4)
            #expect(x.dropout(0.5, using: &r1).values == x.dropout(0.5, using: &r2).values)
        }
    }
}
