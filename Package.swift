// swift-tools-version:6.0
import PackageDescription

// Release builds keep preconditions (shape checks) but drop dynamic exclusivity checks in hot loops.
let optimize: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let study: [Target.Dependency] = ["StudyKit", "VQDiffusion", "Engine",
                                  .product(name: "ArgumentParser", package: "swift-argument-parser")]
let studyFiles = ["figure.gp", "figure.sql"]

let package = Package(
    name: "VQDiffusion",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "VQDiffusion", targets: ["VQDiffusion"]),
        .executable(name: "vqd", targets: ["vqd"]),
        .executable(name: "vqd-bench", targets: ["Bench"]),
        .executable(name: "study-quality", targets: ["study-quality"]),
        .executable(name: "study-speed", targets: ["study-speed"]),
        .executable(name: "study-mask", targets: ["study-mask"]),
        .executable(name: "study-reparam", targets: ["study-reparam"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS (CBLAS + LAPACK), SQLite, libpng and zlib from the system.
        .systemLibrary(name: "CLibs", path: "Sources/CLibs"),
        // Tensors, kernels, autograd, optimizers, randomness. Knows nothing of models.
        .target(name: "Engine", dependencies: ["CLibs"], swiftSettings: optimize),
        // Models, data, files, evaluation, study plumbing.
        .target(name: "VQDiffusion", dependencies: ["Engine", "CLibs"], swiftSettings: optimize),
        .executableTarget(
            name: "vqd",
            dependencies: ["VQDiffusion", "Engine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),
        .executableTarget(name: "Bench", dependencies: ["VQDiffusion", "Engine", "CLibs"], swiftSettings: optimize),
        // Command-line options shared by the studies.
        .target(name: "StudyKit",
                dependencies: ["VQDiffusion", "Engine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
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
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CLibs"]),
        .testTarget(name: "VQDiffusionTests", dependencies: ["VQDiffusion", "Engine", "CLibs"], exclude: ["TestData"]),
    ],
    swiftLanguageModes: [.v5]
)
