import ArgumentParser
import DatenwerkPostgres
import Foundation

struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the embedded PostgreSQL cluster (start/stop/status; not used when DATABASE_URL is set) and dashboard access.",
        subcommands: [Start.self, Stop.self, Status.self, GrantReader.self, RefreshAggregates.self]
    )

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the embedded cluster and leave it running.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init(keepRunning: true))
            try cluster.start()
            // Other commands (run, migrate, serve …) that use it now leave it running at their exit.
            try cluster.keepUntilShutdown()
            cluster.stop()
            print("running: \(cluster.psqlCommand)")
            if let password = cluster.password, !password.isEmpty {
                print("TCP clients (Grafana, QGIS): host 127.0.0.1 port \(cluster.configuration.port) user datenwerk, password in \(cluster.configuration.root)/password")
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded cluster.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init())
            try cluster.shutdown()
            print("stopped")
        }
    }

    struct GrantReader: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant-reader",
            abstract: "Create or update a login role for dashboards (Grafana, Superset, QGIS) that reads the views in datenwerk_api only.",
            discussion: """
                The role reads the views of schema datenwerk_api (latest, hourly, daily, stations, observations, \
                pipelines_health) and nothing else; its sessions are read-only, with a statement timeout. The password \
                comes from the environment variable named by --password-env; if it is not set, one is generated and \
                printed once.
                """
        )

        @Argument(help: "Role name (lower-case letters, digits, _).")
        var name: String

        @Option(help: "Environment variable holding the password.")
        var passwordEnv = "DATENWERK_READER_PASSWORD"

        @Option(help: "Statement timeout of the role's sessions, in seconds.")
        var statementTimeout = 10

        @Option(help: "At most this many connections of the role at once.")
        var connectionLimit = 20

        @Flag(help: "Leave the embedded PostgreSQL running afterwards.")
        var keepDatabase = false

        func run() async throws {
            guard AggregateMaintenance.isValidRoleName(name) else {
                throw ValidationError("role name '\(name)' is not allowed: use lower-case letters, digits and _ (at most 63, starting with a letter; not pg_…, datenwerk or postgres)")
            }
            guard statementTimeout > 0, connectionLimit > 0 else { throw ValidationError("--statement-timeout and --connection-limit must be positive") }
            let given = ProcessInfo.processInfo.environment[passwordEnv].flatMap { $0.isEmpty ? nil : $0 }
            let password = given ?? Self.randomPassword()
            let logger = makeLogger(verbose: false)
            let environment = DatabaseEnvironment(keepRunning: keepDatabase, logger: logger)
            try await environment.with { opened in
                try await AggregateMaintenance(opened.database).grantReader(
                    name: name, password: password, statementTimeoutMilliseconds: statementTimeout * 1000, connectionLimit: connectionLimit)
            }
            print("role \(name) reads schema datenwerk_api (read-only sessions, statement_timeout \(statementTimeout) s, at most \(connectionLimit) connections)")
            if given == nil {
                print("password (shown once; set \(passwordEnv) to choose it): \(password)")
            } else {
                print("password: from \(passwordEnv)")
            }
        }

        static func randomPassword() -> String {
            let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
            var rng = SystemRandomNumberGenerator()
            return String((0..<24).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
        }
    }

    struct RefreshAggregates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "refresh-aggregates",
            abstract: "Rebuild the dashboard aggregates (series, hourly, daily) from the observations, after changes made by hand in SQL.")

        @Flag(help: "Leave the embedded PostgreSQL running afterwards.")
        var keepDatabase = false

        func run() async throws {
            let logger = makeLogger(verbose: false)
            let environment = DatabaseEnvironment(keepRunning: keepDatabase, logger: logger)
            let started = ContinuousClock.now
            try await environment.with { opened in try await AggregateMaintenance(opened.database).refreshAll() }
            print("aggregates rebuilt in \(ContinuousClock.now - started)")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether the embedded cluster runs.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init())
            print(try cluster.isRunning() ? "running: \(cluster.psqlCommand)" : "not running (data in \(cluster.configuration.root))")
        }
    }
}
