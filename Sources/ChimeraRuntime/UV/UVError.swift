import CLibUV

/// A libuv error code with the operation that returned it.
public struct UVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The negative libuv error code (`UV_EPIPE`, `UV_ENOENT`, ...).
    public let code: Int32
    /// What was being done, e.g. "spawn python3".
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The short name, e.g. `EPIPE`.
    public var name: String { String(cString: uv_err_name(code)) }
    public var description: String { "\(operation): \(String(cString: uv_strerror(code))) (\(name))" }

    static func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(UVError) {
        if status < 0 { throw UVError(code: status, operation: operation()) }
    }

    /// A spawn failure that trying again cannot fix: the executable is missing or not runnable.
    public var isPermanentSpawnFailure: Bool {
        code == UV_ENOENT.rawValue || code == UV_EACCES.rawValue
    }
}
