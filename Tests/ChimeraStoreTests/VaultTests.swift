import ChimeraCore
@testable import ChimeraStore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The encrypted key store, the master key and their files. Every test works in its own
/// directory under /tmp, removed at the end.
@Suite struct VaultTests {
    static let fakeKey = "sk-or-v1-fake0000000000000000000000000000000000000000000000000000a1b2"

    /// A distinct fake key of the same shape for each `n`.
    static func fakeKey(_ n: Int) -> String {
        let digits = String(n)
        return "sk-or-v1-fake" + String(repeating: "0", count: 52 - digits.count) + digits + "a1b2"
    }

    static func sampleKeys() -> [StoredKey] {
        [
            StoredKey(secret: APIKeySecret(fakeKey), label: "work \"main\" ✓", account: "acme", tier: .credits,
                      addedAt: 1_764_424_800_123),
            StoredKey(secret: APIKeySecret(fakeKey(2)), label: nil, account: "acme", tier: .free, addedAt: 1_764_424_900_000),
            StoredKey(secret: APIKeySecret(fakeKey(3)), label: "spare", account: nil, tier: nil, addedAt: 0),
            StoredKey(secret: APIKeySecret(fakeKey(4)), label: "", account: "personal", tier: .custom, addedAt: -5),
        ]
    }

    /// A master key of 32 bytes all equal to `seed`, as if from CHIMERA_MASTER_KEY.
    static func masterKey(_ seed: UInt8) throws -> MasterKey {
        let text = Data(repeating: seed, count: 32).base64EncodedString()
        return try #require(try MasterKey.load(environment: ["CHIMERA_MASTER_KEY": text], home: "/nonexistent", create: false))
    }

    // MARK: - Round trip

    @Test func roundTripOfSeveralKeys() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let store = EncryptedKeyStore(path: dir + "/keys.enc", masterKey: try Self.masterKey(7))
            #expect(try store.load() == [])
            try store.save(Self.sampleKeys())
            #expect(try store.load() == Self.sampleKeys())
            // A second store object with the same key reads the same list.
            let again = EncryptedKeyStore(path: dir + "/keys.enc", masterKey: try Self.masterKey(7))
            #expect(try again.load() == Self.sampleKeys())
            try store.save([])
            #expect(try store.load() == [])
        }
    }

    @Test func storeCreatesMissingDirectoriesPrivately() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let store = EncryptedKeyStore(path: dir + "/a/b/keys.enc", masterKey: try Self.masterKey(7))
            try store.save(Self.sampleKeys())
            #expect(try store.load() == Self.sampleKeys())
            #expect(try mode(of: dir + "/a") == 0o700)
            #expect(try mode(of: dir + "/a/b") == 0o700)
        }
    }

    @Test func filesHaveMode0600() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let master = try #require(try MasterKey.load(environment: [:], home: dir, create: true))
            let store = EncryptedKeyStore(path: dir + "/keys.enc", masterKey: master)
            try store.update { keys in keys = Self.sampleKeys() }
            #expect(try mode(of: dir + "/master.key") == 0o600)
            #expect(try mode(of: dir + "/keys.enc") == 0o600)
            #expect(try mode(of: dir + "/keys.enc.lock") == 0o600)
            // Replacing the file keeps the mode.
            try store.save([])
            #expect(try mode(of: dir + "/keys.enc") == 0o600)
        }
    }

    // MARK: - Master key

    @Test func masterKeyFromEnvironment() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let text = Data((0..<32).map { UInt8($0) }).base64EncodedString()
            let master = try #require(try MasterKey.load(environment: ["CHIMERA_MASTER_KEY": text + "\n"], home: dir, create: true))
            #expect(master.origin == "CHIMERA_MASTER_KEY")
            #expect(try contents(of: dir) == [], "a key from the environment creates no file")

            let notBase64 = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: ["CHIMERA_MASTER_KEY": "not base64!!"], home: dir, create: true)
            }
            let notBase64Text = try #require(notBase64).description
            #expect(notBase64Text.contains("CHIMERA_MASTER_KEY"))
            #expect(notBase64Text.contains("not valid base64"))
            #expect(notBase64Text.contains("head -c 32 /dev/urandom | base64"))
            #expect(!notBase64Text.contains("not base64!!"), "the (secret) value is never quoted")

            let short = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: ["CHIMERA_MASTER_KEY": Data(count: 16).base64EncodedString()], home: dir, create: true)
            }
            let shortText = try #require(short).description
            #expect(shortText.contains("decodes to 16 bytes"))
            #expect(shortText.contains("head -c 32 /dev/urandom | base64"))

            // Empty means unset: the key file is used (here: none, and none is made).
            #expect(try MasterKey.load(environment: ["CHIMERA_MASTER_KEY": ""], home: dir, create: false) == nil)
        }
    }

    @Test func masterKeyFileIsCreatedOnlyWhenAsked() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let home = dir + "/home"
            #expect(try MasterKey.load(environment: [:], home: home, create: false) == nil)
            #expect(!FileManager.default.fileExists(atPath: home + "/master.key"))

            let created = try #require(try MasterKey.load(environment: [:], home: home, create: true))
            #expect(created.origin == home + "/master.key")
            #expect(try mode(of: home) == 0o700)
            let text = try #require(String(data: try Data(contentsOf: URL(fileURLWithPath: home + "/master.key")), encoding: .utf8))
            #expect(text.hasSuffix("\n"))
            #expect(Data(base64Encoded: String(text.dropLast()))?.count == 32)

            // Later loads, with or without `create`, find the same key.
            let reloaded = try #require(try MasterKey.load(environment: [:], home: home, create: false))
            let store = EncryptedKeyStore(path: home + "/keys.enc", masterKey: created)
            try store.save(Self.sampleKeys())
            #expect(try EncryptedKeyStore(path: home + "/keys.enc", masterKey: reloaded).load() == Self.sampleKeys())
            #expect(try contents(of: home) == ["keys.enc", "master.key"])
        }
    }

    @Test func openMasterKeyFileIsRefused() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            _ = try MasterKey.load(environment: [:], home: dir, create: true)
            let path = dir + "/master.key"
            #expect(chmod(path, 0o644) == 0)
            let error = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: [:], home: dir, create: true)
            }
            guard case .masterKeyTooOpen = try #require(error) else {
                Issue.record("expected masterKeyTooOpen, got \(String(describing: error))")
                return
            }
            let text = try #require(error).description
            #expect(text.contains("chmod 600 \(path)"))
            #expect(text.contains("0644"))
            #expect(chmod(path, 0o600) == 0)
            #expect(try MasterKey.load(environment: [:], home: dir, create: false) != nil)
        }
    }

    @Test func invalidMasterKeyFileIsRefused() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/master.key"
            try AtomicFile.write(Array((Data(count: 16).base64EncodedString() + "\n").utf8), to: path)
            let error = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: [:], home: dir, create: true)
            }
            let text = try #require(error).description
            #expect(text.contains(path))
            #expect(text.contains("decodes to 16 bytes"))

            try AtomicFile.write(Array("%%%%\n".utf8), to: path)
            let garbage = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: [:], home: dir, create: true)
            }
            #expect(try #require(garbage).description.contains("not valid base64"))
        }
    }

    @Test func masterKeyIsNotRecreatedBesideAnExistingStore() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let master = try #require(try MasterKey.load(environment: [:], home: dir, create: true))
            try EncryptedKeyStore(path: dir + "/keys.enc", masterKey: master).save(Self.sampleKeys())
            #expect(unlink(dir + "/master.key") == 0)
            let error = #expect(throws: KeyStoreError.self) {
                try MasterKey.load(environment: [:], home: dir, create: true)
            }
            guard case .masterKeyMissing = try #require(error) else {
                Issue.record("expected masterKeyMissing, got \(String(describing: error))")
                return
            }
            #expect(!FileManager.default.fileExists(atPath: dir + "/master.key"))
        }
    }

    // MARK: - Wrong key, tampering, damage

    @Test func wrongMasterKeyIsReportedAsSuch() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            try EncryptedKeyStore(path: path, masterKey: try Self.masterKey(1)).save(Self.sampleKeys())
            let other = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(2))
            let error = #expect(throws: KeyStoreError.self) {
                try other.load()
            }
            guard case .wrongMasterKey = try #require(error) else {
                Issue.record("expected wrongMasterKey, got \(String(describing: error))")
                return
            }
            let text = try #require(error).description
            #expect(text.contains(path))
            #expect(text.contains("different master key"))
            #expect(text.contains("CHIMERA_MASTER_KEY"))
            #expect(!text.contains("modified"))
            // update refuses too, and leaves the file alone.
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(throws: KeyStoreError.self) {
                try other.update { keys in keys = [] }
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        }
    }

    @Test func everyFlippedByteIsDetectedAsTampering() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let store = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(9))
            try store.save(Self.sampleKeys())
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for index in original.indices {
                for flip: UInt8 in [0x01, 0x80] {
                    var bytes = original
                    bytes[index] ^= flip
                    try Data(bytes).write(to: URL(fileURLWithPath: path))  // no fsync: hundreds of rounds
                    expectDamaged(try store.load(), "byte \(index) ^ \(flip)")
                }
            }
        }
    }

    @Test func truncatedFileIsDetectedAsDamage() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let store = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(9))
            try store.save(Self.sampleKeys())
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for length in 0..<original.count {
                try Data(original.prefix(length)).write(to: URL(fileURLWithPath: path))
                expectDamaged(try store.load(), "length \(length)")
            }
            try AtomicFile.write(original + [0], to: path)
            expectDamaged(try store.load(), "one byte appended")
        }
    }

    @Test func newerFormatVersionIsReported() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            // A version-2 header and a body this build cannot authenticate.
            try AtomicFile.write(Array("CHKS".utf8) + [2] + [UInt8](repeating: 0x5A, count: 16 + 12 + 40 + 16), to: path)
            let error = #expect(throws: KeyStoreError.self) {
                try EncryptedKeyStore(path: path, masterKey: try Self.masterKey(9)).load()
            }
            guard case .unsupportedVersion(_, 2) = try #require(error) else {
                Issue.record("expected unsupportedVersion, got \(String(describing: error))")
                return
            }
            #expect(try #require(error).description.contains(path))
        }
    }

    @Test func wellSealedButMalformedListIsDamage() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let store = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(4))
            let key = Self.fakeKey
            let plaintexts = [
                "not json \(key)",
                "{\"version\":2,\"keys\":[]}",
                "{\"version\":1}",
                "{\"version\":1,\"keys\":[{\"label\":null,\"added_at\":1}]}",
                "{\"version\":1,\"keys\":[{\"key\":\"\(key)\"}]}",
                "{\"version\":1,\"keys\":[{\"key\":\"\(key)\",\"added_at\":1.5}]}",
                "{\"version\":1,\"keys\":[{\"key\":\"\(key)\",\"added_at\":1,\"tier\":\"gold\"}]}",
                "{\"version\":1,\"keys\":[{\"key\":\"\(key)\",\"added_at\":1,\"label\":7}]}",
                "{\"version\":1,\"keys\":[\"\(key)\"]}",
            ]
            for plaintext in plaintexts {
                try AtomicFile.write(try store.seal(plaintext: Array(plaintext.utf8)), to: path)
                expectDamaged(try store.load(), "plaintext \(plaintext.prefix(40))")
            }
            // Absent optional members are fine.
            let minimal = "{\"version\":1,\"keys\":[{\"key\":\"\(key)\",\"added_at\":1}]}"
            try AtomicFile.write(try store.seal(plaintext: Array(minimal.utf8)), to: path)
            #expect(try store.load() == [StoredKey(secret: APIKeySecret(key), addedAt: 1)])
        }
    }

    // MARK: - Files on disk

    @Test func keyTextAppearsInNoFile() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let master = try #require(try MasterKey.load(environment: [:], home: dir, create: true))
            let store = EncryptedKeyStore(path: dir + "/" + EncryptedKeyStore.fileName, masterKey: master)
            try store.update { keys in keys = Self.sampleKeys() }
            let names = try contents(of: dir)
            #expect(names == ["keys.enc", "keys.enc.lock", "master.key"])
            let needles = Self.sampleKeys().map { Array($0.secret.reveal().utf8) } + [Array("sk-or-v1".utf8), Array("acme".utf8)]
            for name in names {
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
                for needle in needles {
                    #expect(!contains(bytes, needle), "\(name) contains \(String(decoding: needle.prefix(8), as: UTF8.self))…")
                }
            }
        }
    }

    @Test func noTemporaryFilesRemain() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let store = EncryptedKeyStore(path: dir + "/keys.enc", masterKey: try Self.masterKey(3))
            for round in 0..<5 {
                try store.save(Array(Self.sampleKeys().prefix(round)))
            }
            #expect(try contents(of: dir) == ["keys.enc"])

            // A failed replace (the target is a non-empty directory) removes its temporary file.
            let blocked = dir + "/blocked"
            #expect(mkdir(blocked, 0o700) == 0)
            #expect(mkdir(blocked + "/inside", 0o700) == 0)
            let error = #expect(throws: KeyStoreError.self) {
                try EncryptedKeyStore(path: blocked, masterKey: try Self.masterKey(3)).save(Self.sampleKeys())
            }
            guard case .io = try #require(error) else {
                Issue.record("expected io, got \(String(describing: error))")
                return
            }
            #expect(try #require(error).description.contains(blocked))
            #expect(try contents(of: dir) == ["blocked", "keys.enc"])
        }
    }

    // MARK: - Concurrency

    @Test func concurrentUpdatesLoseNoKey() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let master = try Self.masterKey(5)
            let threads = 8, perThread = 5
            let failures = FailureLog()
            let group = DispatchGroup()
            for t in 0..<threads {
                group.enter()
                let thread = Thread {
                    // Each thread its own store value, as each process would have.
                    let store = EncryptedKeyStore(path: path, masterKey: master)
                    for i in 0..<perThread {
                        do {
                            try store.update { keys in
                                keys.append(StoredKey(secret: APIKeySecret(Self.fakeKey(100 + t * perThread + i)),
                                                      label: "t\(t)", addedAt: EpochMillis(i)))
                            }
                        } catch {
                            failures.record("\(error)")
                        }
                    }
                    group.leave()
                }
                thread.start()
            }
            group.wait()
            #expect(failures.all == [])
            let keys = try EncryptedKeyStore(path: path, masterKey: master).load()
            #expect(keys.count == threads * perThread)
            #expect(Set(keys.map(\.id)).count == threads * perThread)
        }
    }

    @Test func updateSavesOnlyChangesAndNothingOnFailure() throws {
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let store = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(6))
            let count = try store.update { keys in keys.count }
            #expect(count == 0)
            #expect(!FileManager.default.fileExists(atPath: path), "an unchanged list is not written")

            let added = try store.update { keys in
                keys.append(contentsOf: Self.sampleKeys())
                return keys.count
            }
            #expect(added == 4)
            #expect(throws: KeyStoreError.self) {
                try store.update { keys throws(KeyStoreError) in
                    keys.removeAll()
                    throw .damaged(path: path, reason: "test")
                }
            }
            #expect(try store.load() == Self.sampleKeys())
        }
    }

    // MARK: - Messages and ids

    @Test func errorDescriptionsNeverContainTheKey() throws {
        let key = Self.fakeKey
        let errors: [KeyStoreError] = [
            .wrongMasterKey(path: "/h/keys.enc", origin: "CHIMERA_MASTER_KEY"),
            .damaged(path: "/h/keys.enc", reason: "its contents fail authentication"),
            .unsupportedVersion(path: "/h/keys.enc", version: 9),
            .badMasterKey(origin: "CHIMERA_MASTER_KEY", reason: "it decodes to 16 bytes, not 32"),
            .badMasterKey(origin: "/h/master.key", reason: "it is blank"),
            .masterKeyTooOpen(path: "/h/master.key", mode: 0o640),
            .masterKeyMissing(path: "/h/master.key", storePath: "/h/keys.enc"),
            .encryptionFailed(path: "/h/keys.enc", reason: "x"),
            .io(operation: "write", path: "/h/keys.enc", errno: ENOSPC),
        ]
        for error in errors {
            #expect(error.description.contains("/h/") || error.description.contains("CHIMERA_MASTER_KEY"))
        }
        #expect(KeyStoreError.io(operation: "write", path: "/h/keys.enc", errno: ENOSPC).description.contains("No space left"))

        // Errors from real failures, with the key in the store or in a broken plaintext.
        try withTemporaryDirectory(prefix: "vault") { dir in
            let path = dir + "/keys.enc"
            let store = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(1))
            var seen: [KeyStoreError] = []
            try AtomicFile.write(try store.seal(plaintext: Array("{\"version\":1,\"keys\":[{\"key\":\"\(key)\",\"added_at\":0.5}]}".utf8)), to: path)
            do throws(KeyStoreError) { _ = try store.load() } catch { seen.append(error) }
            try AtomicFile.write(try store.seal(plaintext: Array("[\"\(key)\" oops".utf8)), to: path)
            do throws(KeyStoreError) { _ = try store.load() } catch { seen.append(error) }
            try store.save(Self.sampleKeys())
            let other = EncryptedKeyStore(path: path, masterKey: try Self.masterKey(2))
            do throws(KeyStoreError) { _ = try other.load() } catch { seen.append(error) }
            #expect(seen.count == 3)
            for error in seen + errors {
                #expect(!error.description.contains(key))
                #expect(!error.description.contains(String(key.dropFirst(6).prefix(20))))
            }
        }
    }

    @Test func fingerprintIsStableAnd18Characters() {
        let id = KeyFingerprint.of(APIKeySecret(Self.fakeKey))
        #expect(id == "k_663f52a82077afba")  // k_ + hex(SHA-256(key)[0..<8]), computed independently
        #expect(id.count == 18)
        #expect(KeyFingerprint.of(APIKeySecret(" \(Self.fakeKey)\n")) == id)
        #expect(KeyFingerprint.of(APIKeySecret(Self.fakeKey(2))) != id)
        #expect(StoredKey(secret: APIKeySecret(Self.fakeKey), addedAt: 0).id == id)
        #expect(id.dropFirst(2).allSatisfy { "0123456789abcdef".contains($0) })
    }
}

// MARK: - Helpers

/// Expects `body` to throw ``KeyStoreError/damaged(path:reason:)`` (not a crash, not keys, not
/// another error) and its message to say what to do.
private func expectDamaged(_ body: @autoclosure () throws -> [StoredKey], _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let keys = try body()
        Issue.record("\(what): loaded \(keys.count) keys", sourceLocation: sourceLocation)
    } catch let error as KeyStoreError {
        guard case .damaged = error else {
            Issue.record("\(what): expected damaged, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.description.contains("has been modified or is damaged"), sourceLocation: sourceLocation)
        #expect(!error.description.contains(VaultTests.fakeKey), sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): unexpected \(error)", sourceLocation: sourceLocation)
    }
}

private func contents(of dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
}

private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return (0...(haystack.count - needle.count)).contains { start in
        haystack[start..<(start + needle.count)].elementsEqual(needle)
    }
}

/// Errors collected from several threads.
private final class FailureLog: @unchecked Sendable {
    // Unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var failures: [String] = []

    func record(_ failure: String) { lock.withLock { failures.append(failure) } }
    var all: [String] { lock.withLock { failures } }
}
