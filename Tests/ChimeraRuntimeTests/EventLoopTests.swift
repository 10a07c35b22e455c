import Synchronization
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

@Suite("libuv wrapper")
struct EventLoopTests {
    @Test func timersFireInOrder_andTheLoopClosesClean() throws {
        let loop = try EventLoop()
        var fired: [String] = []
        let slow = Timer(loop: loop)
        let fast = Timer(loop: loop)
        slow.start(after: 20) { fired.append("slow"); slow.close() }
        fast.start(after: 1) { fired.append("fast"); fast.close() }
        loop.run()
        #expect(fired == ["fast", "slow"])
        try loop.close()
    }

    @Test func closingTheLoop_withAHandleOpen_reportsIt() throws {
        let loop = try EventLoop()
        let timer = Timer(loop: loop)
        timer.start(after: 10_000) {}
        #expect(throws: LoopCloseError.self) { try loop.close() }
        #expect(loop.openHandles() == ["timer (active)"])
        timer.close()
        try loop.close()
    }

    @Test func inbox_deliversMessagesPostedFromOtherThreads_inOrder() throws {
        let loop = try EventLoop()
        var received: [Int] = []
        let inbox = try LoopInbox<Int>(loop: loop) { batch in received += batch }
        let box = UnsafeSendableBox(inbox)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(box).toOpaque()
        pthread_create(&thread, nil, { raw in
            let box = Unmanaged<UnsafeSendableBox<LoopInbox<Int>>>.fromOpaque(raw!).takeRetainedValue()
            for i in 0..<1000 { box.value.post(i) }
            box.value.post(-1)
            return nil
        }, context)
        let check = Timer(loop: loop)
        check.start(after: 1, repeat: 1) {
            if received.last == -1 {
                check.close()
                inbox.close()
            }
        }
        loop.run()
        pthread_join(thread, nil)
        #expect(received == Array(0..<1000) + [-1])
        try loop.close()
    }

    @Test func spawnedChild_stdoutAndExitStatus_areDelivered() throws {
        let loop = try EventLoop()
        let stdin = PipeStream(loop: loop, label: "stdin")
        let stdout = PipeStream(loop: loop, label: "stdout")
        let stderr = PipeStream(loop: loop, label: "stderr")
        var output: [UInt8] = []
        var status: ChildExitStatus?
        let child = try ChildProcess(loop: loop, options: .init(executable: "/bin/sh", arguments: ["-c", "cat; exit 7"]),
                                     stdin: stdin, stdout: stdout, stderr: stderr) { status = $0 }
        #expect(child.pid > 0)
        try stdout.startReading { event in
            if case .data(let bytes) = event { output += bytes } else { stdout.close() }
        }
        try stderr.startReading { event in if case .data = event {} else { stderr.close() } }
        stdin.write(Array("ping\n".utf8))
        stdin.close()
        loop.run()
        #expect(String(decoding: output, as: UTF8.self) == "ping\n")
        #expect(status == ChildExitStatus(code: 7, signal: 0))
        try loop.close()
    }

    @Test func spawningAMissingExecutable_throwsENOENT_andLeaksNothing() throws {
        let loop = try EventLoop()
        let pipes = (0..<3).map { PipeStream(loop: loop, label: "p\($0)") }
        #expect(throws: UVError.self) {
            _ = try ChildProcess(loop: loop, options: .init(executable: "/no/such/program"),
                                 stdin: pipes[0], stdout: pipes[1], stderr: pipes[2]) { _ in }
        }
        pipes.forEach { $0.close() }
        try loop.close()
    }
}

/// Moves a value to another thread in a test that joins the thread before going on.
final class UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
