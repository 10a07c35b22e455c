import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A scratch CHIMERA_HOME and config for one test, removed afterwards.
final class KeysSandbox {
    let root: String
    var home: String { root + "/home" }
    var configPath: String { root + "/chimera.json" }
    /// Obviously fake keys; the tests search every output and file for them.
    static let keyA = "sk-or-v1-fakeAAAA0000000000000000000000000000000000000000000000000a1b2"
    static let keyB = "sk-or-v1-fakeBBBB0000000000000000000000000000000000000000000000000c3d4"
    static let keyC = "sk-or-v1-fakeCCCC0000000000000000000000000000000000000000000000000e5f6"

    init(config: String) {
        var template = Array("/tmp/chimera-keys-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let fd = open(configPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        FileIO.writeAll(Array(config.utf8), fd: fd)
        close(fd)
    }

    deinit { _ = system("rm -rf '\(root)'") }

    /// Environment for a `chimera` child: this home, this config, the fake keys in test-only variables.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ["CHIMERA_HOME": home, "CHIMERA_CONFIG": configPath, "TEST_KEY_A": Self.keyA, "TEST_KEY_B": Self.keyB, "CHIMERA_LOG": "info"]
            .merging(extra) { $1 }
    }

    func run(_ arguments: [String], input: String = "", environment extra: [String: String] = [:]) throws -> CLIRun {
        let run = CLIRun()
        try run.run(arguments, input: input, environment: environment(extra))
        return run
    }

    /// Every byte of every file under the sandbox.
    func allFileBytes() -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        for name in ["chimera.json"] + directoryEntries(home).map({ "home/" + $0 }) where name != "chimera.json" {
            if let bytes = try? FileIO.readAll(root + "/" + name) { out.append((name, bytes)) }
        }
        return out
    }

    func directoryEntries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    func mode(of name: String) -> mode_t {
        var st = stat()
        stat(home + "/" + name, &st)
        return st.st_mode & 0o777
    }
}

extension CLIRun {
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard haystack.count >= n.count else { return false }
    for i in 0...(haystack.count - n.count) where haystack[i] == n[0] && Array(haystack[i..<(i + n.count)]) == n { return true }
    return false
}

/// Runs several `chimera` processes at once on one loop and collects their output.
func runConcurrently(_ commands: [[String]], environment: [String: String]) throws -> [(status: ChildExitStatus?, stdout: String, stderr: String)] {
    let loop = try EventLoop()
    var results = Array(repeating: (status: ChildExitStatus?.none, stdout: [UInt8](), stderr: [UInt8]()), count: commands.count)
    var children: [ChildProcess] = []
    for (i, arguments) in commands.enumerated() {
        let inPipe = PipeStream(loop: loop, label: "stdin")
        let outPipe = PipeStream(loop: loop, label: "stdout")
        let errPipe = PipeStream(loop: loop, label: "stderr")
        children.append(try ChildProcess(loop: loop, options: .init(executable: Paths.chimera, arguments: arguments, environment: environment),
                                         stdin: inPipe, stdout: outPipe, stderr: errPipe) { results[i].status = $0 })
        try outPipe.startReading { event in
            guard case .data(let bytes) = event else { return outPipe.close() }
            results[i].stdout += bytes
        }
        try errPipe.startReading { event in
            guard case .data(let bytes) = event else { return errPipe.close() }
            results[i].stderr += bytes
        }
        inPipe.close()
    }
    loop.run()
    try loop.close()
    return results.map { ($0.status, String(decoding: $0.stdout, as: UTF8.self), String(decoding: $0.stderr, as: UTF8.self)) }
}

@Suite("chimera keys, through the real CLI and store", .timeLimit(.minutes(2)))
struct KeysCLITests {
    /// Two keys in one account limited to 50 requests a day and no per-minute limit, so that the
    /// daily cap is what several processes race for.
    static let sharedAccountConfig = """
    {"keys": {"read_environment": false, "strategy": "round_robin", "reserve_high_priority": 0,
      "accounts": [{"name": "shared", "tier": "custom", "limits": {"per_day": 50}}],
      "entries": [{"label": "a", "env": "TEST_KEY_A", "account": "shared"}, {"label": "b", "env": "TEST_KEY_B", "account": "shared"}]}}
    """

    func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(text)
    }

    @Test func severalProcesses_reservingFromOneAccount_neverOverdraw() throws {
        let box = KeysSandbox(config: Self.sharedAccountConfig)
        // Create the ledger first so that the racing processes do not also race to migrate it.
        _ = try box.run(["keys", "list"])
        let results = try runConcurrently(Array(repeating: ["keys", "reserve", "--count", "20", "--json"], count: 5), environment: box.environment())
        var granted = 0, refused = 0
        for r in results {
            let report = try json(r.stdout.split(separator: "\n").last.map(String.init) ?? "")
            granted += Int(report["granted"]?.numberValue ?? -1)
            refused += Int(report["refused"]?.numberValue ?? -1)
            #expect(r.status == ChildExitStatus(code: r.stdout.contains("\"refused\":0") ? 0 : 1, signal: 0), "stderr: \(r.stderr)")
        }
        #expect(granted == 50, "5 processes × 20 requests against 50/day must grant exactly 50")
        #expect(refused == 50)

        let list = try box.run(["keys", "list", "--json"])
        let keys = try json(list.stdoutText)["keys"]
        guard case .array(let entries)? = keys else { Issue.record("no keys in \(list.stdoutText)"); return }
        for entry in entries { #expect(entry["used_today"]?.numberValue == 50) }
        // The refusal says why and when it ends.
        let last = try box.run(["keys", "reserve", "--json"])
        #expect(last.status == ChildExitStatus(code: 1, signal: 0))
        #expect(last.stdoutText.contains("reset") || last.stdoutText.contains("next change in"), "\(last.stdoutText)")
    }

    @Test func reservationsLeftUnsettled_byAProcessThatEnds_stayCounted_andSurviveARestart() throws {
        let box = KeysSandbox(config: Self.sharedAccountConfig)
        let first = try box.run(["keys", "reserve", "--count", "3", "--outcome", "none", "--json"])
        #expect(first.status == ChildExitStatus(code: 0, signal: 0), "\(first.stderrText)")
        let released = try box.run(["keys", "reserve", "--count", "2", "--outcome", "release"])
        #expect(released.status == ChildExitStatus(code: 0, signal: 0))
        let sent = try box.run(["keys", "reserve", "--count", "4", "--outcome", "fail"])
        #expect(sent.status == ChildExitStatus(code: 0, signal: 0))
        let list = try box.run(["keys", "list", "--json"])
        guard case .array(let entries)? = try json(list.stdoutText)["keys"] else { Issue.record("bad list: \(list.stdoutText)"); return }
        // 3 never settled + 4 sent and failed count (OpenRouter counts failed attempts); 2 released do not.
        #expect(entries.first?["used_today"]?.numberValue == 7)
    }

    @Test func addListRemove_neverShowTheKey_inOutputLogsOrFiles() throws {
        let box = KeysSandbox(config: #"{"keys": {"read_environment": true}}"#)
        let env = ["OPENROUTER_API_KEY": KeysSandbox.keyA, "OPENROUTER_API_KEY_7": KeysSandbox.keyB, "CHIMERA_LOG": "trace"]
        var outputs: [String] = []
        let add = try box.run(["keys", "add", "--label", "stored", "--account", "team", "--tier", "credits"], input: KeysSandbox.keyC + "\n", environment: env)
        #expect(add.status == ChildExitStatus(code: 0, signal: 0), "\(add.stderrText)")
        #expect(add.stdoutText.contains("sk-or-…e5f6"))
        // The same key again, from stdin: refused, nothing changed.
        let again = try box.run(["keys", "add"], input: KeysSandbox.keyC, environment: env)
        #expect(again.status == ChildExitStatus(code: 2, signal: 0))
        #expect(again.stderrText.contains("already in the store"))
        // A key duplicated between the environment and the store is one key, with a warning.
        let dup = try box.run(["keys", "add", "--label", "dup"], input: KeysSandbox.keyA, environment: env)
        #expect(dup.status == ChildExitStatus(code: 0, signal: 0))
        let list = try box.run(["keys", "list"], environment: env)
        #expect(list.status == ChildExitStatus(code: 0, signal: 0))
        #expect(list.stdoutText.contains("sk-or-…a1b2") && list.stdoutText.contains("sk-or-…c3d4") && list.stdoutText.contains("sk-or-…e5f6"))
        #expect(list.stdoutText.contains("team") && list.stdoutText.contains("credits") && list.stdoutText.contains("0/1000"))
        #expect(list.stderrText.contains("is in both"))
        #expect(list.stdoutText.split(separator: "\n").filter { $0.contains("sk-or-…a1b2") }.count == 1, "a duplicated key is listed once")
        let reserve = try box.run(["keys", "reserve", "--count", "5"], environment: env)
        let audit = try box.run(["keys", "audit"], environment: env)
        #expect(audit.stdoutText.contains("add") && audit.stdoutText.contains("stored"))
        let listJSON = try box.run(["keys", "list", "--json"], environment: env)
        let remove = try box.run(["keys", "remove", "stored"], environment: env)
        #expect(remove.status == ChildExitStatus(code: 0, signal: 0), "\(remove.stderrText)")
        let removeEnv = try box.run(["keys", "remove", "OPENROUTER_API_KEY_7"], environment: env)
        #expect(removeEnv.status == ChildExitStatus(code: 2, signal: 0))
        #expect(removeEnv.stderrText.contains("$OPENROUTER_API_KEY_7"))
        let after = try box.run(["keys", "list"], environment: env)
        #expect(!after.stdoutText.contains("sk-or-…e5f6"))
        for run in [add, again, dup, list, reserve, audit, listJSON, remove, removeEnv, after] {
            outputs += [run.stdoutText, run.stderrText]
        }
        for key in [KeysSandbox.keyA, KeysSandbox.keyB, KeysSandbox.keyC] {
            let secretPart = String(key.dropFirst(9))  // without `sk-or-v1-`
            for text in outputs { #expect(!text.contains(secretPart), "a key leaked into output: \(text.prefix(200))") }
            for (name, bytes) in box.allFileBytes() { #expect(!contains(bytes, secretPart), "a key is in clear in \(name)") }
        }
        #expect(box.mode(of: "keys.enc") == 0o600)
        #expect(box.mode(of: "master.key") == 0o600)
        #expect(box.mode(of: "ledger.sqlite") == 0o600)
    }

    @Test func keysAdd_refusesAKeyOnTheCommandLine() throws {
        let box = KeysSandbox(config: "{}")
        let run = try box.run(["keys", "add", KeysSandbox.keyA])
        #expect(run.status == ChildExitStatus(code: 2, signal: 0), "a usage error exits 2: \(run.stderrText)")
        #expect(!run.stderrText.contains(String(KeysSandbox.keyA.dropFirst(9))), "the error must not echo the key")
        #expect(box.directoryEntries(box.home).contains("keys.enc") == false)
    }

    @Test func wrongMasterKey_andTamperedStore_failClearly() throws {
        let box = KeysSandbox(config: "{}")
        let master1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  // base64 of 32 ASCII bytes
        let master2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
        let add = try box.run(["keys", "add", "--label", "x"], input: KeysSandbox.keyC, environment: ["CHIMERA_MASTER_KEY": master1])
        #expect(add.status == ChildExitStatus(code: 0, signal: 0), "\(add.stderrText)")
        #expect(!box.directoryEntries(box.home).contains("master.key"), "with CHIMERA_MASTER_KEY set no key file is created")
        let wrong = try box.run(["keys", "list"], environment: ["CHIMERA_MASTER_KEY": master2])
        #expect(wrong.status == ChildExitStatus(code: 2, signal: 0))
        #expect(wrong.stderrText.contains("different master key"), "\(wrong.stderrText)")
        let missing = try box.run(["keys", "list"])
        #expect(missing.status == ChildExitStatus(code: 2, signal: 0))
        #expect(missing.stderrText.contains("CHIMERA_MASTER_KEY"), "\(missing.stderrText)")

        // Flip one byte in the ciphertext.
        let path = box.home + "/keys.enc"
        var bytes = try FileIO.readAll(path)
        bytes[bytes.count - 20] ^= 0x01
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        FileIO.writeAll(bytes, fd: fd)
        close(fd)
        let tampered = try box.run(["keys", "list"], environment: ["CHIMERA_MASTER_KEY": master1])
        #expect(tampered.status == ChildExitStatus(code: 2, signal: 0))
        #expect(tampered.stderrText.contains("modified or is damaged"), "\(tampered.stderrText)")
    }

    @Test func disableAndEnable_areAudited_andHonouredBySelection() throws {
        let box = KeysSandbox(config: Self.sharedAccountConfig)
        let disable = try box.run(["keys", "disable", "a", "--reason", "rotating"])
        #expect(disable.status == ChildExitStatus(code: 0, signal: 0), "\(disable.stderrText)")
        let reserve = try box.run(["keys", "reserve", "--count", "4", "--json"])
        #expect(reserve.stdoutText.contains("\"granted\":4"))
        #expect(!reserve.stdoutText.contains(KeyFingerprintProbe.id(of: "a", in: box)), "a disabled key must not be leased")
        let list = try box.run(["keys", "list", "--json"])
        #expect(list.stdoutText.contains("\"state\":\"disabled\""))
        let enable = try box.run(["keys", "enable", "a"])
        #expect(enable.stdoutText.contains("disabled → active"), "\(enable.stdoutText)")
        let audit = try box.run(["keys", "audit"])
        #expect(audit.stdoutText.contains("active → disabled") && audit.stdoutText.contains("disabled → active") && audit.stdoutText.contains("rotating"), "\(audit.stdoutText)")
        let events = try box.run(["keys", "events"])
        #expect(events.stdoutText.contains("key_disabled") && events.stdoutText.contains("key_enabled"), "\(events.stdoutText)")
    }

    @Test func forecast_reportsUsageAndAccountsNeeded() throws {
        let box = KeysSandbox(config: Self.sharedAccountConfig)
        _ = try box.run(["keys", "reserve", "--count", "10"])
        let forecast = try box.run(["keys", "forecast", "--json"])
        #expect(forecast.status == ChildExitStatus(code: 0, signal: 0), "\(forecast.stderrText)")
        let report = try json(forecast.stdoutText)
        guard case .array(let accounts)? = report["accounts"] else { Issue.record("\(forecast.stdoutText)"); return }
        #expect(accounts.count == 1)
        #expect(accounts.first?["used_today"]?.numberValue == 10)
        #expect((report["accounts_needed"]?.numberValue ?? 0) >= 1)
    }
}

/// Finds a key's id from `keys list --json` by label.
enum KeyFingerprintProbe {
    static func id(of label: String, in box: KeysSandbox) -> String {
        guard let run = try? box.run(["keys", "list", "--json"]),
              let value = try? JSONParser.parse(run.stdoutText),
              case .array(let keys)? = value["keys"] else { return "<none>" }
        return keys.first { $0["label"]?.stringValue == label }?["id"]?.stringValue ?? "<none>"
    }
}
