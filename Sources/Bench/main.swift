import Engine
import VQDiffusion

print("vqd-bench \(VQDiffusionInfo.version): benchmarks arrive with the engine kernels")
