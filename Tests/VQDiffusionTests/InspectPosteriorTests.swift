import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct InspectPosteriorTests {
    let B = 2, K = 5, N = 3, T = 10
    var schedule: DiffusionSchedule { try! DiffusionSchedule(.paper(classes: K, steps: T)) }

    /// x_t (B, N) including [MASK] = K, and normalised log x0 (B, K, N).
    func inputs(seed: UInt64) -> (xt: [Int64], logX0: [Float]) {
        var rng = RandomGenerator(seed: seed)
        let xt: [Int64] = [0, Int64(K), 3, Int64(K), 4, 1]
        var logX0 = [Float](repeating: 0, count: B * K * N)
        for b in 0..<B {
            for n in 0..<N {
                let logits = (0..<K).map { _ in Double(rng.normal()) * 2 }
                let lse = Foundation.log(logits.reduce(0) { $0 + Foundation.exp($1) })
                for k in 0..<K { logX0[(b * K + k) * N + n] = Float(logits[k] - lse) }
            }
        }
        return (xt, logX0)
    }

    @Test func filesInFilesOutMatchTheLibraryAndAreNormalised() throws {
        let folder = TemporaryFolder()
        let (xt, logX0) = inputs(seed: 9)
        try Npy.save(TensorData(shape: [B, N], .i64(xt)), to: folder.file("xt.npy"))
        try Npy.save(TensorData(shape: [B, K, N], .f32(logX0)), to: folder.file("logx0.npy"))
        for t in [1, 4, T] {
            let shape = try PosteriorInspection.run(schedule: schedule, t: t, xt: folder.file("xt.npy"),
                                                    logX0: folder.file("logx0.npy"), out: folder.file("out.npy"))
            let out = try Npy.read(folder.file("out.npy"))
            #expect(shape == [B, K + 1, N] && out.shape == shape && out.dtype == .f32)
            let values = try #require(out.floats)
            #expect(values == schedule.posteriorLogProbabilitiesClassesFirst(xt: xt.map { Int32($0) }, logX0: logX0, batch: B, t: t))
            for b in 0..<B {
                for n in 0..<N {
                    let total = (0...K).reduce(0.0) { $0 + Foundation.exp(Double(values[(b * (K + 1) + $1) * N + n])) }
                    #expect(abs(total - 1) < 1e-5)
                    if t == 1 {   // p(x0 | x1) is log x0 itself, [MASK] at the floor
                        for k in 0..<K { #expect(abs(values[(b * (K + 1) + k) * N + n] - logX0[(b * K + k) * N + n]) < 1e-5) }
                        #expect(values[(b * (K + 1) + K) * N + n] == diffusionLogFloor)
                    }
                }
            }
        }
    }

    @Test func badInputsAreClearErrors() throws {
        let (xt, logX0) = inputs(seed: 2)
        let goodXt = TensorData(shape: [B, N], .i64(xt))
        let goodLog = TensorData(shape: [B, K, N], .f32(logX0))
        func message(t: Int = 3, _ x: TensorData, _ l: TensorData) -> String {
            thrownMessage { _ = try PosteriorInspection.posterior(schedule: schedule, t: t, xt: x, logX0: l,
                                                                  xtName: "XT.npy", logX0Name: "LOG.npy") } ?? "no error"
        }
        #expect(message(goodXt, goodLog) == "no error")
        #expect(message(t: 0, goodXt, goodLog).contains("t = 0 is outside 1…10"))
        #expect(message(t: 11, goodXt, goodLog).contains("t = 11 is outside 1…10"))
        #expect(message(TensorData(shape: [B * N], .i64(xt)), goodLog).contains("XT.npy: x_t has shape [6]"))
        #expect(message(TensorData(shape: [B, N], .f32(xt.map { Float($0) })), goodLog).contains("XT.npy: x_t has dtype <f4"))
        var tooBig = xt; tooBig[4] = Int64(K + 1)
        #expect(message(TensorData(shape: [B, N], .i64(tooBig)), goodLog).contains("x_t[1, 1] = 6 is outside 0…5"))
        var negative = xt; negative[0] = -1
        #expect(message(TensorData(shape: [B, N], .i64(negative)), goodLog).contains("x_t[0, 0] = -1"))
        let withMask = TensorData(shape: [B, K + 1, N], .f32([Float](repeating: -1, count: B * (K + 1) * N)))
        let wrongShape = message(goodXt, withMask)
        #expect(wrongShape.contains("LOG.npy: log x0 has shape [2, 6, 3]") && wrongShape.contains("drop the [MASK] row"))
        #expect(message(goodXt, TensorData(shape: [B, K], .f32([Float](repeating: 0, count: B * K)))).contains("must be 3-D"))
        #expect(message(goodXt, TensorData(shape: [B, K, N], .f64(logX0.map(Double.init)))).contains("log x0 has dtype <f8"))
        var nan = logX0; nan[7] = .nan
        #expect(message(goodXt, TensorData(shape: [B, K, N], .f32(nan))).contains("log x0[0, 2, 1] is nan"))
        var minusInfinity = logX0; minusInfinity[7] = -.infinity
        #expect(message(goodXt, TensorData(shape: [B, K, N], .f32(minusInfinity))) == "no error")
        // int32 tokens are accepted too.
        #expect(message(TensorData(shape: [B, N], .i32(xt.map { Int32($0) })), goodLog) == "no error")
    }
}
