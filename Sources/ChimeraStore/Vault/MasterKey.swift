import Crypto
import Foundation  // only for base64

/// The 256-bit key that encrypts `keys.enc`.
///
/// It comes from the `CHIMERA_MASTER_KEY` environment variable when that is set (for machines
/// where a secret manager injects it), else from `<CHIMERA_HOME>/master.key`, which is created on
/// first use. Both hold base64 of exactly 32 random bytes. Losing the master key means losing the
/// stored API keys, which then have to be added again.
public struct MasterKey: @unchecked Sendable {
    // Unchecked: `SymmetricKey` is immutable once made (its storage is never written after init),
    // but swift-crypto 3.12 does not declare it Sendable yet.
    let key: SymmetricKey

    /// Where the key came from, for messages: `"CHIMERA_MASTER_KEY"` or the key file's path.
    public let origin: String

    /// The key file's name inside CHIMERA_HOME.
    public static let fileName = "master.key"
    /// The environment variable that, when set and non-empty, overrides the key file.
    public static let environmentVariable = "CHIMERA_MASTER_KEY"
    /// How to make a key by hand, quoted in error messages.
    public static let generateCommand = "head -c 32 /dev/urandom | base64"

    static let byteCount = 32
    /// A key file is one line of 44 characters; anything much longer is not a key file.
    static let maxFileBytes = 4096

    init(key: SymmetricKey, origin: String) {
        self.key = key
        self.origin = origin
    }

    /// Finds the master key: `CHIMERA_MASTER_KEY` if set and non-empty, else `<home>/master.key`.
    ///
    /// - Parameters:
    ///   - environment: the process environment (injected so tests need not change the real one).
    ///   - home: CHIMERA_HOME, the directory of `master.key` and `keys.enc`.
    ///   - create: whether to create `master.key` (mode 0600, 32 random bytes) when it is missing;
    ///     `chimera keys add` passes true, commands that only read keys pass false.
    /// - Returns: the key, or nil if there is neither a variable nor a file and `create` is false.
    /// - Throws: ``KeyStoreError/badMasterKey(origin:reason:)`` if the variable or file does not
    ///   hold base64 of 32 bytes, ``KeyStoreError/masterKeyTooOpen(path:mode:)`` if the file is
    ///   accessible to group or others, ``KeyStoreError/masterKeyMissing(path:storePath:)`` if
    ///   `create` is true but `keys.enc` already exists (a new key could not read it), and
    ///   ``KeyStoreError/io(operation:path:errno:)`` if the file cannot be read or written.
    public static func load(environment: [String: String], home: String, create: Bool) throws(KeyStoreError) -> MasterKey? {
        if let text = environment[environmentVariable], !text.isEmpty {
            return try decode(text, origin: environmentVariable)
        }
        let path = AtomicFile.join(home, fileName)
        if let existing = try readFile(path) { return existing }
        guard create else { return nil }

        // A fresh key cannot open a store sealed with the lost one, and adding a key would replace
        // that store; better to stop and say so.
        let storePath = AtomicFile.join(home, EncryptedKeyStore.fileName)
        if AtomicFile.exists(storePath) { throw .masterKeyMissing(path: path, storePath: storePath) }

        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        for _ in 0..<(byteCount / 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        let text = Data(bytes).base64EncodedString() + "\n"
        if try AtomicFile.create(Array(text.utf8), at: path, mode: 0o600) {
            return MasterKey(key: SymmetricKey(data: bytes), origin: path)
        }
        // Another process created the file between our read and our link: use its key.
        return try readFile(path)
    }

    /// The key in the file at `path`, or nil if there is no file.
    private static func readFile(_ path: String) throws(KeyStoreError) -> MasterKey? {
        guard let file = try AtomicFile.read(path, limit: maxFileBytes) else { return nil }
        // Like ssh with private keys: a key others can read is refused rather than used.
        guard file.mode & 0o077 == 0 else { throw .masterKeyTooOpen(path: path, mode: UInt32(file.mode)) }
        guard file.bytes.count <= maxFileBytes else {
            throw .badMasterKey(origin: path, reason: "it is longer than \(maxFileBytes) bytes")
        }
        guard let text = String(bytes: file.bytes, encoding: .utf8) else {
            throw .badMasterKey(origin: path, reason: "it is not text")
        }
        return try decode(text, origin: path)
    }

    /// Parses base64 of exactly 32 bytes, ignoring surrounding whitespace (a trailing newline).
    private static func decode(_ text: String, origin: String) throws(KeyStoreError) -> MasterKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .badMasterKey(origin: origin, reason: "it is blank") }
        // Never quote the text: it is meant to be a secret, however malformed.
        guard let data = Data(base64Encoded: trimmed) else {
            throw .badMasterKey(origin: origin, reason: "it is not valid base64 (\(trimmed.utf8.count) characters)")
        }
        guard data.count == byteCount else {
            throw .badMasterKey(origin: origin, reason: "it decodes to \(data.count) bytes, not \(byteCount)")
        }
        return MasterKey(key: SymmetricKey(data: data), origin: origin)
    }
}
