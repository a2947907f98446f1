import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkServer
import Foundation
import Logging
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP server (push ingest, /health), the scheduler and workers. Stops cleanly on SIGTERM/SIGINT.",
        discussion: """
            Push pipelines (source kind ttn) receive POST /ingest/<pipeline name>; the sender authenticates with the
            token in the environment variable the pipeline names (token_env, default DATENWERK_TTN_TOKEN), or with an
            API token (`datenwerk tokens create --scope ingest:<pipeline>`). Run triggers (POST /pipelines/<name>/runs)
            and quarantine replay (POST /pipelines/<name>/quarantine/replay) need run:<pipeline>. OIDC bearer tokens:
            DATENWERK_OIDC_ISSUER, DATENWERK_OIDC_AUDIENCE, DATENWERK_OIDC_JWKS_URL; behind a reverse proxy set
            DATENWERK_TRUSTED_PROXIES (docs/access.md).

            Open data: / (HTML catalog page), /catalog (DCAT-AP.de: Turtle, RDF/XML, JSON-LD), and per dataset
            /datasets/<id>/observations.{csv,geojson,ndjson}, datapackage.json and dcat.ttl. Datasets with
            `access: restricted` need `Authorization: Bearer <token>` with read:<dataset> (or the legacy token in
            DATENWERK_DOWNLOAD_TOKEN).
            """
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(name: .customLong("pipelines"), help: "Pipeline files or folders to serve.")
    var pipelinePaths: [String] = ["Pipelines"]

    @Option(help: "The public URL of this server, used in the catalog's links (default: http://<host>:<port>, or the request's Host header when binding all addresses or port 0).")
    var baseURL: String?

    @Option(help: "The catalog file: who publishes the data (default catalog.yaml; without it only push ingest and /health are served).")
    var catalog: String?

    @Option(help: "Datasets per page of /catalog (hydra paging).")
    var catalogPageSize = 100

    @Option(help: "Workers taking due jobs, each job run in its own child process (0: none; run `datenwerk worker` elsewhere).")
    var workers = 1

    @Flag(help: "Do not turn `schedule:` into jobs here (another serve does it).")
    var noScheduler = false

    @Option(help: "On SIGTERM/SIGINT: seconds to let running requests and runs finish before they are cancelled.")
    var shutdownTimeout = 30

    @Option(help: "Seconds a connection may send nothing (also the time to send a request's headers) before it is closed.")
    var idleTimeout = 30

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func run() async throws {
        var configured = makeLogger(verbose: verbose)
        configured.logLevel = logLevelFromEnvironment ?? (verbose ? .debug : .info)
        let logger = configured
        let (specs, problems, invalid) = loadPipelines(pipelinePaths)
        guard problems == 0 else {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s"); the server was not started.")
            throw Exit.invalidConfiguration
        }
        let catalogMetadata = try loadCatalog(catalog, logger: logger)
        var settings = DatenwerkServer.Configuration(host: host, port: port, baseURL: baseURL, catalogPageSize: catalogPageSize)
        if baseURL == nil, port != 0, !["0.0.0.0", "::", "[::]"].contains(host) {
            settings.baseURL = "http://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(port)"
        }
        guard (1...3600).contains(shutdownTimeout), (1...3600).contains(idleTimeout) else {
            stderr("error: --shutdown-timeout and --idle-timeout take 1…3600 seconds")
            throw Exit.invalidConfiguration
        }
        settings.idleTimeout = .seconds(idleTimeout)
        let configuration = settings
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        try await DatabaseEnvironment(keepRunning: false, logger: logger).with { opened in
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database, onStuckLoad: exitWhenLoadIsStuck),
                                        connectors: BuiltinConnectors.registry, logger: logger)
            let server = DatenwerkServer(configuration: configuration, pipelines: specs,
                                         database: opened.database, runner: runner, logger: logger, catalog: catalogMetadata)
            var services: [any Service] = []
            if !noScheduler { services.append(SchedulerService(Scheduler(pipelines: specs, database: opened.database, logger: logger))) }
            if workers > 0 {
                services.append(WorkerService((0..<workers).map { _ in
                    // Each job in a child process: a crash in a connector or decoder never takes the server down.
                    Worker(pipelines: specs, database: opened.database, runner: runner, isolation: JobIsolation(), logger: logger)
                }))
            }
            let app = server.makeApplication(services: services) { channel in
                let address = channel.localAddress
                let line = "datenwerk serve: listening on http://\(address?.ipAddress ?? host):\(address?.port ?? port) (\(specs.count) pipelines)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            var group = ServiceGroupConfiguration(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // A slow reader or a long run does not hold the shutdown forever: cancelled after the deadline.
            group.maximumGracefulShutdownDuration = .seconds(shutdownTimeout)
            group.maximumCancellationDuration = .seconds(5)
            try await ServiceGroup(configuration: group).run()
        }
    }
}

/// `--catalog FILE` (must load), or `catalog.yaml` when it exists; nil: no publishing routes.
func loadCatalog(_ path: String?, logger: Logger) throws -> CatalogMetadata? {
    let file = path ?? "catalog.yaml"
    if path == nil, !FileManager.default.fileExists(atPath: file) {
        stderr("note: no catalog.yaml here: serving without the open-data catalog (pass --catalog FILE)")
        return nil
    }
    do {
        return try CatalogSpec.load(file: file)
    } catch let error as DiagnosticError {
        for diagnostic in error.diagnostics { stderr(diagnostic.description) }
        stderr("error: the catalog file \(file) is not valid; the server was not started.")
        throw Exit.invalidConfiguration
    }
}
