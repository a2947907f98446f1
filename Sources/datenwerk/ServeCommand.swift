import ArgumentParser
import DatenwerkConnectors
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP server: push ingest (TTN webhooks) and /health. Stops cleanly on SIGTERM/SIGINT.",
        discussion: """
            Push pipelines (source kind ttn) receive POST /ingest/<pipeline name>; the sender authenticates with the
            token in the environment variable the pipeline names (token_env, default DATENWERK_TTN_TOKEN).
            """
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(name: .customLong("pipelines"), help: "Pipeline files or folders to serve.")
    var pipelinePaths: [String] = ["Pipelines"]

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func run() async throws {
        var configured = makeLogger(verbose: verbose)
        configured.logLevel = verbose ? .debug : .info
        let logger = configured
        let (specs, problems, invalid) = loadPipelines(pipelinePaths)
        guard problems == 0 else {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s"); the server was not started.")
            throw Exit.invalidConfiguration
        }
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        try await DatabaseEnvironment(keepRunning: false, logger: logger).with { opened in
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database),
                                        connectors: BuiltinConnectors.registry, logger: logger)
            let server = DatenwerkServer(configuration: .init(host: host, port: port), pipelines: specs,
                                         database: opened.database, runner: runner, logger: logger)
            let app = server.makeApplication { channel in
                let address = channel.localAddress
                let line = "datenwerk serve: listening on http://\(address?.ipAddress ?? host):\(address?.port ?? port) (\(specs.count) pipelines)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        }
    }
}
