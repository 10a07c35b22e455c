import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a fresh directory from `mkdtemp` under /tmp, removed afterwards.
func withTemporaryDirectory(prefix: String, _ body: (String) throws -> Void) throws {
    var template = Array("/tmp/chimera-\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
    try #require(made, "mkdtemp failed")
    let dir = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try body(dir)
}

/// The permission bits of `path` (including setuid/setgid/sticky, so 0600 means exactly that).
func mode(of path: String) throws -> mode_t {
    var info = stat()
    try #require(stat(path, &info) == 0, "stat \(path) failed")
    return info.st_mode & 0o7777
}
