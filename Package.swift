// swift-tools-version:6.0
import PackageDescription

// Release builds keep preconditions (shape checks) but drop dynamic exclusivity checks in hot loops.
let optimize: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let study: [Target.Dependency] = ["Experiments", "VQDiffusion", "Engine",
                                  .product(name: "ArgumentParser", package: "swift-argument-parser")]
let studyFiles = ["figure.gp", "figure.sql"]

let package = Package(
    name: "VQDiffusion",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "VQDiffusion", targets: ["VQDiffusion"]),
        .library(name: "Experiments", targets: ["Experiments"]),
        .executable(name: "vqd", targets: ["vqd"]),
        .executable(name: "vqd-bench", targets: ["Bench"]),
        .executable(name: "study-quality", targets: ["study-quality"]),
        .executable(name: "study-speed", targets: ["study-speed"]),
        .executable(name: "study-mask", targets: ["study-mask"]),
        .executable(name: "study-reparam", targets: ["study-reparam"]),
        .executable(name: "study-inpaint", targets: ["study-inpaint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS (CBLAS + LAPACK), libpng and zlib from the system.
        .systemLibrary(name: "CLibs", path: "Sources/CLibs"),
        // oneDNN: matmul and convolution primitives, bf16 operands where the CPU has AVX512_BF16.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        // SQLite, for the results database only.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        // Tensors, kernels, autograd, optimizers, randomness. Knows nothing of models.
        .target(name: "Engine", dependencies: ["CLibs", "CDNNL"], swiftSettings: optimize),
        // Models, math, data, files and metrics. Knows nothing of experiments.
        .target(name: "VQDiffusion", dependencies: ["Engine", "CLibs"], swiftSettings: optimize),
        // The experiment harness: recipes, the model store, the training loop, the results database,
        // progress bars, default paths, study plumbing and the command-line option groups.
        .target(name: "Experiments",
                dependencies: ["VQDiffusion", "Engine", "CSQLite",
                               .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: optimize),
        .executableTarget(
            name: "vqd",
            dependencies: ["Experiments", "VQDiffusion", "Engine",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),
        .executableTarget(name: "Bench", dependencies: ["Experiments", "VQDiffusion", "Engine", "CLibs"],
                          swiftSettings: optimize),
        // The studies, one executable each, with their gnuplot scripts and export queries.
        .executableTarget(name: "study-quality", dependencies: study, path: "studies/quality", exclude: studyFiles,
                          swiftSettings: optimize),
        .executableTarget(name: "study-speed", dependencies: study, path: "studies/speed", exclude: studyFiles,
                          swiftSettings: optimize),
        .executableTarget(name: "study-mask", dependencies: study, path: "studies/mask", exclude: studyFiles,
                          swiftSettings: optimize),
        .executableTarget(name: "study-reparam", dependencies: study, path: "studies/reparam", exclude: studyFiles,
                          swiftSettings: optimize),
        .executableTarget(name: "study-inpaint", dependencies: study, path: "studies/inpaint", exclude: studyFiles,
                          swiftSettings: optimize),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CLibs"]),
        .testTarget(name: "VQDiffusionTests", dependencies: ["Experiments", "VQDiffusion", "Engine", "CLibs", "CSQLite"],
                    exclude: ["TestData"]),
    ],
    swiftLanguageModes: [.v5]
)
