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
package struct ServerRequestContext: RequestContext, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// `datenwerk serve`: push ingest, health, and (with the publishing routes) the open-data catalog.
/// Everything it needs is passed in, so tests start the same server on a loopback port.
package struct DatenwerkServer: Sendable {
    package struct Configuration: Sendable {
        package var host = "127.0.0.1"
        package var port = 8080
        /// Largest request body accepted by push ingest.
        package var maxPushBytes = 1 << 20
        /// The public URL the catalog links to (`--base-url`); nil: `http://<Host header of the request>`.
        package var baseURL: String?
        /// Datasets per page of `/catalog` (hydra paging).
        package var catalogPageSize = 100
        /// The environment variable holding the bearer token for restricted datasets' downloads.
        package var downloadTokenVariable = "DATENWERK_DOWNLOAD_TOKEN"
        /// A connection that sends nothing for this long is closed: the time to send a request's head (a client
        /// trickling its headers cannot hold a connection longer) and the keep-alive idle time between requests.
        package var idleTimeout: Duration = .seconds(30)
        /// How long a request waits for the database before it is answered 503 with `Retry-After`.
        package var databaseTimeout: Duration = .seconds(5)
        /// The pipeline templates published at `/templates/` for other installations (PublishedTemplates.swift); nil: none.
        package var templatesDirectory: String? = "Pipelines/templates"
        /// Wrong tokens per client before 429 (docs/access.md).
        package var failureLimit = FailureLimiter.Policy()
        /// OIDC bearer tokens; nil: from the environment (`DATENWERK_OIDC_*`, see `OIDCConfiguration`), or none.
        package var oidc: OIDCConfiguration?

        package init(host: String = "127.0.0.1", port: Int = 8080, baseURL: String? = nil, catalogPageSize: Int = 100) {
            self.host = host
            self.port = port
            self.baseURL = baseURL
            self.catalogPageSize = catalogPageSize
        }
    }

    package var configuration: Configuration
    package var pipelines: [PipelineSpec]
    package var database: Database
    package var runner: PipelineRunner
    package var environment: [String: String]
    package var logger: Logger
    /// The catalog (`catalog.yaml`); nil: no publishing routes (only push ingest and `/health`).
    package var catalog: CatalogMetadata?

    package init(configuration: Configuration, pipelines: [PipelineSpec], database: Database, runner: PipelineRunner,
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
    package func makeApplication(
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let connections = ServerConnections(database: database, acquireTimeout: configuration.databaseTimeout)
        let router = Router(context: ServerRequestContext.self)
        // Outermost: counts every answer (ProblemMiddleware's 404/405/5xx too) by route pattern, never the raw path.
        ServerMetrics.install()
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ProblemMiddleware(logger: logger, routes: Self.routes(publishing: catalog != nil)))
        let health = HealthCheck(connections: connections)
        router.read("/health") { _, _ in try await health.respond() }
        let metrics = MetricsEndpoint(queries: MetricsQueries(connections), pipelines: pipelines, logger: logger)
        router.read("/metrics") { _, _ in await metrics.respond() }
        let access = makeAccessControl(connections: connections)
        let ingest = PushIngest(pipelines: pipelines, runner: runner, environment: environment,
                                maxBytes: configuration.maxPushBytes, logger: logger, databaseIsAway: { connections.isFailing }, access: access)
        router.post("/ingest/:pipeline") { request, context in
            try await ingest.receive(request, context: context)
        }
        PipelineOperations(pipelines: Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }), database: database,
                           runner: runner, connections: connections, access: access, logger: logger).register(on: router)
        if let directory = configuration.templatesDirectory {
            let base = configuration.baseURL
            let fallback = "\(configuration.host):\(configuration.port)"
            PublishedTemplates(directory: directory, baseURL: { request in
                if var base { while base.hasSuffix("/") { base.removeLast() }; return base }
                return "http://\(request.head.authority ?? fallback)"
            }).register(on: router)
        }
        if let catalog {
            var publishing = Publishing(catalog: catalog, pipelines: pipelines, store: ObservationStore(connections: connections), configuration: configuration,
                                        environment: environment, logger: logger)
            publishing.access = access
            publishing.register(on: router)
            OGCAPIFeatures(publishing: publishing).register(on: router)
            // OGC SensorThings API v1.1 (read-only) over the public datasets' stations (SensorThings.swift); the catalog's store, so
            // the dataset snapshots that say which stations are public are computed once for both.
            let base = configuration.baseURL
            let fallback = "\(configuration.host):\(configuration.port)"
            SensorThings(pipelines: pipelines, store: publishing.store, baseURL: { request in
                if var base { while base.hasSuffix("/") { base.removeLast() }; return base }
                return "http://\(request.head.authority ?? fallback)"
            }).register(on: router)
        }
        let idle = TimeAmount.nanoseconds(Int64(configuration.idleTimeout.components.seconds) * 1_000_000_000
                                          + configuration.idleTimeout.components.attoseconds / 1_000_000_000)
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idle)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Datenwerk"),
            services: services + [DatabaseWatchService(connections)],
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// The guard of push ingest, run triggers, quarantine replay and restricted datasets (AccessControl.swift).
    func makeAccessControl(connections: ServerConnections) -> AccessControl {
        var oidc: OIDCVerifier?
        var problem: String?
        do {
            if let settings = try configuration.oidc ?? OIDCConfiguration.from(environment: environment) {
                oidc = OIDCVerifier(configuration: settings, fetcher: runner.fetcher, logger: logger)
            }
        } catch {
            problem = "\(error)"
            logger.error("\(error)")
        }
        return AccessControl(connections: connections, oidc: oidc, oidcProblem: problem, limiter: FailureLimiter(configuration.failureLimit),
                             tenants: Dictionary(pipelines.map { ($0.name, $0.tenant) }, uniquingKeysWith: { first, _ in first }),
                             trustedProxies: Set((environment["DATENWERK_TRUSTED_PROXIES"] ?? "").split(separator: ",")
                                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }),
                             logger: logger)
    }

    /// The routes this server answers, by method (for 405 `Allow` and HEAD).
    static func routes(publishing: Bool) -> [RoutePattern] {
        var routes = [RoutePattern("/health", [.get]), RoutePattern("/metrics", [.get]), RoutePattern("/ingest/*", [.post])]
        routes += PublishedTemplates.routes.map { RoutePattern($0, [.get]) }
        routes += [RoutePattern("/pipelines/*/runs", [.post]), RoutePattern("/pipelines/*/runs/*", [.get]), RoutePattern("/pipelines/*/quarantine/replay", [.post])]
        if publishing {
            routes += ["/", "/catalog", "/catalog.ttl", "/catalog.rdf", "/catalog.jsonld", "/datasets/*", "/datasets/*/*"].map { RoutePattern($0, [.get]) }
            routes += OGCAPIFeatures.routes.map { RoutePattern($0, [.get]) }
            routes += SensorThings.routePatterns.map { RoutePattern($0, [.get]) }
        }
        return routes
    }
}

/// A path pattern (`*` is one segment) and the methods it answers (HEAD wherever GET is).
struct RoutePattern: Sendable {
    var segments: [Substring]
    var methods: [HTTPRequest.Method]

    init(_ path: String, _ methods: [HTTPRequest.Method]) {
        segments = path.split(separator: "/")
        self.methods = methods
    }

    func matches(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard parts.count == segments.count else { return false }
        return zip(parts, segments).allSatisfy { $1 == "*" || $0 == $1 }
    }

    var allowed: [HTTPRequest.Method] {
        var all = methods
        if methods.contains(.get) { all.append(.head) }
        return all + [.options]
    }
}

/// Watches the database every `interval` through one direct connection while the server runs: an outage is
/// noticed (and `/health`, pushes and requests fail fast) even when no request came, and the end of one renews
/// the load pool at once, so workers and pushes do not wait out the pool's back-off. Closes the server's idle
/// connections when the server stops.
struct DatabaseWatchService: Service {
    let connections: ServerConnections
    var interval: Duration = .seconds(2)
    init(_ connections: ServerConnections) { self.connections = connections }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await connections.ping()
                    try? await Task.sleep(for: interval)
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await connections.shutdown()
    }
}

/// `/health`: 200 when the database answers and every bundled migration is applied, else 503 (within the
/// database timeout, 5 s by default); JSON either way, without internal error text.
struct HealthCheck: Sendable {
    let connections: ServerConnections

    func respond() async throws -> Response {
        var members: [JSONValue.Member] = []
        var healthy = true
        do {
            let applied = try await connections.appliedMigrations()
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
            connections.logger.warning("health: the database does not answer: \(describeDatabaseError(error))")
            members.append(.init("database", .string("unavailable")))
        }
        members.insert(.init("status", .string(healthy ? "ok" : "unavailable")), at: 0)
        let headers: HTTPFields = healthy ? [:] : [.retryAfter: String(ServerConnections.retryAfterSeconds)]
        return .json(.object(members), status: healthy ? .ok : .serviceUnavailable, headers: headers)
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

/// Every request passes here first:
/// - a request id (`X-Request-Id`, also in every log line about it and in every 5xx body, so an operator can
///   find the details a client is not shown);
/// - HEAD is answered as GET without the body (nothing is streamed); OPTIONS and a path known under
///   another method get 204 / 405 with `Allow`;
/// - open GETs carry `Access-Control-Allow-Origin: *` (answers marked `Cache-Control: private` do not);
/// - errors thrown by routes become problem+json: Hummingbird's HTTPErrors keep their status, an unreachable
///   database gives 503 with `Retry-After`, anything else 500 — with a generic text: SQL, SQLSTATEs and type
///   names go to the log only.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let logger: Logger
    let routes: [RoutePattern]
    static let requestID = HTTPField.Name("X-Request-Id")!
    static let allowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.makeRequestID()
        var response = await answer(request, context: context, id: id, next: next)
        response.headers[Self.requestID] = id
        if [.get, .head, .options].contains(request.method), !(response.headers[.cacheControl] ?? "").contains("private") {
            response.headers[Self.allowOrigin] = "*"
        }
        return response
    }

    private func answer(_ request: Request, context: Context, id: String, next: (Request, Context) async throws -> Response) async -> Response {
        let path = request.uri.path
        let route = routes.first { $0.matches(path) }
        if request.method == .options {
            guard let route else { return .problem(.notFound, "nothing at \(Self.shorten(path))") }
            let allow = route.allowed.map(\.rawValue).joined(separator: ", ")
            return Response(status: .noContent, headers: [
                .allow: allow, HTTPField.Name("Access-Control-Allow-Methods")!: allow,
                HTTPField.Name("Access-Control-Allow-Headers")!: "Accept, Accept-Encoding, If-None-Match, If-Modified-Since",
                HTTPField.Name("Access-Control-Max-Age")!: "86400",
            ])
        }
        if let route, !route.allowed.contains(request.method) {
            return .problem(.methodNotAllowed, "\(request.method.rawValue) is not supported here; use \(route.allowed.map(\.rawValue).joined(separator: ", "))",
                            headers: [.allow: route.allowed.map(\.rawValue).joined(separator: ", ")])
        }
        let head = request.method == .head
        do {
            var response = try await next(request, context)
            if head { response.body = ResponseBody() }
            return response
        } catch let error as HTTPError {
            if error.status == .notFound { return .problem(.notFound, "nothing at \(Self.shorten(path))") }
            return .problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers)
        } catch let error where error is DatabaseUnavailable || isConnectionError(error) {
            logger.warning("\(request.method) \(path) [\(id)]: \(describeDatabaseError(error))")
            return .problem(.serviceUnavailable, "the database is not available at the moment; try again in a few seconds (request \(id))",
                            headers: [.retryAfter: String(ServerConnections.retryAfterSeconds)])
        } catch {
            logger.error("\(request.method) \(path) [\(id)] failed: \(describeDatabaseError(error))")
            return .problem(.internalServerError, "the server could not answer this request; the operator can look it up as request \(id)")
        }
    }

    static func makeRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<12).map { _ in String(UInt8.random(in: 0...15, using: &generator), radix: 16) }.joined()
    }

    static func shorten(_ path: String) -> String { path.count > 100 ? String(path.prefix(100)) + "…" : path }
}

extension Router {
    /// GET and HEAD on `path` with one handler (`ProblemMiddleware` drops the body of a HEAD answer, so
    /// nothing is streamed for it).
    func read(_ path: RouterPath, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        get(path, use: handler)
        head(path, use: handler)
    }
}
