import ChimeraCore

/// An internal handler written in Swift, compiled into your own worker binary.
///
/// Implement ``handle(_:)`` as ordinary async code; ``ChimeraWorker/main(name:handlers:maxConcurrency:)``
/// serves it over the worker protocol (docs/PROTOCOL.md), so the coordinator runs it like any
/// other handler: declared in the config's `handlers[]`, routed to by name or, through `kinds`, by
/// JHADE.
///
/// ```swift
/// struct Shout: ChimeraHandler {
///     let name = "acme.shout"
///     let kinds = ["shout"]
///     func handle(_ request: HandlerRequest) async throws -> JSONValue {
///         .string(try request.inputText().uppercased())
///     }
/// }
/// ```
///
/// Errors: throw ``TaskFailure`` to choose the failure kind the caller sees (`invalid_input`,
/// or your own `TaskFailureKind(rawValue: "too_long")`); any other error fails the task as
/// `handler_error` with the error's description as the message. When the coordinator cancels
/// the task (its deadline passed), the Swift `Task` running `handle` is cancelled: `Task.sleep`
/// and other cancellable awaits throw `CancellationError`, and long loops should call
/// `try Task.checkCancellation()`. The caller has already been told `timeout` by then; what
/// `handle` returns after a cancel is dropped.
///
/// Concurrency: tasks run on Swift's cooperative pool, up to the worker's `max_concurrency` at
/// once, while the worker's loop keeps answering heartbeats. Do not block a thread for long
/// (use async I/O, or `await` between chunks of work).
public protocol ChimeraHandler: Sendable {
    /// The name tasks route by (`acme.slugify`); the config's `handlers[].name` must be this.
    var name: String { get }
    /// The task kinds this handler serves, declared in the handshake. JHADE routes by the kinds
    /// listed in the config entry, so list them there too (`--describe` prints the entry).
    var kinds: [String] { get }
    /// A prior in [0, 1]: how likely an answer to a simple task of its kinds is acceptable.
    /// Declared in the handshake and printed by `--describe`; JHADE reads it from the config. Default 0.5.
    var capability: Double { get }
    /// One line on what it does, its input and output; declared in the handshake. Default: empty.
    var docs: String { get }
    /// Runs one task and returns its output (any JSON value).
    func handle(_ request: HandlerRequest) async throws -> JSONValue
}

extension ChimeraHandler {
    public var capability: Double { 0.5 }
    public var docs: String { "" }
}

/// Serves a ``ChimeraHandler`` as a callback ``WorkerHandler``: each task runs in its own Swift
/// `Task` off the loop, and its answer hops back to the loop thread through a ``LoopInbox``.
///
/// The inbox keeps the loop alive only while tasks are in flight, so an idle worker still exits
/// when its input ends. A task cancelled by the coordinator is answered `cancelled` by the
/// server at once; its Swift `Task` is cancelled and its late answer dropped.
final class AsyncHandlerAdapter: WorkerHandler, DescribedHandler {
    let handler: any ChimeraHandler
    var name: String { handler.name }
    var kinds: [String] { handler.kinds }

    private struct Finished: Sendable {
        let id: Int
        let result: Result<[UInt8], TaskFailure>
    }

    private let loop: EventLoop
    private var inbox: LoopInbox<Finished>?
    private var running: [Int: (task: Task<Void, Never>, responder: HandlerResponder)] = [:]
    /// Cancelled tasks that have not returned yet; ``ChimeraWorker`` waits for them at exit.
    private(set) var cancelled: [Int: Task<Void, Never>] = [:]
    private var nextID = 0

    init(_ handler: any ChimeraHandler, loop: EventLoop) {
        self.handler = handler
        self.loop = loop
    }

    var handshakeMembers: [JSONMember] {
        [JSONMember("capability", .number(handler.capability))] + (handler.docs.isEmpty ? [] : [JSONMember("docs", .string(handler.docs))])
    }

    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let inbox: LoopInbox<Finished>
        do {
            inbox = try self.inbox ?? makeInbox()
        } catch {
            return responder.fail(TaskFailure(.handlerError, "cannot wake the worker loop: \(error)"))
        }
        inbox.keepsLoopAlive = true
        nextID += 1
        let id = nextID
        let handler = self.handler
        let task = Task {
            let result: Result<[UInt8], TaskFailure>
            do {
                var bytes: [UInt8] = []
                try await handler.handle(request).write(to: &bytes)
                result = .success(bytes)
            } catch let failure as TaskFailure {
                result = .failure(failure)
            } catch is CancellationError {
                result = .failure(TaskFailure(.cancelled, "\(request.handler) was cancelled"))
            } catch {
                result = .failure(TaskFailure(.handlerError, "\(request.handler): \(error)"))
            }
            inbox.post(Finished(id: id, result: result))
        }
        running[id] = (task, responder)
        responder.onCancel = { [weak self] in
            guard let self, let entry = self.running.removeValue(forKey: id) else { return }
            entry.task.cancel()
            self.cancelled[id] = entry.task
            self.updateKeepAlive()
        }
    }

    func serverWillStop() {
        for (id, entry) in running {
            entry.task.cancel()
            cancelled[id] = entry.task
        }
        running.removeAll()
        inbox?.close()
        inbox = nil
    }

    private func makeInbox() throws(UVError) -> LoopInbox<Finished> {
        let inbox = try LoopInbox<Finished>(loop: loop) { [weak self] batch in self?.receive(batch) }
        self.inbox = inbox
        return inbox
    }

    private func receive(_ batch: [Finished]) {
        for finished in batch {
            cancelled[finished.id] = nil
            guard let entry = running.removeValue(forKey: finished.id) else { continue }
            switch finished.result {
            case .success(let output): entry.responder.succeed(rawJSON: output)
            case .failure(let failure): entry.responder.fail(failure)
            }
        }
        updateKeepAlive()
    }

    private func updateKeepAlive() {
        inbox?.keepsLoopAlive = !running.isEmpty
    }
}

/// A handler that declares more than its name and kinds in the `initialize` answer.
protocol DescribedHandler {
    /// Members added to its entry in the handshake's `handlers` array.
    var handshakeMembers: [JSONMember] { get }
}
