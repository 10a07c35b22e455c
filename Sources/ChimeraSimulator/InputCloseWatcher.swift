import NIOCore
import Synchronization

/// Notices when the client closes its side of the connection.
///
/// Hummingbird allows remote half-closure, so a client that gives up leaves the server channel
/// active until the next write fails. A hung or slow response writes nothing for a long time; it
/// polls ``inputClosed`` to stop as soon as the client is gone.
final class InputCloseWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let closed = Mutex(false)

    var inputClosed: Bool { closed.withLock { $0 } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { closed.withLock { $0 = true } }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.withLock { $0 = true }
        context.fireChannelInactive()
    }

    /// The watcher of `channel`, if the simulator installed one.
    static func of(_ channel: any Channel) async -> InputCloseWatcher? {
        try? await channel.pipeline.handler(type: InputCloseWatcher.self).get()
    }
}
