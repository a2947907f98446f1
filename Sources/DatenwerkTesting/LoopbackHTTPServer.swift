import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1 with a random port, for tests of HTTP sources:
/// each request is answered by a closure, so a test can serve files, pages or scripted failures.
package final class LoopbackHTTPServer: Sendable {
    package struct Request: Sendable {
        package var method: String
        package var path: String
        package var query: [String: String]
        package var headers: [(String, String)]
        package var uri: String

        package func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
    }

    package struct Response: Sendable {
        package var status: Int
        package var headers: [(String, String)]
        package var body: [UInt8]
        /// Send only this many body bytes and then close the connection (a cut-off body).
        package var cutAfter: Int?
        /// Wait this long before answering (to provoke timeouts).
        package var delay: Duration?

        package init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = [], cutAfter: Int? = nil, delay: Duration? = nil) {
            self.status = status
            self.headers = headers
            self.body = body
            self.cutAfter = cutAfter
            self.delay = delay
        }

        package static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> Response {
            Response(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
        }

        package static func file(_ path: String, contentType: String? = nil) -> Response {
            guard let data = FileManager.default.contents(atPath: path) else { return .text("not found: \(path)", status: 404) }
            let type = contentType ?? (path.hasSuffix(".json") ? "application/json" : path.hasSuffix(".csv") ? "text/csv" : "application/octet-stream")
            return Response(status: 200, headers: [("Content-Type", type)], body: Array(data))
        }
    }

    package typealias Handler = @Sendable (Request) async -> Response

    private let channel: any Channel
    package let port: Int
    private let log: RequestLog

    /// Every request received, in order (path and query), for assertions.
    package var requests: [Request] { log.all }

    package static func start(_ handler: @escaping Handler) async throws -> LoopbackHTTPServer {
        let log = RequestLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Connection(handler: handler, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackHTTPServer(channel: channel, port: channel.localAddress?.port ?? 0, log: log)
    }

    private init(channel: any Channel, port: Int, log: RequestLog) {
        self.channel = channel
        self.port = port
        self.log = log
    }

    package var baseURL: String { "http://127.0.0.1:\(port)" }

    package func stop() async throws {
        try await channel.close()
    }

    final class RequestLog: Sendable {
        private let requests = Mutex<[Request]>([])
        func append(_ r: Request) { requests.withLock { $0.append(r) } }
        var all: [Request] { requests.withLock { $0 } }
    }

    /// `@unchecked Sendable`, justified: the channel initializer adds the handler from a `@Sendable` closure;
    /// after that its state (`head`) is only touched on the channel's event loop (NIO's threading model).
    final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let handler: Handler
        let log: RequestLog
        var head: HTTPRequestHead?

        init(handler: @escaping Handler, log: RequestLog) {
            self.handler = handler
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                let components = URLComponents(string: head.uri)
                var query: [String: String] = [:]
                for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
                let request = Request(method: head.method.rawValue, path: components?.path ?? head.uri, query: query,
                                      headers: head.headers.map { ($0.name, $0.value) }, uri: head.uri)
                log.append(request)
                let keepAlive = head.isKeepAlive
                let loop = context.eventLoop
                let bound = NIOLoopBound(context, eventLoop: loop)
                let handler = self.handler
                Task {
                    let response = await handler(request)
                    if let delay = response.delay { try? await Task.sleep(for: delay) }
                    loop.execute { Self.write(response, keepAlive: keepAlive, context: bound.value) }
                }
            }
        }

        static func write(_ response: Response, keepAlive: Bool, context: ChannelHandlerContext) {
            var headers = HTTPHeaders(response.headers)
            headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
            let cut = response.cutAfter
            if !keepAlive || cut != nil { headers.replaceOrAdd(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            let bytes = cut.map { Array(response.body.prefix($0)) } ?? response.body
            if cut != nil {
                // Send the head and part of the body, then drop the connection once those bytes are out.
                let channel = context.channel
                context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: bytes))))).whenComplete { _ in
                    channel.close(mode: .all, promise: nil)
                }
                return
            }
            if !bytes.isEmpty {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            }
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: promise)
            if !keepAlive {
                let channel = context.channel
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
