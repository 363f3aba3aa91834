// swift-tools-version:6.0
// qlora-run: QLoRA fine-tuning driven by declarative YAML pipelines.
// No package dependencies: system C libraries (libyaml, OpenBLAS) through module maps only.
import PackageDescription

let release: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "qlora-run",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "qlora-run", targets: ["qlora-run"]),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // Pipeline spine: YAML, JSON Schema, DAG, executor, cache. Knows nothing about ML.
        .target(name: "PipelineCore", dependencies: ["CYAML"]),

        // Numerics, bottom-up. Kernels is the only importer of OpenBLAS.
        .target(name: "Kernels", dependencies: ["COpenBLAS"], swiftSettings: release),
        .target(name: "Quant", dependencies: ["Kernels"], swiftSettings: release),
        .target(name: "Model", dependencies: ["Kernels", "Quant"], swiftSettings: release),
        .target(name: "Training", dependencies: ["Model", "Quant", "Kernels"], swiftSettings: release),

        // Stage plug-ins bind the pipeline spine to the engine.
        .target(name: "Stages", dependencies: ["PipelineCore", "Model", "Quant", "Training"]),
        .executableTarget(name: "qlora-run", dependencies: ["Stages", "PipelineCore"]),

        // Tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PipelineCoreTests", dependencies: ["PipelineCore", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "QuantTests", dependencies: ["Quant", "Model", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Quant", "TestSupport"]),
        .testTarget(name: "StagesTests", dependencies: ["Stages", "PipelineCore", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"]),
    ]
)
