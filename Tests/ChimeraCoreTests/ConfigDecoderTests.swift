import Testing
@testable import ChimeraCore

/// Decodes `text`, returning the config or the error.
func decodeConfig(_ text: String, file: String = "chimera.json") -> Result<ChimeraConfig, ConfigError> {
    do throws(ConfigError) {
        return .success(try ConfigDecoder.decode(Array(text.utf8), file: file))
    } catch {
        return .failure(error)
    }
}

/// The issues reported for `text` (empty if it decodes).
func configIssues(_ text: String) -> [ConfigIssue] { decodeConfig(text).failure?.issues ?? [] }

/// 1-based line and column of the first occurrence of `needle` in `text`, computed independently
/// of `SourceLocator`.
func location(of needle: String, in text: String, occurrence: Int = 1) -> (line: Int, column: Int)? {
    let bytes = Array(text.utf8)
    let n = Array(needle.utf8)
    var seen = 0
    for start in 0...(bytes.count - n.count) where Array(bytes[start..<(start + n.count)]) == n {
        seen += 1
        if seen == occurrence {
            let before = bytes[..<start]
            let line = before.filter { $0 == 0x0A }.count + 1
            let column = start - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            return (line, column)
        }
    }
    return nil
}

@Suite struct ConfigDecoderTests {
    // MARK: Valid configurations

    @Test func config_valid_decodesPoolsHandlersAndCoordinatorSettings() throws {
        let text = """
        {
          "$schema": "https://example.com/chimera.schema.json",
          "coordinator": {
            "queue_capacity": 100,
            "task_timeout_ms": 5000,
            "cancel_grace_ms": 250,
            "heartbeat_interval_ms": 1000,
            "heartbeat_timeout_ms": 3000,
            "handshake_timeout_ms": 700,
            "max_attempts": 3,
            "drain_grace_ms": 0,
            "stop_grace_ms": 100,
            "max_line_bytes": 4096,
            "on_malformed_output": "log"
          },
          "pools": [
            {
              "name": "main",
              "size": 3,
              "max_concurrency": 4,
              "test_handlers": true,
              "kinds": ["cpu"],
              "restart": { "max_restarts": 2, "window_ms": 1000, "backoff_initial_ms": 10, "backoff_max_ms": 100 }
            }
          ],
          "handlers": [
            {
              "name": "py.upper",
              "command": "python3",
              "args": ["upper.py", "--fast"],
              "env": { "MODE": "x", "LEVEL": "2" },
              "kinds": ["text.uppercase"],
              "capability": 0.5,
              "size": 2
            }
          ]
        }
        """
        let config = try decodeConfig(text).get()

        var coordinator = CoordinatorSettings()
        coordinator.queueCapacity = 100
        coordinator.taskTimeoutMs = 5_000
        coordinator.cancelGraceMs = 250
        coordinator.heartbeatIntervalMs = 1_000
        coordinator.heartbeatTimeoutMs = 3_000
        coordinator.handshakeTimeoutMs = 700
        coordinator.maxAttempts = 3
        coordinator.drainGraceMs = 0
        coordinator.stopGraceMs = 100
        coordinator.maxLineBytes = 4_096
        coordinator.restartOnMalformedOutput = false
        #expect(config.coordinator == coordinator)

        var main = PoolConfig(name: "main", handlers: BuiltinHandlerNames.standard + BuiltinHandlerNames.test)
        main.size = 3
        main.maxConcurrency = 4
        main.testHandlers = true
        main.kinds = ["cpu"]
        main.restart = RestartPolicy(maxRestarts: 2, windowMs: 1_000, backoffInitialMs: 10, backoffMaxMs: 100)

        var upper = PoolConfig(name: "py.upper", command: "python3", handlers: ["py.upper"])
        upper.arguments = ["upper.py", "--fast"]
        upper.environment = ["MODE": "x", "LEVEL": "2"]
        upper.kinds = ["text.uppercase"]
        upper.capability = 0.5
        upper.size = 2

        #expect(config.pools == [main, upper])
        #expect(config.pools[1].isBuiltin == false)
        #expect(config.pools[0].isBuiltin)
        #expect(config.pool(serving: "py.upper")?.name == "py.upper")
        // JHADE sees the built-in pool's offline handlers with their own kinds, and the custom
        // handler with the kinds and capability the config gives it.
        #expect(config.handlerCapabilities.map(\.handler) == BuiltinTextHandlers.names + ["py.upper"])
        #expect(config.handlerCapabilities.last == HandlerCapability(handler: "py.upper", kinds: ["text.uppercase"], prior: 0.5))
        #expect(config.handlerCapabilities.first { $0.handler == "math.eval" }?.kinds == ["math"])
        #expect(config.pool(serving: "crash")?.name == "main")
        #expect(config.pool(serving: "nobody") == nil)
    }

    @Test func config_emptyObject_isTheBuiltinDefault() throws {
        #expect(try decodeConfig("{}").get() == ChimeraConfig.builtinDefault)
        #expect(try decodeConfig(" {\n}\n").get() == ChimeraConfig.builtinDefault)
    }

    @Test func config_onlyHandlers_keepsTheBuiltinPool() throws {
        let config = try decodeConfig(#"{"handlers": [{"name": "shout", "command": "/usr/bin/shout"}]}"#).get()
        #expect(config.pools.count == 2)
        #expect(config.pools.first == ChimeraConfig.builtinDefault.pools.first)
        #expect(config.pools.last?.name == "shout")
        #expect(config.pools.last?.command == "/usr/bin/shout")
        #expect(config.pools.last?.handlers == ["shout"])
        #expect(config.pools.last?.arguments == [])
        #expect(config.pool(serving: "echo")?.name == "builtin")
        #expect(config.pool(serving: "shout")?.name == "shout")
    }

    @Test func config_explicitEmptyPools_dropsTheBuiltinPool() throws {
        let config = try decodeConfig(#"{"pools": [], "handlers": [{"name": "h", "command": "c"}]}"#).get()
        #expect(config.pools.map(\.name) == ["h"])
    }

    @Test func config_builtinPoolHandlersSubset_isKept() throws {
        let config = try decodeConfig(#"{"pools": [{"name": "b", "handlers": ["echo"]}]}"#).get()
        #expect(config.pools.map(\.handlers) == [["echo"]])
        #expect(config.pools.first?.maxConcurrency == nil)
        #expect(config.pools.first?.size == 1)
    }

    // MARK: Invalid configurations

    @Test func config_invalid_reportsAllProblemsWithPathsAndLocations() throws {
        let text = """
        {
          "pools": [
            { "name": "main", "size": "four", "handelrs": ["echo"] }
          ],
          "handlers": [
            { "name": "py", "args": ["x.py"] }
          ]
        }
        """
        let error = try #require(decodeConfig(text).failure)
        #expect(error.file == "chimera.json")
        #expect(error.issues.map(\.path) == ["$.pools[0].size", "$.pools[0].handelrs", "$.handlers[0]"])

        let size = error.issues[0]
        #expect(size.line == 3 && size.column == 31)
        #expect(size.description == #"3:31: $.pools[0].size: expected an integer from 1 to 256, found "four""#)

        let unknown = error.issues[1]
        #expect(unknown.line == 3 && unknown.column == 51)
        #expect(unknown.message == #"unknown field "handelrs" (did you mean "handlers"?); known fields: name, size, max_concurrency, restart, kinds, test_handlers, handlers, agent"#)

        let missing = error.issues[2]
        #expect(missing.line == 6 && missing.column == 5)
        #expect(missing.message == #"missing required field "command" (the executable to run, e.g. "python3")"#)

        // Independently computed locations agree.
        #expect(location(of: #""four""#, in: text).map { [$0.line, $0.column] } == [3, 31])
        #expect(location(of: #"["echo"]"#, in: text).map { [$0.line, $0.column] } == [3, 51])
        #expect(location(of: #"{ "name": "py""#, in: text).map { [$0.line, $0.column] } == [6, 5])

        #expect(error.description == """
        chimera.json: 3 problems in the configuration
          chimera.json:3:31: $.pools[0].size: expected an integer from 1 to 256, found "four"
          chimera.json:3:51: $.pools[0].handelrs: unknown field "handelrs" (did you mean "handlers"?); known fields: name, size, max_concurrency, restart, kinds, test_handlers, handlers, agent
          chimera.json:6:5: $.handlers[0]: missing required field "command" (the executable to run, e.g. "python3")
        """)
    }

    @Test func config_notJSON_givesOneIssueWithLineAndColumn() throws {
        let error = try #require(decodeConfig("{\n  \"pools\": [,]\n}", file: "bad.json").failure)
        #expect(error.issues == [ConfigIssue(path: "$", line: 2, column: 13, message: "not valid JSON: expected a JSON value")])
        #expect(error.description == "bad.json: invalid configuration\n  bad.json:2:13: $: not valid JSON: expected a JSON value")
    }

    @Test func config_invalidUTF8_isReportedAtItsLine() throws {
        let bytes = Array("{\n\"handlers\": [{\"name\": \"".utf8) + [0xC0, 0x80] + Array("\"}]}".utf8)
        do throws(ConfigError) {
            _ = try ConfigDecoder.decode(bytes, file: "x")
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.issues.count == 1)
            #expect(error.issues.first?.line == 2)
            #expect(error.issues.first?.column == 24)
            #expect(error.issues.first?.message == "not valid JSON: invalid UTF-8 in a string")
        }
    }

    @Test func config_rootNotAnObject_isReported() {
        #expect(configIssues("[]") == [ConfigIssue(path: "$", line: 1, column: 1, message: "expected an object, found an array")])
    }

    @Test func config_unknownTopLevelField_suggestsTheClosestKnownOne() throws {
        let issues = configIssues(#"{"pool": []}"#)
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.pool")
        #expect(issues.first?.message.contains(#"(did you mean "pools"?)"#) == true)
    }

    @Test func config_unknownFieldFarFromAnyKnownOne_hasNoSuggestion() throws {
        let issue = try #require(configIssues(#"{"zzzzzzzz": 1}"#).first)
        #expect(issue.message == #"unknown field "zzzzzzzz"; known fields: $schema, coordinator, pools, handlers, keys, openrouter, providers, jhade"#)
    }

    @Test func config_unknownKeyNeedingQuotes_usesABracketPath() throws {
        let issue = try #require(configIssues(#"{"coordinator": {"queue capacity": 5}}"#).first)
        #expect(issue.path == #"$.coordinator["queue capacity"]"#)
        #expect(issue.message.hasPrefix(#"unknown field "queue capacity" (did you mean "queue_capacity"?)"#))
    }

    @Test func config_coordinatorValues_areRangeAndTypeChecked() {
        let text = """
        {"coordinator": {
          "queue_capacity": 0,
          "max_attempts": 1.5,
          "task_timeout_ms": -1,
          "max_line_bytes": 100,
          "on_malformed_output": "crash",
          "heartbeat_interval_ms": 5000,
          "heartbeat_timeout_ms": 5000
        }}
        """
        let issues = configIssues(text)
        #expect(issues.map(\.path) == [
            "$.coordinator.queue_capacity",
            "$.coordinator.task_timeout_ms",
            "$.coordinator.max_attempts",
            "$.coordinator.max_line_bytes",
            "$.coordinator.on_malformed_output",
            "$.coordinator.heartbeat_timeout_ms",
        ])
        #expect(issues.map(\.line) == [2, 4, 3, 5, 6, 8])
        #expect(issues[0].message == "expected an integer from 1 to 10000000, found 0")
        #expect(issues[2].message == "expected an integer from 1 to 100, found 1.5")
        #expect(issues[4].message == #"expected "restart" or "log", found "crash""#)
        #expect(issues[5].message == "must be greater than heartbeat_interval_ms (5000), or every worker looks hung")
    }

    @Test func config_wrongContainerTypes_areReported() {
        let issues = configIssues(#"{"coordinator": [], "pools": {}, "handlers": [3, {"name": "", "command": "c", "args": "x", "env": {"A": 1}}]}"#)
        #expect(issues.map(\.path) == [
            "$.coordinator",
            "$.pools",
            "$.handlers[0]",
            "$.handlers[1].name",
            "$.handlers[1].args",
            "$.handlers[1].env.A",
        ])
        #expect(issues.map(\.message) == [
            "expected an object, found an array",
            "expected an array, found an object",
            "expected an object, found a number",
            #"expected a non-empty string, found """#,
            "expected an array of strings, found a string",
            "expected a string, found 1",
        ])
        #expect(issues.allSatisfy { $0.line == 1 && $0.column != nil })
    }

    @Test func config_builtinPoolWithUnknownHandler_listsWhatItHas() throws {
        let issue = try #require(configIssues(#"{"pools": [{"name": "b", "handlers": ["echo", "sleep"]}]}"#).first)
        #expect(issue.path == "$.pools[0].handlers[1]")
        #expect(issue.message == #"the built-in worker has no handler "sleep" (it has: echo, noop, text.summarize, text.keywords, text.classify, text.sentiment, json.extract, json.repair, json.validate, math.eval, text.stats, template.render)"#)
        #expect(configIssues(#"{"pools": [{"name": "b", "test_handlers": true, "handlers": ["echo", "sleep"]}]}"#).isEmpty)
    }

    @Test func config_restartSettings_areValidated() {
        let issues = configIssues(#"{"pools": [{"name": "b", "restart": {"max_restarts": -1, "windw_ms": 5}}]}"#)
        #expect(issues.map(\.path) == ["$.pools[0].restart.max_restarts", "$.pools[0].restart.windw_ms"])
        #expect(issues.last?.message.contains(#"did you mean "window_ms"?"#) == true)
    }

    @Test func config_capabilityOutOfRange_isReported() throws {
        let issue = try #require(configIssues(#"{"handlers": [{"name": "h", "command": "c", "capability": 2}]}"#).first)
        #expect(issue.path == "$.handlers[0].capability")
        #expect(issue.message == "expected a number from 0 to 1, found 2")
    }

    @Test func config_poolMissingName_isReportedAndDropped() {
        let issues = configIssues(#"{"pools": [{"size": 2}]}"#)
        #expect(issues == [ConfigIssue(path: "$.pools[0]", line: 1, column: 12, message: #"missing required field "name" (a name for the pool)"#)])
    }

    // MARK: Uniqueness

    @Test func config_handlerServedByTwoPools_isReported() throws {
        let issues = configIssues(#"{"pools": [{"name": "a", "handlers": ["echo"]}, {"name": "b", "handlers": ["noop", "echo"]}]}"#)
        #expect(issues == [ConfigIssue(path: "$", line: 1, column: 1, message: #"handler "echo" is served by both "a" and "b"; a handler must have one pool"#)])
    }

    @Test func config_customHandlerShadowingABuiltin_isReported() throws {
        let issues = configIssues(#"{"handlers": [{"name": "echo", "command": "my-echo"}]}"#)
        #expect(issues.map(\.message) == [#"handler "echo" is served by both "builtin" and "echo"; a handler must have one pool"#])
    }

    @Test func config_duplicatePoolNames_areReported() throws {
        let issues = configIssues(#"{"pools": [{"name": "a", "handlers": ["echo"]}, {"name": "a", "handlers": ["noop"]}]}"#)
        #expect(issues.map(\.message) == [#"two pools are named "a"; names must be unique"#])
    }

    // MARK: Locations and suggestions

    @Test func sourceLocator_offsets_mapToOneBasedLinesAndByteColumns() {
        let locator = SourceLocator(Array("ab\n\ncdé\nx".utf8))
        #expect(locator.lineColumn(of: 0) == (1, 1))
        #expect(locator.lineColumn(of: 2) == (1, 3))
        #expect(locator.lineColumn(of: 3) == (2, 1))
        #expect(locator.lineColumn(of: 4) == (3, 1))
        #expect(locator.lineColumn(of: 8) == (3, 5))
        #expect(locator.lineColumn(of: 9) == (4, 1))
        #expect(SourceLocator([]).lineColumn(of: 0) == (1, 1))
    }

    @Test func suggestion_closest_isWithinAThirdOfTheWordLength() {
        #expect(Suggestion.closest(to: "sise", in: ["size", "name"]) == "size")
        #expect(Suggestion.closest(to: "comand", in: ["command", "args"]) == "command")
        #expect(Suggestion.closest(to: "xyz", in: ["size", "name"]) == nil)
        #expect(Suggestion.closest(to: "", in: ["a"]) == "a")
        #expect(Suggestion.distance(Array("kitten".utf8), Array("sitting".utf8)) == 3)
        #expect(Suggestion.distance([], Array("abc".utf8)) == 3)
        #expect(Suggestion.distance(Array("abc".utf8), []) == 3)
    }

    @Test func config_numberBeyondDoubleRange_isNotDescribedAsNull() throws {
        // A number beyond Double's range is refused where it stands, not passed on as infinity.
        let issue = try #require(configIssues(#"{"pools": [{"name": "b", "size": 1e400}]}"#).first)
        #expect(issue.message == "not valid JSON: number 1e400 is out of range")
        #expect(issue.line == 1 && issue.column == 34)
    }
}

@Suite struct ConfigLimitsTests {
    @Test func config_nonsensicalDurations_areRefusedWithTheirMinimum() throws {
        let text = #"{"coordinator": {"task_timeout_ms": 0, "heartbeat_interval_ms": 0}, "pools": [{"name": "b", "restart": {"backoff_initial_ms": 900, "backoff_max_ms": 100}}]}"#
        do {
            _ = try ConfigDecoder.decode(Array(text.utf8), file: "c.json")
            Issue.record("expected a ConfigError")
        } catch {
            let messages = error.issues.map { "\($0.path): \($0.message)" }
            #expect(messages.contains("$.coordinator.task_timeout_ms: expected an integer from 1 to 31536000000, found 0"))
            #expect(messages.contains("$.coordinator.heartbeat_interval_ms: expected an integer from 10 to 31536000000, found 0"))
            #expect(messages.contains("$.pools[0].restart.backoff_initial_ms: must not exceed backoff_max_ms (100)"))
        }
    }
}
