import ChimeraCore
import Crypto

/// The stable id of an API key, shown by the CLI and used as the key's row id in the quota ledger.
///
/// `k_` followed by the first 8 bytes of SHA-256 of the key text, in lowercase hex (18 characters).
/// A truncated hash of a high-entropy key cannot be turned back into the key, yet 64 bits keep ids
/// of different keys apart.
public enum KeyFingerprint {
    /// The id of `key`, e.g. `k_3f9a0c1d2e4b5a67`.
    public static func of(_ key: APIKeySecret) -> String {
        let digest = SHA256.hash(data: Array(key.reveal().utf8))
        var id = "k_"
        for byte in digest.prefix(8) {
            id.append(hexDigits[Int(byte >> 4)])
            id.append(hexDigits[Int(byte & 0x0F)])
        }
        return id
    }

    private static let hexDigits = Array("0123456789abcdef")
}
