/// The encrypted API-key store, `<CHIMERA_HOME>/keys.enc`.
///
/// File format, version 1 (all of it written at once, see ``AtomicFile``):
///
/// ```
/// offset  length  content
///      0       4  magic "CHKS"
///      4       1  format version, 1
///      5      16  key-check value: the first 16 bytes of HMAC-SHA256(master key, "chimera key check v1")
///     21      12  AES-256-GCM nonce (random for every save)
///     33       n  ciphertext of the plaintext below
///   33+n      16  GCM tag
/// ```
///
/// The 21-byte header (magic, version, check value) is the GCM associated data, so it cannot be
/// altered unnoticed. The encryption key is HKDF-SHA256(master key, salt: none,
/// info: "chimera keys.enc v1", 32 bytes), so the master key itself never touches the cipher.
/// The check value tells "another master key" apart from "damaged file" without a decryption
/// attempt; it reveals nothing usable about a 256-bit random master key.
///
/// The plaintext is compact UTF-8 JSON:
///
/// ```
/// {"version":1,"keys":[{"key":"sk-or-…","label":"work"|null,"account":"acme"|null,
///                        "tier":"free"|"credits"|"custom"|null,"added_at":1764424800000}]}
/// ```
import ChimeraCore
import Crypto
import Foundation  // DataProtocol conformances for swift-crypto's byte arguments
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One API key in the store, with what the user said about it.
public struct StoredKey: Sendable, Equatable {
    /// The key itself.
    public var secret: APIKeySecret
    /// A name of the user's choosing (`--label`), shown instead of the id where given.
    public var label: String?
    /// The OpenRouter account the key belongs to; keys of one account share its quota.
    public var account: String?
    /// The key's quota tier, if the user gave one; otherwise config decides.
    public var tier: KeyTier?
    /// When the key was added.
    public var addedAt: EpochMillis

    /// The key's stable id (``KeyFingerprint``), e.g. `k_3f9a0c1d2e4b5a67`.
    public var id: String { KeyFingerprint.of(secret) }

    public init(secret: APIKeySecret, label: String? = nil, account: String? = nil, tier: KeyTier? = nil, addedAt: EpochMillis) {
        self.secret = secret
        self.label = label
        self.account = account
        self.tier = tier
        self.addedAt = addedAt
    }
}

/// Reads and writes the key list in `keys.enc`, encrypted under a ``MasterKey``.
///
/// Every call reads or writes the whole file; the list is small. Use ``update(_:)`` for
/// read-modify-write, so that concurrent `chimera keys add` processes do not lose each other's keys.
public struct EncryptedKeyStore: Sendable {
    /// The store's file name inside CHIMERA_HOME.
    public static let fileName = "keys.enc"

    /// The store file.
    public let path: String
    let masterKey: MasterKey

    /// A store at `path` (usually `<CHIMERA_HOME>/keys.enc`); nothing is read until ``load()``.
    public init(path: String, masterKey: MasterKey) {
        self.path = path
        self.masterKey = masterKey
    }

    /// The stored keys, in the order they were saved; `[]` if the file does not exist.
    ///
    /// - Throws: ``KeyStoreError/wrongMasterKey(path:origin:)`` if the file was encrypted with
    ///   another master key, ``KeyStoreError/damaged(path:reason:)`` if it was altered or cut
    ///   short, ``KeyStoreError/unsupportedVersion(path:version:)`` if a newer chimera wrote it,
    ///   ``KeyStoreError/io(operation:path:errno:)`` if it cannot be read.
    public func load() throws(KeyStoreError) -> [StoredKey] {
        guard let file = try AtomicFile.read(path, limit: Self.maxFileBytes) else { return [] }
        guard file.bytes.count <= Self.maxFileBytes else {
            throw .damaged(path: path, reason: "it is larger than \(Self.maxFileBytes >> 20) MiB, far more than any key list")
        }
        return try open(file.bytes)
    }

    /// Replaces the stored keys with `keys`, atomically, in a file of mode 0600.
    ///
    /// This overwrites whatever is there; to add or remove keys use ``update(_:)``.
    public func save(_ keys: [StoredKey]) throws(KeyStoreError) {
        try AtomicFile.write(try seal(keys), to: path, mode: 0o600)
    }

    /// Loads the keys, lets `body` change them, and saves them if they changed, all while holding
    /// an exclusive lock on `<path>.lock`, so concurrent updates (by other processes or threads)
    /// are applied one after the other and none is lost.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: what ``load()``, `body` or ``save(_:)`` throw; if `body` throws nothing is saved.
    public func update<T>(_ body: (inout [StoredKey]) throws(KeyStoreError) -> T) throws(KeyStoreError) -> T {
        try AtomicFile.withExclusiveLock(path + ".lock") { () throws(KeyStoreError) -> T in
            let before = try load()
            var keys = before
            let result = try body(&keys)
            if keys != before { try save(keys) }
            return result
        }
    }

    // MARK: - Format

    static let magic: [UInt8] = Array("CHKS".utf8)
    static let formatVersion: UInt8 = 1
    static let checkLength = 16
    static let headerLength = 4 + 1 + 16
    static let nonceLength = 12
    static let tagLength = 16
    static let maxFileBytes = 16 << 20
    static let checkMessage = Array("chimera key check v1".utf8)
    static let encryptionInfo = Array("chimera keys.enc v1".utf8)

    /// The header this store's master key writes.
    var expectedHeader: [UInt8] {
        let code = HMAC<SHA256>.authenticationCode(for: Self.checkMessage, using: masterKey.key)
        return Self.magic + [Self.formatVersion] + Array(code.prefix(Self.checkLength))
    }

    var encryptionKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey.key, info: Self.encryptionInfo, outputByteCount: 32)
    }

    /// The complete file for `keys`.
    func seal(_ keys: [StoredKey]) throws(KeyStoreError) -> [UInt8] {
        try seal(plaintext: Self.plaintext(keys))
    }

    /// The complete file for an encoded key list (separate so tests can seal malformed lists).
    func seal(plaintext: [UInt8]) throws(KeyStoreError) -> [UInt8] {
        let header = expectedHeader
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(plaintext, using: encryptionKey, nonce: AES.GCM.Nonce(), authenticating: header)
        } catch {
            throw .encryptionFailed(path: path, reason: "\(error)")
        }
        // `combined` is nil only for nonces other than 12 bytes; ours is the default size.
        guard let combined = box.combined else { throw .encryptionFailed(path: path, reason: "no combined form") }
        return header + Array(combined)
    }

    /// The keys in `file`, a complete store file.
    func open(_ file: [UInt8]) throws(KeyStoreError) -> [StoredKey] {
        guard file.count >= Self.magic.count, Array(file.prefix(Self.magic.count)) == Self.magic else {
            throw .damaged(path: path, reason: "it does not start with \"CHKS\", so it is not a Chimera key store")
        }
        let minimum = Self.headerLength + Self.nonceLength + Self.tagLength
        guard file.count >= minimum else {
            throw .damaged(path: path, reason: "it is only \(file.count) bytes long, shorter than any key store (cut short?)")
        }
        let header = Array(file[0..<Self.headerLength])
        let body = file[Self.headerLength...]
        let expected = expectedHeader

        if header != expected {
            // Another master key, a newer format, or an altered header. Only in the last case does
            // the body authenticate under the header this master key would have written.
            if authenticatedPlaintext(body, header: expected) != nil {
                throw .damaged(path: path, reason: "its header was altered")
            }
            let version = file[Self.magic.count]
            if version > Self.formatVersion { throw .unsupportedVersion(path: path, version: version) }
            if version != Self.formatVersion {
                throw .damaged(path: path, reason: "it claims format version \(version), which does not exist")
            }
            throw .wrongMasterKey(path: path, origin: masterKey.origin)
        }
        guard let plaintext = authenticatedPlaintext(body, header: header) else {
            throw .damaged(path: path, reason: "its contents fail authentication")
        }
        do throws(Malformed) {
            return try Self.keys(fromPlaintext: plaintext)
        } catch {
            throw .damaged(path: path, reason: "its decrypted contents are not a key list (\(error.reason))")
        }
    }

    /// The plaintext of `body` (nonce, ciphertext, tag) if it authenticates with `header`.
    private func authenticatedPlaintext(_ body: ArraySlice<UInt8>, header: [UInt8]) -> [UInt8]? {
        guard let box = try? AES.GCM.SealedBox(combined: body),
              let plaintext = try? AES.GCM.open(box, using: encryptionKey, authenticating: header)
        else { return nil }
        return Array(plaintext)
    }

    // MARK: - Plaintext

    static func plaintext(_ keys: [StoredKey]) -> [UInt8] {
        let items = keys.map { key in
            JSONValue.object([
                JSONMember("key", .string(key.secret.reveal())),
                JSONMember("label", key.label.map(JSONValue.string) ?? .null),
                JSONMember("account", key.account.map(JSONValue.string) ?? .null),
                JSONMember("tier", key.tier.map { .string($0.rawValue) } ?? .null),
                JSONMember("added_at", .number(Double(key.addedAt))),
            ])
        }
        var out: [UInt8] = []
        JSONValue.object([JSONMember("version", .number(1)), JSONMember("keys", .array(items))]).write(to: &out)
        return out
    }

    /// Why a decrypted plaintext is not a key list. Reasons never quote values, which may be keys.
    struct Malformed: Error {
        var reason: String
    }

    static func keys(fromPlaintext bytes: [UInt8]) throws(Malformed) -> [StoredKey] {
        let document: JSONValue
        do throws(JSONSyntaxError) {
            document = try JSONParser.parse(bytes).value
        } catch {
            throw Malformed(reason: "invalid JSON: \(error.reason) at byte \(error.offset)")
        }
        guard case .number(1) = document["version"] else { throw Malformed(reason: "\"version\" is not 1") }
        guard case .array(let items) = document["keys"] else { throw Malformed(reason: "no \"keys\" array") }
        var keys: [StoredKey] = []
        keys.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let at = "in keys[\(index)]"
            guard case .object = item else { throw Malformed(reason: "keys[\(index)] is not an object") }
            guard let text = item["key"]?.stringValue, !text.isEmpty else { throw Malformed(reason: "no \"key\" \(at)") }
            guard case .number(let added) = item["added_at"], added == added.rounded(), abs(added) <= 0x1p53 else {
                throw Malformed(reason: "\"added_at\" \(at) is not a whole number")
            }
            var tier: KeyTier?
            if let name = try optionalString(item, "tier", at) {
                guard let known = KeyTier(rawValue: name) else { throw Malformed(reason: "unknown \"tier\" \(at)") }
                tier = known
            }
            keys.append(StoredKey(secret: APIKeySecret(text), label: try optionalString(item, "label", at),
                                  account: try optionalString(item, "account", at), tier: tier,
                                  addedAt: EpochMillis(added)))
        }
        return keys
    }

    /// A member that is a string, null or absent.
    private static func optionalString(_ item: JSONValue, _ name: String, _ at: String) throws(Malformed) -> String? {
        switch item[name] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw Malformed(reason: "\"\(name)\" \(at) is not a string")
        }
    }
}

/// Why the key store or master key cannot be used. Every message names the file (or variable)
/// and says what to do; none contains an API key or a master key.
public enum KeyStoreError: Error, Sendable, CustomStringConvertible {
    /// The store's key-check value is not this master key's: it was encrypted with another one.
    case wrongMasterKey(path: String, origin: String)
    /// The store fails authentication, has a bad header or length, or decrypts to something other
    /// than a key list.
    case damaged(path: String, reason: String)
    /// The store was written in a newer format than this build reads.
    case unsupportedVersion(path: String, version: UInt8)
    /// `CHIMERA_MASTER_KEY` or the key file (`origin`) does not hold base64 of 32 bytes.
    case badMasterKey(origin: String, reason: String)
    /// The master key file can be accessed by group or others (`mode` is its permission bits).
    case masterKeyTooOpen(path: String, mode: UInt32)
    /// The master key file is missing while the store it encrypted exists.
    case masterKeyMissing(path: String, storePath: String)
    /// Sealing failed inside swift-crypto (not expected to happen).
    case encryptionFailed(path: String, reason: String)
    /// A system call on `path` failed with `errno`.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .wrongMasterKey(let path, let origin):
            return "\(EncryptedKeyStore.fileName) at \(path) was encrypted with a different master key than the one from "
                + "\(origin); set \(MasterKey.environmentVariable) to the key used when the keys were added (or restore "
                + "the \(MasterKey.fileName) file from then), or move \(path) aside and add the keys again"
        case .damaged(let path, let reason):
            return "\(path) has been modified or is damaged: \(reason); restore it from a backup or move it aside "
                + "and add the keys again"
        case .unsupportedVersion(let path, let version):
            return "\(path) is in key store format version \(version), but this chimera reads only version "
                + "\(EncryptedKeyStore.formatVersion); use a newer chimera, or move the file aside and add the keys again"
        case .badMasterKey(let origin, let reason) where origin == MasterKey.environmentVariable:
            return "\(origin) does not hold a valid master key: \(reason); it must be base64 of exactly "
                + "\(MasterKey.byteCount) random bytes, as made by `\(MasterKey.generateCommand)` (if keys were "
                + "already added, set it to the key used then)"
        case .badMasterKey(let path, let reason):
            return "the master key file \(path) is not valid: \(reason); it must hold base64 of exactly "
                + "\(MasterKey.byteCount) bytes. Restore it from a backup (the stored keys cannot be read without it), "
                + "or, if no keys were stored, delete it and it will be created again"
        case .masterKeyTooOpen(let path, let mode):
            let octal = String(mode, radix: 8)
            return "the master key file \(path) has mode \(String(repeating: "0", count: max(0, 4 - octal.count)))\(octal), "
                + "which lets other users access it; run `chmod 600 \(path)`"
        case .masterKeyMissing(let path, let storePath):
            return "the master key file \(path) is missing, but \(storePath) exists and can only be read with the key "
                + "it was encrypted with; restore \(path) from a backup or set \(MasterKey.environmentVariable) to that "
                + "key, or move \(storePath) aside and add the keys again"
        case .encryptionFailed(let path, let reason):
            return "cannot encrypt the keys for \(path): \(reason); nothing was written. This is a bug, please report it"
        case .io(let operation, let path, let code):
            return "cannot \(operation) \(path): \(String(cString: strerror(code))) (errno \(code)); check that the "
                + "path is right, that you may read and write it, and that the disk has space"
        }
    }
}
