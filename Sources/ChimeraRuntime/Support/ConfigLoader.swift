import ChimeraCore
#if canImport(Glibc)
import Glibc
#endif

/// Finds, reads and decodes the configuration, the way every `chimera` command does:
/// `--config PATH`, else `$CHIMERA_CONFIG`, else `./chimera.json`, else built-in defaults.
public enum ConfigLoader {
    /// A configuration and where it came from.
    public struct Loaded: Sendable {
        public var config: ChimeraConfig
        /// The file read, or `nil` for built-in defaults.
        public var path: String?
        public var sourceDescription: String { path ?? "built-in defaults (no --config, CHIMERA_CONFIG or ./chimera.json)" }
    }

    /// Why no configuration could be loaded.
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func load(explicitPath: String?, environment: [String: String] = ProcessEnvironment.current) throws -> Loaded {
        let path: String
        if let explicitPath {
            path = explicitPath
        } else if let fromEnv = environment["CHIMERA_CONFIG"], !fromEnv.isEmpty {
            path = fromEnv
        } else if FileIO.exists("chimera.json") {
            path = "chimera.json"
        } else {
            return Loaded(config: .builtinDefault, path: nil)
        }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readAll(path)
        } catch {
            let origin = explicitPath != nil ? "--config" : (environment["CHIMERA_CONFIG"] != nil ? "CHIMERA_CONFIG" : "./chimera.json")
            throw LoadError(description: "\(path): cannot read the configuration (from \(origin)): \(error)")
        }
        var config = try ConfigDecoder.decode(bytes, file: path)
        let directory = FileIO.absoluteDirectory(of: path)
        for index in config.pools.indices where !config.pools[index].isBuiltin && config.pools[index].workingDirectory == nil {
            config.pools[index].workingDirectory = directory
        }
        return Loaded(config: config, path: path)
    }

    /// Where Chimera keeps its state: `$CHIMERA_HOME`, else `~/.local/share/chimera`.
    public static func homeDirectory(environment: [String: String] = ProcessEnvironment.current) -> String {
        if let home = environment["CHIMERA_HOME"], !home.isEmpty { return home }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/chimera" }
        return (environment["HOME"] ?? ".") + "/.local/share/chimera"
    }
}
