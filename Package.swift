// swift-tools-version: 6.1
import PackageDescription

/// One set of compiler settings for every target: Swift 6 language mode with strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "conveyor", targets: ["conveyor"]),
        .executable(name: "conveyor-load", targets: ["conveyor-load"]),
        .library(name: "ConveyorAgent", targets: ["ConveyorAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // HMAC-SHA256 for signed webhooks; already in the graph through async-http-client's TLS stack.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // Tests only: the DevTools protocol's WebSocket to headless Chromium (the console's browser tests).
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        // Tests only: checks that the OpenAPI document is valid OpenAPI 3.1.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0"),
        // The console's server-rendered pages (HTML-escaping by default).
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // Without its RuntimeInterposer trait: that one needs swift-runtime-interposer, which the mirror lacks.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibPQ", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Pure types every module shares: no OS threads, no files, no configuration sources.
        .target(
            name: "ConveyorCore",
            dependencies: [
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The settings catalogue and the task-type registry file: what the CLI reads.
        .target(
            name: "ConveyorConfiguration",
            dependencies: ["ConveyorCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Test-only crashes at named points (CONVEYOR_FAULT).
        .target(name: "ConveyorFaults", dependencies: ["ConveyorCore"], swiftSettings: swiftSettings),
        // The OS thread each blocking C client runs on.
        .target(name: "ConveyorWorkerThread", swiftSettings: swiftSettings),
        // Every metric's name, help and buckets, reachable from every module (the Redis client too).
        .target(name: "ConveyorMetricNames", swiftSettings: swiftSettings),
        .target(
            name: "ConveyorRedis",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "CHiredis", "ConveyorCore", "ConveyorWorkerThread", "ConveyorMetricNames",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorPostgres",
            dependencies: [
                "CLibPQ", "ConveyorCore", "ConveyorWorkerThread",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorObservability",
            dependencies: [
                "ConveyorCore", "ConveyorMetricNames", "CZlib",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorCoordinator",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "ConveyorCore", "ConveyorRedis", "ConveyorPostgres", "ConveyorObservability", "ConveyorFaults",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                // The OpenAPI document is written in YAML and served as JSON.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorAgent",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "ConveyorCore", "ConveyorRedis", "ConveyorObservability", "ConveyorFaults",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorEmbedded",
            dependencies: [
                "ConveyorCore", "ConveyorRedis", "ConveyorPostgres",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConveyorTesting",
            dependencies: [
                "ConveyorCore", "ConveyorEmbedded", "ConveyorRedis", "ConveyorPostgres",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "conveyor-load",
            dependencies: [
                "ConveyorCore", "ConveyorPostgres", "ConveyorRedis", "ConveyorEmbedded",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "LoadTests/ConveyorLoad",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "conveyor",
            dependencies: [
                "ConveyorCore", "ConveyorConfiguration", "ConveyorFaults", "ConveyorRedis", "ConveyorPostgres", "ConveyorObservability",
                "ConveyorCoordinator", "ConveyorAgent", "ConveyorEmbedded",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // `swift package benchmark` runs every executable under Benchmarks/; `swift build` builds them.
        .executableTarget(
            name: "ConveyorBenchmarks",
            dependencies: [
                "ConveyorCore", "ConveyorRedis", "ConveyorPostgres", "ConveyorCoordinator",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ConveyorBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),

        .testTarget(
            name: "ConveyorCoreTests",
            dependencies: [
                "ConveyorCore", "ConveyorConfiguration", "ConveyorFaults", "ConveyorWorkerThread", "ConveyorTesting",
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConveyorRedisTests",
            dependencies: ["ConveyorRedis"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConveyorPostgresTests",
            dependencies: ["ConveyorPostgres", "ConveyorTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConveyorAgentTests",
            dependencies: ["ConveyorAgent", "ConveyorRedis", "ConveyorMetricNames", .product(name: "MetricsTestKit", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConveyorCoordinatorTests",
            dependencies: [
                "ConveyorCoordinator", "ConveyorConfiguration", "ConveyorPostgres", "ConveyorRedis", "ConveyorObservability", "ConveyorTesting",
                .product(name: "Yams", package: "Yams"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConveyorLoadTests",
            dependencies: [
                "conveyor-load", "ConveyorEmbedded", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ConveyorTesting", "ConveyorConfiguration", "ConveyorCoordinator", "ConveyorAgent", "ConveyorRedis", "ConveyorPostgres", "ConveyorEmbedded",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "WSClient", package: "swift-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
