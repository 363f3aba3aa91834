// swift-tools-version:6.0
// qlora-run: QLoRA fine-tuning driven by declarative YAML pipelines.
// No package dependencies: system C libraries (libyaml, OpenBLAS) through module maps only.
import PackageDescription

// Numeric targets capture raw buffer pointers in parallel loops (DispatchQueue.concurrentPerform);
// Swift 5 language mode keeps that readable. Their thread safety comes from disjoint
// output ranges per chunk (see Kernels/Parallel.swift), which the compiler cannot prove.
let numeric: [SwiftSetting] = [
    .swiftLanguageMode(.v5),
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "qlora-run",
    products: [
        .executable(name: "qlora-run", targets: ["qlora-run"]),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMalloc"),  // glibc's malloc_trim (Stages/PeakMemory.swift)

        // Pipeline spine: YAML, JSON Schema, DAG, executor, cache. Knows nothing about ML.
        .target(name: "PipelineCore", dependencies: ["CYAML", "CSHA256"]),
        // SHA-256 block compression with the CPU's SHA extensions, detected at run time.
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O3"])]),

        // Numerics, bottom-up. Kernels is the only importer of OpenBLAS.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CElementwise", "CParallel"], swiftSettings: numeric),
        // The helper threads behind Kernels' Parallel (spin briefly between jobs, then sleep).
        .target(name: "CParallel", cSettings: [.unsafeFlags(["-O2"])]),
        // SwiGLU, AdamW and bf16 rounding for AVX-512 / AVX2 / portable, chosen at run time; no fused
        // multiply-add, so every build gives the Swift kernels' bits.
        .target(name: "CElementwise", dependencies: ["CISA"], cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off", "-fno-math-errno"])]),
        // The CPU's instruction set for the C kernels, detected once (QLORA_NF4_ISA caps it for tests).
        .target(name: "CISA"),
        .target(name: "TensorIO", swiftSettings: numeric),  // safetensors reader/writer
        // Chat templates: a Jinja2 subset with transformers' environment, rendered byte-exactly.
        .target(name: "Jinja", swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "Tokenizer", dependencies: ["Jinja"], swiftSettings: numeric),  // tokenizer.json: BPE, byte-level, added tokens; chat templates
        // Fused 4-bit products for few rows (AVX-512 / AVX2 / portable, chosen at run time).
        .target(name: "CNF4", dependencies: ["CISA"], cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Quant", dependencies: ["Kernels", "TensorIO", "CNF4"], swiftSettings: numeric),
        .target(name: "Model", dependencies: ["Kernels", "Quant", "TensorIO", "Tokenizer"], swiftSettings: numeric),
        .target(name: "Training", dependencies: ["Model", "Quant", "Kernels", "TensorIO", "Tokenizer", "Jinja", "Distributed"], swiftSettings: numeric),
        // Data-parallel training over MPI, loaded at run time (dlopen): no MPI needed to build or run alone.
        .target(name: "Distributed"),

        // Stage plug-ins bind the pipeline spine to the engine, and nothing else.
        // The schema file is embedded at build time (Plugins/EmbedSchemaPlugin): it exists once.
        .executableTarget(name: "embed-schema"),
        .plugin(name: "EmbedSchemaPlugin", capability: .buildTool(), dependencies: ["embed-schema"]),
        .target(name: "Stages", dependencies: ["CMalloc", "PipelineCore", "Model", "Quant", "Training", "TensorIO", "Kernels", "Tokenizer", "Jinja", "Distributed"],
                plugins: ["EmbedSchemaPlugin"]),
        // The command line: argument parsing, usage, exit codes, the commands (run, plan, runs, sweeps,
        // generate, chat render, bench, ...). The executable is its thin entry point.
        .target(name: "CLI", dependencies: ["Stages", "PipelineCore", "Distributed", "Model", "Quant", "Training", "Kernels", "Tokenizer", "Jinja"]),
        .executableTarget(name: "qlora-run", dependencies: ["CLI"]),

        // Tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PipelineCoreTests", dependencies: ["PipelineCore", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CElementwise", "CParallel", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "TensorIOTests", dependencies: ["TensorIO", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "Jinja", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "QuantTests", dependencies: ["Quant", "Model", "TensorIO", "TestSupport", "CNF4"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Kernels", "TensorIO", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Quant", "Kernels", "TensorIO", "TestSupport", "Distributed"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "StagesTests", dependencies: ["Stages", "PipelineCore", "Training", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "Stages", "PipelineCore", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "TensorIO", "Model"]),
    ]
)
