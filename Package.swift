// swift-tools-version:6.0
import PackageDescription

// Release builds keep preconditions (shape checks) but drop dynamic exclusivity checks in hot loops.
let optimize: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "VQDiffusion",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "VQDiffusion", targets: ["VQDiffusion"]),
        .executable(name: "vqd", targets: ["vqd"]),
        .executable(name: "vqd-bench", targets: ["Bench"]),
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
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CLibs"]),
        .testTarget(name: "VQDiffusionTests", dependencies: ["VQDiffusion", "Engine", "CLibs"], exclude: ["TestData"]),
    ],
    swiftLanguageModes: [.v5]
)
