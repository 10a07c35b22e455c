// swift-tools-version:6.0
import PackageDescription

// Module split (see docs/ARCHITECTURE.md):
//   CLibUV          the C library, one system-library target; only ChimeraRuntime imports it.
//   ChimeraCore     pure logic and wire formats: no I/O, no clocks, no processes.
//   ChimeraStore    durable state under CHIMERA_HOME: the quota ledger (SQLite via GRDB) and the
//                   encrypted key store (AES-256-GCM via swift-crypto). Uses Foundation; ChimeraCore does not.
//   ChimeraOpenRouter  the HTTP client for OpenRouter and OpenAI-compatible APIs (AsyncHTTPClient).
//   ChimeraSimulator   a faithful local OpenRouter (Hummingbird), for tests, demos and capacity plans.
//   ChimeraRuntime  the libuv event loop wrapper, coordinator, supervisor, worker server, key broker.
//   ChimeraReports  quality reports, internal vs external: pure aggregation of outcome rows, then table/JSON/Markdown/HTML.
//   chimera         the command-line tool (coordinator and worker are the same binary).
//   chimera-example-worker  examples/handlers/swift: a worker binary of Swift handlers (ChimeraWorker.main).
let package = Package(
    name: "Chimera",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chimera", targets: ["chimera"]),
        .library(name: "ChimeraCore", targets: ["ChimeraCore"]),
        .library(name: "ChimeraStore", targets: ["ChimeraStore"]),
        .library(name: "ChimeraRuntime", targets: ["ChimeraRuntime"]),
        .library(name: "ChimeraOpenRouter", targets: ["ChimeraOpenRouter"]),
        .library(name: "ChimeraSimulator", targets: ["ChimeraSimulator"]),
        .library(name: "ChimeraReports", targets: ["ChimeraReports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Already built for async-http-client; named so an agent worker's pipes can run on its loop.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(
            name: "ChimeraCore",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "ChimeraStore",
            dependencies: [
                "ChimeraCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "ChimeraOpenRouter",
            dependencies: [
                "ChimeraCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .target(
            name: "ChimeraSimulator",
            dependencies: [
                "ChimeraCore",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .target(
            name: "ChimeraRuntime",
            dependencies: [
                "CLibUV",
                "ChimeraCore",
                "ChimeraStore",
                "ChimeraOpenRouter",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ChimeraReports",
            dependencies: [
                "ChimeraCore",
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(
            name: "chimera",
            dependencies: [
                "ChimeraCore",
                "ChimeraRuntime",
                "ChimeraStore",
                "ChimeraOpenRouter",
                "ChimeraSimulator",
                "ChimeraReports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // A worker binary of your own: Swift handlers served with ChimeraWorker.main (examples/handlers/README.md).
        .executableTarget(
            name: "chimera-example-worker",
            dependencies: ["ChimeraRuntime", "ChimeraCore"],
            path: "examples/handlers/swift"
        ),
        .testTarget(name: "ChimeraCoreTests", dependencies: ["ChimeraCore"]),
        .testTarget(name: "ChimeraStoreTests", dependencies: ["ChimeraStore", "ChimeraCore"]),
        .testTarget(name: "ChimeraReportsTests", dependencies: ["ChimeraReports", "ChimeraCore"]),
        .testTarget(
            name: "ChimeraOpenRouterTests",
            dependencies: [
                "ChimeraOpenRouter", "ChimeraSimulator", "ChimeraCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "ChimeraRuntimeTests",
            dependencies: ["ChimeraRuntime", "ChimeraCore", "ChimeraStore", "ChimeraSimulator", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
