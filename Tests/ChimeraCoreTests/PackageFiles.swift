#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files of the package the core tests read (ChimeraCore has no file I/O of its own).
enum PackageFiles {
    /// The package root, three levels above this file.
    static let root: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    /// The whole file at `path` (absolute, or relative to the package root), or nil.
    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path.hasPrefix("/") ? path : root + "/" + path, "rbe") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }

    /// The names in directory `path` (relative to the package root), sorted.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(root + "/" + path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names.sorted()
    }
}
