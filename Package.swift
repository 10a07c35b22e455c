// swift-tools-version:6.0
import PackageDescription

// Module split (see docs/ARCHITECTURE.md):
//   CLibUV          the C library, one system-library target; only ChimeraRuntime imports it.
//   ChimeraCore     pure logic and wire formats: no I/O, no clocks, no processes.
//   ChimeraRuntime  the libuv event loop wrapper, coordinator, supervisor, worker server.
//   chimera         the command-line tool (coordinator and worker are the same binary).
let package = Package(
    name: "Chimera",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chimera", targets: ["chimera"]),
        .library(name: "ChimeraCore", targets: ["ChimeraCore"]),
        .library(name: "ChimeraRuntime", targets: ["ChimeraRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
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
            name: "ChimeraRuntime",
            dependencies: [
                "CLibUV",
                "ChimeraCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "chimera",
            dependencies: [
                "ChimeraCore",
                "ChimeraRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChimeraCoreTests", dependencies: ["ChimeraCore"]),
        .testTarget(
            name: "ChimeraRuntimeTests",
            dependencies: ["ChimeraRuntime", "ChimeraCore", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
