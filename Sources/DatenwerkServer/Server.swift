import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The request context of every route: Hummingbird's core storage plus the peer address (for run history).
public struct ServerRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// `datenwerk serve`: push ingest, health, and (with the publishing routes) the open-data catalog.
/// Everything it needs is passed in, so tests start the same server on a loopback port.
public struct DatenwerkServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Largest request body accepted by push ingest.
        public var maxPushBytes = 1 << 20
        /// The public URL the catalog links to (`--base-url`); nil: `http://<Host header of the request>`.
        public var baseURL: String?
        /// Datasets per page of `/catalog` (hydra paging).
        public var catalogPageSize = 100
        /// The environment variable holding the bearer token for restricted datasets' downloads.
        public var downloadTokenVariable = "DATENWERK_DOWNLOAD_TOKEN"

        public init(host: String = "127.0.0.1", port: Int = 8080, baseURL: String? = nil, catalogPageSize: Int = 100) {
            self.host = host
            self.port = port
            self.baseURL = baseURL
            self.catalogPageSize = catalogPageSize
        }
    }

    public var configuration: Configuration
    public var pipelines: [PipelineSpec]
    public var database: Database
    public var runner: PipelineRunner
    public var environment: [String: String]
    public var logger: Logger
    /// The catalog (`catalog.yaml`); nil: no publishing routes (only push ingest and `/health`).
    public var catalog: CatalogMetadata?

    public init(configuration: Configuration, pipelines: [PipelineSpec], database: Database, runner: PipelineRunner,
                environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger, catalog: CatalogMetadata? = nil) {
        self.configuration = configuration
        self.pipelines = pipelines
        self.database = database
        self.runner = runner
        self.environment = environment
        self.logger = logger
        self.catalog = catalog
    }

    /// The Hummingbird application; `onServerRunning` gets the bound channel (its port when 0 was asked).
    public func makeApplication(
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: ProblemMiddleware(logger: logger))
        let health = HealthCheck(database: database)
        router.get("/health") { _, _ in try await health.respond() }
        let ingest = PushIngest(pipelines: pipelines, runner: runner, environment: environment,
                                maxBytes: configuration.maxPushBytes, logger: logger)
        router.post("/ingest/:pipeline") { request, context in
            try await ingest.receive(request, context: context)
        }
        if let catalog {
            Publishing(catalog: catalog, pipelines: pipelines, store: ObservationStore(database: database), configuration: configuration,
                       environment: environment, logger: logger).register(on: router)
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Datenwerk"),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// `/health`: 200 when the database answers and every bundled migration is applied, else 503; JSON either way.
struct HealthCheck: Sendable {
    let database: Database

    func respond() async throws -> Response {
        var members: [JSONValue.Member] = []
        var healthy = true
        do {
            let applied = try await Migrator(database).appliedVersions()
            let bundled = try Migrator.bundled().map(\.version)
            let missing = bundled.filter { !applied.contains($0) }
            members.append(.init("database", .string("ok")))
            members.append(.init("migrations", .object([
                .init("applied", .number(Double(applied.count))), .init("bundled", .number(Double(bundled.count))),
                .init("missing", .array(missing.map { .number(Double($0)) })),
            ])))
            if !missing.isEmpty { healthy = false }
        } catch {
            healthy = false
            members.append(.init("database", .string("unreachable: \(describeDatabaseError(error))")))
        }
        members.insert(.init("status", .string(healthy ? "ok" : "unavailable")), at: 0)
        return .json(.object(members), status: healthy ? .ok : .serviceUnavailable)
    }
}

extension Response {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = fields[.cacheControl] ?? "no-store"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized + "\n")))
    }

    /// An RFC 9457 problem body: what went wrong, in words a user can act on, naming the parameter or header.
    static func problem(_ status: HTTPResponse.Status, _ detail: String, parameter: String? = nil, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json; charset=utf-8"
        var members: [JSONValue.Member] = [
            .init("type", .string("about:blank")), .init("title", .string(status.reasonPhrase)),
            .init("status", .number(Double(status.code))), .init("detail", .string(detail)),
        ]
        if let parameter { members.append(.init("parameter", .string(parameter))) }
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object(members).serialized + "\n")))
    }
}

/// Turns errors thrown by routes into problem+json answers (Hummingbird's own HTTPErrors keep their status).
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            return .problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers)
        } catch {
            logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            return .problem(.internalServerError, "the server could not answer: \(describeDatabaseError(error))")
        }
    }
}
