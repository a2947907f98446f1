import Foundation
import Logging

/// Picks the database for a command: `DATABASE_URL` when set, otherwise the embedded cluster
/// (started or reused, and stopped again when this process is its last user). Migrations run first.
package struct DatabaseEnvironment: Sendable {
    package var databaseURL: String?
    package var embedded: EmbeddedPostgres.Configuration
    package var migrate: Bool = true
    package var logger: Logger

    package init(environment: [String: String] = ProcessInfo.processInfo.environment, keepRunning: Bool = false, logger: Logger = Logger(label: "datenwerk.postgres")) {
        self.databaseURL = environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        self.embedded = EmbeddedPostgres.Configuration(keepRunning: keepRunning)
        self.logger = logger
    }

    /// Where the database is, and for the embedded cluster how to reach it with psql.
    package struct Opened: Sendable {
        package var database: Database
        package var embedded: EmbeddedPostgres?
        package var psqlHint: String
    }

    package func with<T: Sendable>(_ body: @Sendable (Opened) async throws -> T) async throws -> T {
        if let databaseURL {
            let location = try DatabaseLocation(url: databaseURL)
            try await Self.probe(location, logger: logger)
            return try await Database.with(location, logger: logger) { db in
                if migrate { try await Migrator(db).migrate() }
                return try await body(Opened(database: db, embedded: nil, psqlHint: "psql \"$DATABASE_URL\""))
            }
        }
        let cluster = EmbeddedPostgres(embedded)
        try cluster.start()
        defer { cluster.stop() }
        let location = DatabaseLocation(socketPath: cluster.socketPath, username: embedded.user, database: embedded.database)
        try await Database.createDatabaseIfMissing(location, logger: logger)
        return try await Database.with(location, logger: logger) { db in
            if migrate { try await Migrator(db).migrate() }
            return try await body(Opened(database: db, embedded: cluster, psqlHint: cluster.psqlCommand))
        }
    }

    /// One direct connection within `timeout`, so a wrong host, role, password or database is reported at once
    /// with the server's own reason (the pool would retry for a minute and then report its circuit breaker).
    package static func probe(_ location: DatabaseLocation, timeout: Duration = .seconds(10), logger: Logger) async throws {
        let connections = ServerConnections(location, limit: 1, acquireTimeout: timeout, logger: logger)
        do {
            _ = try await connections.rows("SELECT 1")
            await connections.shutdown()
        } catch let error as DatabaseUnavailable where error.timedOut {
            // A server that answers slowly (a loaded machine) is not a wrong URL: the pool waits for it.
            await connections.shutdown()
            logger.warning("the database at \(location) did not answer within \(timeout); going on")
        } catch {
            await connections.shutdown()
            throw DatabaseUnavailable("\(location): \((error as? DatabaseUnavailable)?.reason ?? describeDatabaseError(error))")
        }
    }
}
