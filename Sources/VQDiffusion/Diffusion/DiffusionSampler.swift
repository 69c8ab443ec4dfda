import Engine
import Foundation

// Sampling (Sec. 3.3 and 4.4 of the paper): start from an all-[MASK] grid at t = T and walk down
// a grid of times T = t_0 > t_1 > … > t_S = 0. At each visited t the network gives p_θ(x0 | x_t);
// it is optionally truncated (keep the most likely codes whose cumulative probability before them
// is below r, the top one always), turned into p_θ(x_s | x_t) by the posterior — exactly, from the
// s→t transition, or by the reference code's one-step shortcut — and x_s is drawn with Gumbel-max
// from the seeded generator. The last step (s = 0) draws from p_θ(x0 | x_t) over the real codes.
//
// The purity order (after Tang et al. 2022, "Improved Vector Quantized Diffusion Models") keeps
// the schedule's count but not its choice of positions: the posterior unmasks each [MASK] token
// independently with probability 1 − γ̄_s/γ̄_t, at random places, so two neighbours of one outline
// can be drawn in the same step without seeing each other. Instead, of a grid's M masked tokens
// the M − round(M·γ̄_s/γ̄_t) whose prediction is purest (largest max_k p_θ(x0 = k | x_t)) are
// drawn from p_θ(x0 | x_t) and the rest stay masked; drawn codes are kept from then on.
//
// With the direct parameterization the network gives p_θ(x_{t−1} | x_t) for one step only; when
// steps are skipped its draw is used as x_s (the naive shortcut the reparameterization study
// compares against).

/// Which [MASK] tokens a sampling step fills in.
public enum SamplingOrder: String, CaseIterable, Codable, Sendable {
    /// Those the posterior p_θ(x_s | x_t) draws: random places (the paper's sampling).
    case posterior
    /// As many as the schedule expects, those with the purest prediction first; codes once drawn
    /// are kept. Reparameterized models only.
    case purity
}

public struct DiffusionSamplingOptions: Equatable, Sendable {
    /// Number of network evaluations S (1…T); Δt = T/S (times rounded to integers).
    public var steps: Int
    /// Truncation rate r in (0, 1]; nil (or 1) keeps every code.
    public var truncation: Double?
    /// How a skip from t to s < t − 1 is taken.
    public var skipping: StepSkipping
    /// The grid at T: all [MASK] (the paper's and the reference code's start), or a draw from
    /// the forward process's marginal q(x_T) — each token [MASK] with probability γ̄_T, else the
    /// clean code with probability ᾱ_T… approximated by a uniformly random code. The second is the
    /// only consistent start when γ̄_T < 1 is small (replace-only diffusion never masks).
    public var startFromPrior: Bool
    /// Which [MASK] tokens each step fills in.
    public var order: SamplingOrder

    public init(steps: Int, truncation: Double? = nil, skipping: StepSkipping = .exact, startFromPrior: Bool = false,
                order: SamplingOrder = .posterior) {
        self.steps = steps
        self.truncation = truncation
        self.skipping = skipping
        self.startFromPrior = startFromPrior
        self.order = order
    }
}

public enum DiffusionSampling {
    /// The visited times T = t_0 > … > t_S = 0 for S steps: t_i = round(T·(S − i)/S).
    public static func timeGrid(diffusionSteps T: Int, samplingSteps S: Int) -> [Int] {
        precondition(S >= 1 && S <= T, "sampling steps \(S) must lie in 1…\(T)")
        return (0...S).map { i in Int((Double(T) * Double(S - i) / Double(S)).rounded()) }
    }

    /// Truncates each of `rows` rows of `classes` log-probabilities (need not be normalised) in
    /// place: with the probabilities sorted in decreasing order, the codes whose cumulative
    /// probability before them is below `rate` are kept (the most likely always) and the rest set
    /// to −∞. Codes tied with the last kept one are kept too.
    public static func truncate(_ logP: UnsafeMutablePointer<Float>, rows: Int, classes C: Int, rate: Double) {
        precondition(rate > 0 && rate <= 1, "truncation rate must lie in (0, 1], got \(rate)")
        var sorted = UnsafeMutableBufferPointer<Float>.allocate(capacity: C)   // (C) probabilities, descending
        defer { sorted.deallocate() }
        for r in 0..<rows {
            let row = logP + r * C
            var m = -Float.infinity
            for k in 0..<C { m = max(m, row[k]) }
            guard m > -Float.infinity else { continue }
            var total = 0.0
            for k in 0..<C {
                let p = Foundation.exp(row[k] - m)
                sorted[k] = p
                total += Double(p)
            }
            sorted.sort(by: >)
            var cumulative = 0.0, threshold = sorted[0]
            for j in 0..<C {
                if cumulative / total >= rate { break }
                threshold = sorted[j]
                cumulative += Double(sorted[j])
            }
            for k in 0..<C where Foundation.exp(row[k] - m) < threshold { row[k] = -.infinity }
        }
    }

    /// Classifier-free guidance (Ho & Salimans 2021; for VQ-Diffusion, Tang et al. 2022):
    /// log p̂ = log p_u + s·(log p_c − log p_u), renormalised over each row, from the conditional
    /// and unconditional log-probabilities (B, N, C) of one network evaluation each. s = 1 gives
    /// the conditional prediction, s = 0 the unconditional one, s > 1 sharpens what the text
    /// changes. Codes with probability 0 under either stay at 0.
    public static func guided(conditional: Tensor, unconditional: Tensor, scale s: Double) -> Tensor {
        precondition(conditional.shape == unconditional.shape && conditional.rank >= 1,
                     "guidance: conditional \(conditional.shape) and unconditional \(unconditional.shape) differ")
        return guided(conditional.pointer, unconditional.pointer, shape: conditional.shape, scale: s)
    }

    /// `guided` on raw log-probabilities of `shape`, e.g. the two halves of one batch of 2B.
    static func guided(_ c: UnsafePointer<Float>, _ u: UnsafePointer<Float>, shape: [Int], scale s: Double) -> Tensor {
        let mixed = Tensor(uninitializedShape: shape)
        let (p, scale) = (mixed.pointer, Float(s))
        for i in 0..<mixed.count {
            p[i] = c[i] == -.infinity || u[i] == -.infinity ? -.infinity : u[i] + scale * (c[i] - u[i])
        }
        return mixed.logSoftmax()
    }

    /// Gumbel-max draws from the first `classes` of each row of `stride` log-probabilities.
    static func draw(_ logP: UnsafePointer<Float>, rows: Int, stride: Int, classes C: Int,
                     using rng: inout RandomGenerator) -> [Int32] {
        DiffusionSchedule.sampleLogCategorical(logP, rows: rows, stride: stride, classes: C, using: &rng)
    }

    /// The sampling loop for any predictor. `predict(x_t, t)` returns log p_θ(x0 | x_t) (B, N, K)
    /// — or log p_θ(x_{t−1} | x_t) (B, N, K+1) for the direct parameterization — for tokens
    /// (B·N). `observe(x, t)` (optional) sees the tokens at every visited time, from the initial
    /// all-[MASK] grid at T to the final grid at 0. Returns x0 (B·N) in 0…K−1.
    ///
    /// `start` replaces the start at T by given tokens x_t (B·N, values 0…K) at a time t in 1…T —
    /// real grids noised by q(x_t | x0), to see how much of an image the model restores; the walk
    /// then takes `options.steps` (at most t) steps from t down to 0.
    public static func run(batch B: Int, tokens N: Int, schedule: DiffusionSchedule,
                           parameterization: DiffusionParameterization = .reparameterized,
                           options: DiffusionSamplingOptions, start: (tokens: [Int32], time: Int)? = nil,
                           keep: TokenEdit? = nil,
                           using rng: inout RandomGenerator,
                           observe: (([Int32], Int) -> Void)? = nil,
                           predict: ([Int32], Int) throws -> Tensor) rethrows -> [Int32] {
        let K = schedule.classes
        precondition(options.order == .posterior || parameterization == .reparameterized,
                     "sampling: the purity order needs p_θ(x0 | x_t), which a direct model does not give")
        let startTime = start?.time ?? schedule.steps
        precondition(startTime >= 1 && startTime <= schedule.steps, "sampling: start time \(startTime) outside 1…\(schedule.steps)")
        precondition(start == nil || start!.tokens.count == B * N,
                     "sampling: \(start?.tokens.count ?? 0) start tokens for \(B) grids of \(N)")
        let times = timeGrid(diffusionSteps: startTime, samplingSteps: min(options.steps, startTime))
        var x = start?.tokens ?? [Int32](repeating: Int32(K), count: B * N)     // (B·N) all [MASK]
        if start == nil && options.startFromPrior {
            let maskRate = schedule.cumulative(schedule.steps).mask
            for i in x.indices where rng.uniformDouble() >= maskRate { x[i] = Int32(rng.int(below: K)) }
        }
        if let keep {
            precondition(keep.tokens.count == B * N && keep.kept.count == B * N,
                         "sampling: an edit of \(keep.tokens.count) tokens for \(B) grids of \(N)")
            keep.reset(&x)
        }
        observe?(x, times[0])
        for i in 0..<(times.count - 1) {
            let (t, s) = (times[i], times[i + 1])
            let prediction = try Autograd.withoutGrad { try predict(x, t) }
            let width = parameterization == .direct ? K + 1 : K
            precondition(prediction.shape == [B, N, width],
                         "sampling: the predictor returned \(prediction.shape), expected [\(B), \(N), \(width)]")
            if let r = options.truncation, r < 1 {
                truncate(prediction.pointer, rows: B * N, classes: width, rate: r)
            }
            if options.order == .purity {
                fillPurest(&x, logX0: prediction, grids: B, classes: K,
                           keptMasked: schedule.cumulative(s).mask / schedule.cumulative(t).mask, using: &rng)
                keep?.reset(&x)
                observe?(x, s)
                continue
            }
            let next: Tensor                                     // (B, N, K+1) log p(x_s | x_t)
            switch parameterization {
            case .reparameterized:
                next = Autograd.withoutGrad {
                    schedule.posteriorLogProbabilities(logX0: prediction, xt: x, from: t, to: s, skipping: options.skipping)
                }
            case .direct:
                next = prediction
            }
            // The last step draws a real code; before it [MASK] is a legitimate state.
            x = draw(next.pointer, rows: B * N, stride: K + 1, classes: s == 0 ? K : K + 1, using: &rng)
            keep?.reset(&x)
            observe?(x, s)
        }
        return x
    }

    /// One step of the purity order on tokens x (B·N) given log p_θ(x0 | x_t) (B, N, K): in each
    /// grid, of its M [MASK] tokens all but round(M·keptMasked) — the purest, ties to the lower
    /// index — get a Gumbel-max draw from their row; the others stay [MASK]. keptMasked is
    /// γ̄_s/γ̄_t (0 at s = 0, or when γ̄_t = 0: fill in everything).
    static func fillPurest(_ x: inout [Int32], logX0: Tensor, grids B: Int, classes K: Int, keptMasked: Double,
                           using rng: inout RandomGenerator) {
        let N = x.count / B
        precondition(logX0.shape == [B, N, K], "purity step: prediction \(logX0.shape), expected [\(B), \(N), \(K)]")
        let p = logX0.pointer
        let kept = keptMasked.isFinite ? min(max(keptMasked, 0), 1) : 0
        for b in 0..<B {
            let masked = (0..<N).filter { Int(x[b * N + $0]) == K }
            let fill = masked.count - Int((Double(masked.count) * kept).rounded())
            guard fill > 0 else { continue }
            func purity(_ n: Int) -> Float {
                let row = p + (b * N + n) * K
                var m = -Float.infinity
                for k in 0..<K { m = max(m, row[k]) }
                return m
            }
            let purities = masked.map { (n: $0, purity: purity($0)) }
            let chosen = purities.sorted { $0.purity != $1.purity ? $0.purity > $1.purity : $0.n < $1.n }.prefix(fill)
            for (n, _) in chosen {
                x[b * N + n] = draw(p + (b * N + n) * K, rows: 1, stride: K, classes: K, using: &rng)[0]
            }
        }
    }
}

/// An edit of token grids: the tokens to keep (`kept[i]`), held at their values `tokens[i]`
/// through the whole reverse process, and the others drawn anew (`DiffusionSampling.run`).
public struct TokenEdit: Equatable, Sendable {
    /// (B·N) the grids' tokens; only the kept ones are read.
    public var tokens: [Int32]
    /// (B·N) true where the token is kept.
    public var kept: [Bool]

    public init(tokens: [Int32], kept: [Bool]) {
        precondition(tokens.count == kept.count, "TokenEdit: \(tokens.count) tokens and \(kept.count) flags")
        (self.tokens, self.kept) = (tokens, kept)
    }

    /// Sets every kept position of x to its value.
    func reset(_ x: inout [Int32]) {
        for i in x.indices where kept[i] { x[i] = tokens[i] }
    }
}

/// Text-to-tokens sampling with a trained model.
public final class DiffusionSampler {
    public let model: DenoisingTransformer
    public let schedule: DiffusionSchedule
    public let textEncoder: TextEncoder

    public init(model: DenoisingTransformer, schedule: DiffusionSchedule, textEncoder: TextEncoder) {
        precondition(model.configuration.classes == schedule.classes && model.configuration.steps == schedule.steps,
                     "DiffusionSampler: model (K = \(model.configuration.classes), T = \(model.configuration.steps)) and schedule (K = \(schedule.classes), T = \(schedule.steps)) differ")
        self.model = model
        self.schedule = schedule
        self.textEncoder = textEncoder
    }

    /// Token grids (B, N) row-major, one per caption, with S network evaluations (`steps`), an
    /// optional truncation rate r and the chosen way of skipping steps. `guidance` s ≠ 1 applies
    /// classifier-free guidance at every step (the network then runs on the captions and on the
    /// null text in one batch of 2B); it is meant for models trained with caption dropout. `keep`
    /// edits given grids: its kept tokens stay fixed and the others are drawn (inpainting).
    public func sample(captions: [String], steps: Int, truncation: Double? = nil, skipping: StepSkipping = .exact,
                       startFromPrior: Bool = false, guidance: Double = 1, order: SamplingOrder = .posterior,
                       keep: TokenEdit? = nil, using rng: inout RandomGenerator) throws -> [Int32] {
        guard !captions.isEmpty else { return [] }
        guard steps >= 1 && steps <= schedule.steps else {
            throw DiffusionSamplingError("the number of sampling steps must lie in 1…\(schedule.steps), got \(steps)")
        }
        if let r = truncation, !(r > 0 && r <= 1) {
            throw DiffusionSamplingError("the truncation rate must lie in (0, 1], got \(r)")
        }
        guard guidance.isFinite && guidance >= 0 else {
            throw DiffusionSamplingError("the guidance scale must be a number ≥ 0 (1 = no guidance), got \(guidance)")
        }
        guard order == .posterior || model.configuration.parameterization == .reparameterized else {
            throw DiffusionSamplingError("the purity order needs a reparameterized model (one that predicts x0); this one is direct")
        }
        let text = try Autograd.withoutGrad { try textEncoder.encode(captions) }
        let B = captions.count
        let options = DiffusionSamplingOptions(steps: steps, truncation: truncation, skipping: skipping,
                                               startFromPrior: startFromPrior, order: order)
        let model = self.model
        let predict: ([Int32], Int) -> Tensor
        if guidance == 1 {
            predict = { x, t in model.predict(x, t: [Int](repeating: t, count: B), text: text) }
        } else {
            let both = text.appending(.null(batch: B, length: text.length, width: text.width))   // (2B, L, D)
            predict = { x, t in self.guidedPrediction(x, t: t, captionsAndNull: both, scale: guidance) }
        }
        if let keep, keep.tokens.count != B * model.configuration.tokens {
            throw DiffusionSamplingError("an edit needs \(B * model.configuration.tokens) tokens (\(B) grids of \(model.configuration.tokens)), got \(keep.tokens.count)")
        }
        return DiffusionSampling.run(batch: B, tokens: model.configuration.tokens, schedule: schedule,
                                     parameterization: model.configuration.parameterization,
                                     options: options, keep: keep, using: &rng, predict: predict)
    }

    /// The guided prediction for tokens x_t (B·N) at time t: one network evaluation on the batch
    /// of 2B — the captions' features followed by the null text's (`captionsAndNull`, (2B, L, D))
    /// — combined by `DiffusionSampling.guided`. (B, N, K), or (B, N, K+1) when direct.
    public func guidedPrediction(_ x: [Int32], t: Int, captionsAndNull text: TextFeatures, scale: Double) -> Tensor {
        let B = text.batch / 2
        precondition(text.batch == 2 * B && x.count == B * model.configuration.tokens,
                     "guidedPrediction: \(x.count) tokens and \(text.batch) text rows (need B grids and 2B rows)")
        let out = model.predict(x + x, t: [Int](repeating: t, count: 2 * B), text: text)   // (2B, N, C)
        let shape = [B] + out.shape.dropFirst()
        return DiffusionSampling.guided(out.pointer, out.pointer + out.count / 2, shape: shape, scale: scale)
    }
}

public struct DiffusionSamplingError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
