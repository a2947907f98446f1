import AsyncHTTPClient
import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import DatenwerkTesting

/// The real server on a loopback port (port 0: the kernel picks), against a test database.
struct ServerHarness {
    let baseURL: String
    let task: Task<Void, any Error>

    static func start(database: Database, pipelines: [PipelineSpec], environment: [String: String] = [:]) async throws -> ServerHarness {
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: database), connectors: BuiltinConnectors.registry)
        var logger = Logger(label: "test.server")
        logger.logLevel = .critical   // stopping by cancellation logs an "error" per open channel
        var configuration = DatenwerkServer.Configuration(host: "127.0.0.1", port: 0)
        // The full suite loads 2 cores heavily; a connection can take over 5 s then. Outages are tested in ServerFaultTests.
        configuration.databaseTimeout = .seconds(30)
        let server = DatenwerkServer(configuration: configuration, pipelines: pipelines, database: database,
                                     runner: runner, environment: environment, logger: logger)
        return try await start(server)
    }

    /// Runs `server` on a free loopback port until `stop()`.
    static func start(_ server: DatenwerkServer) async throws -> ServerHarness {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.makeApplication { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let task = Task { try await app.run() }
        var port = 0
        for await p in ports { port = p }
        guard port > 0 else { throw TestFailure("the server did not start") }
        return ServerHarness(baseURL: "http://127.0.0.1:\(port)", task: task)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    struct Answer {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func request(_ method: HTTPMethod = .GET, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        // No pooled connection outlives the request: test servers come and go on ports the kernel hands out
        // again, so a shared client could reuse a connection of a server that has stopped.
        if !headers.contains(where: { $0.0.lowercased() == "connection" }) { request.headers.replaceOrAdd(name: "Connection", value: "close") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        // A guard against hangs, not a speed check: in the full suite ~100 suites share 2 cores, and 20 concurrent
        // uplinks (PushIngestTests) took over 30 s there while passing in 4 s alone.
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let buffer = try await response.body.collect(upTo: 512 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Array(buffer.readableBytesView))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
