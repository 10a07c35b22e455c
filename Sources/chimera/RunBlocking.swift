import Dispatch

/// Runs async work (AsyncHTTPClient, Hummingbird) from a synchronous command and waits for it.
///
/// The root command is synchronous on purpose: an async root would start Swift's concurrency
/// runtime — its threads and descriptors — in every `chimera worker` process, which then leak
/// into what workers run (`childrenInheritOnlyStdio` checks it). Commands that need async work
/// start it here, on the cooperative pool, and block the main thread until it is done.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Carries a result from the task to the waiting thread.
private final class BlockingResult<T>: @unchecked Sendable {
    // Written once by the task before it signals the semaphore; read only after the wait.
    var result: Result<T, any Error>?
}
