// vqd-bench: the engine's throughput against this machine's sgemm peak, measured in the same run.
//
//   swift run -c release vqd-bench [--threads N] [--only TEXT]      (make bench; --only decode: AR decoding)
//   swift run -c release vqd-bench --scaling [--scaling-steps N]     (make bench-scaling: MPI ranks against threads)
//
// Each case is forward + backward through the engine's Tensor API, median of 10 timed repetitions
// after 3 warm-ups, in fp32 and, where the machine can (ComputePolicy), with bf16 operands beside
// it; then the small preset's training step in steps/s both ways. FLOP counts are analytic:
// 2·m·n·k per GEMM, backward counted as twice the forward (the same formulas as the PyTorch
// reference scripts).
import Engine
import Experiments
import Foundation

// MARK: - Options

/// OpenBLAS threads (and kernel workers); `--threads N` overrides.
var threads = 2
/// Run only the cases whose name contains this text (`--only TEXT`).
var only: String? = nil
/// Results database the run is recorded in (`--db PATH`; `--no-db` skips it).
var databasePath: String? = "results/results.sqlite"
/// `--scaling`: the training step over 1 thread, 2 threads and 2 MPI ranks (ScalingBench.swift);
/// `--scaling-worker` is one of its layouts; `--scaling-steps N` the timed steps of each.
var scaling = false, scalingWorker = false
var scalingSteps = 10
var arguments = CommandLine.arguments.dropFirst()
while let arg = arguments.popFirst() {
    switch arg {
    case "--threads":
        guard let value = arguments.popFirst(), let n = Int(value), n >= 1 else {
            fputs("vqd-bench: --threads needs a positive integer, e.g. --threads 2\n", stderr)
            exit(2)
        }
        threads = n
    case "--only":
        guard let value = arguments.popFirst() else {
            fputs("vqd-bench: --only needs a text that case names contain, e.g. --only conv\n", stderr)
            exit(2)
        }
        only = value
    case "--db":
        guard let value = arguments.popFirst() else {
            fputs("vqd-bench: --db needs a path, e.g. --db results/results.sqlite\n", stderr)
            exit(2)
        }
        databasePath = value
    case "--no-db":
        databasePath = nil
    case "--scaling":
        scaling = true
    case "--scaling-worker":
        scalingWorker = true
    case "--scaling-steps":
        guard let value = arguments.popFirst(), let n = Int(value), n >= 1 else {
            fputs("vqd-bench: --scaling-steps needs a positive integer, e.g. --scaling-steps 10\n", stderr)
            exit(2)
        }
        scalingSteps = n
    case "-h", "--help":
        print("usage: vqd-bench [--threads N] [--only TEXT] [--db PATH | --no-db]   (default: 2 threads, every case, results/results.sqlite)")
        print("       vqd-bench --scaling [--scaling-steps N] [--db PATH | --no-db]   (training steps/s: 1 and 2 threads, 2 MPI ranks)")
        exit(0)
    default:
        fputs("vqd-bench: unknown argument '\(arg)'; the options are --threads N, --only TEXT, --db PATH, --no-db, --scaling\n", stderr)
        exit(2)
    }
}
BLAS.setThreads(threads)
if scalingWorker || scaling {
    do {
        if scalingWorker { try runScalingWorker(steps: scalingSteps) } else { try runScaling(steps: scalingSteps, databasePath: databasePath) }
    } catch {
        fputs("vqd-bench: \(error)\n", stderr)
        ProcessGroup.world.abort(code: 1)     // under mpirun: every rank
    }
    exit(0)
}

// MARK: - Cases

var rng = RandomGenerator(seed: 2024)

/// Seed gradient of ones for `backward(seed:)`.
func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

/// (a) linear 4096×256 → 1024 with bias, forward + backward; with a fused activation as an
/// extra line (the transformer MLP's first layer).
func linearCase(activation: Activation = .none) -> BenchCase {
    let (N, IN, OUT) = (4096, 256, 1024)
    let x = Tensor.randn([N, IN], requiresGrad: true, using: &rng)
    let w = Tensor.randn([OUT, IN], std: 0.05, requiresGrad: true, using: &rng)
    let b = Tensor(zeros: [OUT], requiresGrad: true)
    let seed = ones([N, OUT])
    let name = activation == .none ? "(a) linear 4096×256→1024 fwd+bwd" : "linear 4096×256→1024 +\(activation) fwd+bwd"
    return BenchCase(name: name, flops: 3 * 2 * Double(N * IN * OUT), target: activation == .none ? 0.70 : nil) {
        for t in [x, w, b] { t.zeroGrad() }
        linear(x, w, b, activation: activation).backward(seed: seed)
    }
}

/// (c) conv2d 3×3, 64 → 64 channels, 32×32, batch 32, padding 1, forward + backward.
func convCase() -> BenchCase {
    let (N, C, O, S) = (32, 64, 64, 32)
    let x = Tensor.randn([N, C, S, S], requiresGrad: true, using: &rng)
    let w = Tensor.randn([O, C, 3, 3], std: 0.05, requiresGrad: true, using: &rng)
    let b = Tensor(zeros: [O], requiresGrad: true)
    let seed = ones([N, O, S, S])
    return BenchCase(name: "(c) conv2d 3×3 64→64 32×32 b32 fwd+bwd", flops: 3 * 2 * Double(N * S * S * O * C * 9), target: 0.60) {
        for t in [x, w, b] { t.zeroGrad() }
        conv2d(x, weight: w, bias: b, padding: 1).backward(seed: seed)
    }
}

/// The grid convolution of `vqd train --grid-conv` at the small preset's MLP: 8×8 tokens, 1024
/// hidden channels, batch 32, forward + backward (plain loops, not BLAS: 2 FLOPs per tap and
/// channel forward, twice that backward).
func gridConvCase() -> BenchCase {
    let (B, h, w, C) = (32, 8, 8, 1024)
    let x = Tensor.randn([B, h * w, C], requiresGrad: true, using: &rng)
    let weight = Tensor.randn([9, C], std: 0.3, requiresGrad: true, using: &rng)
    let bias = Tensor(zeros: [C], requiresGrad: true)
    let seed = ones([B, h * w, C])
    return BenchCase(name: "gridConv 3×3 depthwise 8×8 C1024 b32 fwd+bwd", flops: 3 * 2 * Double(B * h * w * C * 9)) {
        for t in [x, weight, bias] { t.zeroGrad() }
        gridConv(x, height: h, width: w, weight: weight, bias: bias).backward(seed: seed)
    }
}

/// Attention at the transformer block's shape: B = 64, Lq = 64, D = 256, 4 heads, forward +
/// backward, reading the fused projections the block produces: self-attention from (B, 64, 3D),
/// cross-attention to 16 text tokens from (B, 16, 2D) with a padding mask.
func attentionCase(Lk: Int) -> BenchCase {
    let (B, Lq, D, H) = (64, 64, 256, 4)
    let seed = ones([B, Lq, D])
    // Q·Kᵀ and P·V: 2·(2·B·Lq·Lk·D) forward, twice that backward.
    let flops = 3 * 4 * Double(B * Lq * Lk * D)
    if Lk == Lq {
        let qkv = Tensor.randn([B, Lq, 3 * D], requiresGrad: true, using: &rng)
        return BenchCase(name: "selfAttention B64 L64 D256 h4 fwd+bwd", flops: flops) {
            qkv.zeroGrad()
            selfAttention(qkv: qkv, heads: H).backward(seed: seed)
        }
    }
    let q = Tensor.randn([B, Lq, D], requiresGrad: true, using: &rng)
    let kv = Tensor.randn([B, Lk, 2 * D], requiresGrad: true, using: &rng)
    let mask = (0..<(B * Lk)).map { $0 % Lk < Lk - $0 / Lk % 4 }   // 0–3 padding tokens per row
    return BenchCase(name: "crossAttention B64 Lq64 Lk\(Lk) D256 h4 mask fwd+bwd", flops: flops) {
        for t in [q, kv] { t.zeroGrad() }
        crossAttention(query: q, keyValue: kv, heads: H, keyPaddingMask: mask).backward(seed: seed)
    }
}

/// Layer norm over 4096 rows of 256 (memory-bound: time only).
func layerNormCase() -> BenchCase {
    let (N, C) = (4096, 256)
    let x = Tensor.randn([N, C], requiresGrad: true, using: &rng)
    let w = Tensor(shape: [C], repeating: 1, requiresGrad: true), b = Tensor(zeros: [C], requiresGrad: true)
    let seed = ones([N, C])
    return BenchCase(name: "layerNorm 4096×256 fwd+bwd", flops: 0) {
        for t in [x, w, b] { t.zeroGrad() }
        layerNorm(x, weight: w, bias: b).backward(seed: seed)
    }
}

/// Cross-entropy over 4096 rows of 1024 classes (memory-bound: time only).
func crossEntropyCase() -> BenchCase {
    let (N, C) = (4096, 1024)
    let logits = Tensor.randn([N, C], requiresGrad: true, using: &rng)
    let targets = (0..<N).map { _ in Int32(rng.int(below: C)) }
    return BenchCase(name: "crossEntropy 4096×1024 fwd+bwd", flops: 0) {
        logits.zeroGrad()
        crossEntropy(logits: logits, targets: targets).backward()
    }
}

// MARK: - Run

/// The precisions measured: fp32, and bf16 where this machine can run it (ComputePolicy's rule).
let precisions: [Precision] = {
    do { try ComputePolicy.check(.bf16); return [.fp32, .bf16] } catch {
        print("bf16 not measured: \(error)")
        return [.fp32]
    }
}()
print("vqd-bench: \(threads) thread\(threads == 1 ? "" : "s"), OpenBLAS \(BLASKernels.coreName) kernels; "
      + ComputePolicy.summary.joined(separator: "; "))
let peak = measureSgemmPeak()
print(padded("(0) sgemm 1024³ peak (best of 10)") + String(format: "  %7.1f GFLOP/s", peak))
if precisions.contains(.bf16) {
    let bf16Peak = BLAS.withPrecision(.bf16) { measureSgemmPeak() }
    print(padded("    bf16 1024³ on oneDNN (best of 10)") + String(format: "  %7.1f GFLOP/s  %.2f× the fp32 peak", bf16Peak, bf16Peak / peak))
}

let cases: [BenchCase] = [
    linearCase(),
    blockCase(),
] + (threads > 1 ? [shardedBlockCase(shards: threads)] : []) + [
    convCase(),
    gridConvCase(),
    linearCase(activation: .gelu),
    attentionCase(Lk: 64),
    attentionCase(Lk: 16),
    layerNormCase(),
    crossEntropyCase(),
]
var results: [BenchResult] = []
for c in cases where only.map({ c.name.contains($0) }) ?? true {
    let byPrecision = precisions.map { p in BLAS.withPrecision(p) { measure(c, peak: peak, precision: p) } }
    report(byPrecision)
    results += byPrecision
}
// The small preset's training step, both families, in each precision (steps/s).
var extraFigures: [(name: String, value: Double)] = []
for family in GeneratorFamily.allCases where only.map({ "train step \(family.rawValue)".contains($0) }) ?? true {
    var line = "", rates: [Double] = []
    for p in precisions {
        do {
            let (name, rate) = try trainingStepCase(family, precision: p)
            if line.isEmpty { line = padded(name, 52) }
            line += String(format: "  %@ %6.2f steps/s", p.rawValue, rate)
            rates.append(rate)
            extraFigures.append((name: "\(name) \(p.rawValue) steps per s", value: rate))
        } catch {
            fputs("vqd-bench: the \(family.rawValue) training step failed in \(p.rawValue): \(error)\n", stderr)
        }
    }
    if rates.count == 2 { line += String(format: "  bf16 %.2f×", rates[1] / rates[0]) }
    if !line.isEmpty { print(line) }
}
// AR decoding with and without the key/value cache (cases "decode 8x8 batch 1" … "decode 32x32 batch 16"):
// tokens/s figures, recorded in the database with the GFLOP/s cases.
extraFigures += runDecodeBenchmarks(only: only)
// Other work on the machine skews every ratio: measure the peak again and say so if it moved.
let peakAfter = measureSgemmPeak()
print(padded("sgemm 1024³ peak again at the end") + String(format: "  %7.1f GFLOP/s", peakAfter))
if abs(peakAfter - peak) > 0.15 * peak {
    print("note: the peak moved by more than 15 % during the run (other load on the machine?); rerun for reliable ratios")
}
print(padded("peak memory (max RSS)", 52) + String(format: "%9.1f MiB", peakMemoryMiB()))
if let databasePath {
    logBenchRun(databasePath: databasePath, threads: threads, peak: peak, peakAfter: peakAfter, results: results,
                extra: extraFigures, peakMemoryMiB: peakMemoryMiB())
}

