import Foundation

/// What `vqd inspect posterior` runs: log p(x_{t−1} | x_t) for arrays given as .npy files, in
/// the reference implementation's classes-first layout (see
/// `DiffusionSchedule.posteriorLogProbabilitiesClassesFirst`).
///
///   x_t     int64 [B, N] (int32 also accepted), values 0…K (K = [MASK])
///   log x0  float32 [B, K, N], log-probabilities of x0 over the K real codes (−∞ allowed)
///   result  float32 [B, K+1, N]
public enum PosteriorInspection {
    /// Checks the arrays against each other, the schedule and t (1…T) and computes the result.
    /// `xtName` and `logX0Name` name the inputs in error messages (their paths).
    public static func posterior(schedule: DiffusionSchedule, t: Int, xt: TensorData, logX0: TensorData,
                                 xtName: String = "x_t", logX0Name: String = "log x0") throws -> TensorData {
        let K = schedule.classes
        guard (1...schedule.steps).contains(t) else {
            throw DiffusionConfigurationError("t = \(t) is outside 1…\(schedule.steps): give a step from 1 to T = \(schedule.steps).")
        }
        guard xt.shape.count == 2 else {
            throw FileError(xtName, "x_t has shape \(xt.shape); it must be 2-D [B, N] (batch, tokens)")
        }
        let (B, N) = (xt.shape[0], xt.shape[1])
        guard B >= 1 && N >= 1 else { throw FileError(xtName, "x_t has shape \(xt.shape); B and N must be at least 1") }
        let tokens: [Int64]
        switch xt.values {
        case .i64(let v): tokens = v
        case .i32(let v): tokens = v.map(Int64.init)
        default:
            throw FileError(xtName, "x_t has dtype \(Npy.descr(xt.dtype)); it must be int64 token indices (x.astype('int64'))")
        }
        if let i = tokens.firstIndex(where: { $0 < 0 || $0 > Int64(K) }) {
            throw FileError(xtName, "x_t[\(i / N), \(i % N)] = \(tokens[i]) is outside 0…\(K) (K real codes, \(K) = [MASK]); "
                + "check --classes")
        }
        guard logX0.shape.count == 3 else {
            throw FileError(logX0Name, "log x0 has shape \(logX0.shape); it must be 3-D [B, K, N] = [\(B), \(K), \(N)]")
        }
        guard logX0.shape == [B, K, N] else {
            let hint = logX0.shape[1] == K + 1 ? " (it has K+1 rows: drop the [MASK] row, x0 is over real codes only)"
                : logX0.shape[1] != K ? " (the middle dimension must equal --classes)" : ""
            throw FileError(logX0Name, "log x0 has shape \(logX0.shape) but x_t is [\(B), \(N)] and K = \(K): "
                + "it must be [\(B), \(K), \(N)]\(hint)")
        }
        guard case .f32(let logValues) = logX0.values else {
            throw FileError(logX0Name, "log x0 has dtype \(Npy.descr(logX0.dtype)); it must be float32 (x.astype('float32'))")
        }
        if let i = logValues.firstIndex(where: { $0.isNaN || $0 == .infinity }) {
            let (b, k, n) = (i / (K * N), (i / N) % K, i % N)
            throw FileError(logX0Name, "log x0[\(b), \(k), \(n)] is \(logValues[i]); log-probabilities must be finite or −inf")
        }
        let out = schedule.posteriorLogProbabilitiesClassesFirst(xt: tokens.map { Int32($0) }, logX0: logValues, batch: B, t: t)
        return TensorData(shape: [B, K + 1, N], .f32(out))
    }

    /// Reads the two .npy files, computes the posterior and writes it to `out` (float32 .npy).
    /// Returns the output shape.
    @discardableResult
    public static func run(schedule: DiffusionSchedule, t: Int, xt: URL, logX0: URL, out: URL) throws -> [Int] {
        let result = try posterior(schedule: schedule, t: t, xt: Npy.read(xt), logX0: Npy.read(logX0),
                                   xtName: xt.path, logX0Name: logX0.path)
        try Npy.save(result, to: out)
        return result.shape
    }
}
