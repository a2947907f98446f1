import DatenwerkPostgres
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// `nonisolated(unsafe)`, justified: written once while the test database is set up (before any test uses it)
/// and read by the C `atexit` callback, which cannot capture context.
nonisolated(unsafe) private var testCluster: EmbeddedPostgres?

/// A fresh, migrated database per test on a real PostgreSQL + PostGIS.
///
/// With `DATABASE_URL` the server given there is used (the role needs CREATEDB); otherwise one embedded
/// cluster is started for the whole test process (under `$DATENWERK_TEST_PG_ROOT`, default
/// `/tmp/datenwerk-test-pg` for root and `/tmp/datenwerk-test-pg-<uid>` for other users, port
/// `$DATENWERK_TEST_PG_PORT` or 54339 for root and 55000 + uid % 5000 for other users, so that two users'
/// `make test` never share a cluster). Nothing is skipped: when no
/// database can be had, the tests that need one fail with the reason.
package enum TestDatabase {
    static let logger: Logger = {
        var logger = Logger(label: "datenwerk.test")
        logger.logLevel = .warning
        return logger
    }()

    struct Server: Sendable {
        var location: DatabaseLocation
        var embedded: EmbeddedPostgres?
    }

    /// This process's migrated template (per process: another test run on the same cluster has its own).
    static let templateName = "datenwerk_test_template_\(getpid())"

    /// Started once per process; a failure is remembered and reported by every test that needs it.
    /// A setup that takes longer than a minute says on stderr, every minute, which step it waits for.
    static let server = Task<Server, any Error> {
        let step = SetupStep("starting")
        let reporter = Task.detached {
            var waited = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                waited += 60
                if Task.isCancelled { break }
                FileHandle.standardError.write(Data("TestDatabase: setup still waiting after \(waited) s at: \(step.current)\n".utf8))
            }
        }
        defer { reporter.cancel() }
        let environment = ProcessInfo.processInfo.environment
        let server: Server
        if let url = environment["DATABASE_URL"], !url.isEmpty {
            server = Server(location: try DatabaseLocation(url: url), embedded: nil)
        } else {
            let uid = getuid()
            let root = environment["DATENWERK_TEST_PG_ROOT"] ?? (uid == 0 ? "/tmp/datenwerk-test-pg" : "/tmp/datenwerk-test-pg-\(uid)")
            let port = environment["DATENWERK_TEST_PG_PORT"].flatMap(Int.init) ?? (uid == 0 ? 54339 : 55000 + Int(uid % 5000))
            var configuration = EmbeddedPostgres.Configuration(root: root, port: port)
            // Swift Testing runs every test at once: room for many small pools.
            configuration.maxConnections = 500
            let cluster = EmbeddedPostgres(configuration)
            step.set("starting the embedded cluster in \(root) (port \(port))")
            try cluster.start()
            // Stop the cluster when the test process ends (unless another process still uses it).
            testCluster = cluster
            atexit { testCluster?.stop() }
            server = Server(location: DatabaseLocation(socketPath: cluster.socketPath, username: "datenwerk", database: "postgres"), embedded: cluster)
        }
        // A migrated template: every test database is a cheap copy of it.
        let template = server.location.with(database: templateName)
        step.set("creating the template database on \(server.location)")
        try await Database.with(server.location.with(database: "postgres"), logger: logger) { db in
            // Templates of test processes that have ended (one that crashed leaves its template behind); a test
            // process that still runs keeps its own, so two test runs against one cluster do not disturb each other.
            for name in try await DatabaseAdmin(db).databases(withPrefix: "datenwerk_test_template") where name != templateName {
                let pid = name.split(separator: "_").last.flatMap { Int32($0) }
                if pid.map({ kill($0, 0) != 0 && errno == ESRCH }) ?? true {
                    try? await DatabaseAdmin(db).drop(name)
                }
            }
            try await DatabaseAdmin(db).drop(templateName)
            try await DatabaseAdmin(db).create(templateName)
        }
        step.set("migrating the template database")
        try await Database.with(template, logger: logger) { db in
            try await Migrator(db).migrate()
        }
        step.set("done")
        return server
    }

    /// The embedded cluster used by the tests (nil with DATABASE_URL).
    package static func embeddedCluster() async throws -> EmbeddedPostgres? {
        try await server.value.embedded
    }

    /// The server location (database `postgres`).
    package static func serverLocation() async throws -> DatabaseLocation {
        try await server.value.location
    }

    /// Creates a new database from the migrated template, runs `body`, and drops it again.
    package static func with<T: Sendable>(_ body: @Sendable (Database) async throws -> T) async throws -> T {
        let server = try await server.value
        let name = "datenwerk_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = server.location.with(database: "postgres")
        // The template's own setup connections may still be closing on the server side ("source database is
        // being accessed by other users", SQLSTATE 55006): try again for a little while.
        var attempt = 0
        while true {
            do {
                try await Database.with(admin, logger: logger) { db in
                    try await DatabaseAdmin(db).create(name, template: templateName)
                }
                break
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 50 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                throw TestDatabaseError(description: "creating the test database failed: \(describeDatabaseError(error))")
            }
        }
        do {
            let result = try await Database.with(server.location.with(database: name), logger: logger, body)
            try? await drop(name, admin)
            return result
        } catch let error as PSQLError {
            try? await drop(name, admin)
            throw TestDatabaseError(description: describeDatabaseError(error))
        } catch {
            try? await drop(name, admin)
            throw error
        }
    }

    static func drop(_ name: String, _ admin: DatabaseLocation) async throws {
        try await Database.with(admin, logger: logger) { db in
            try await DatabaseAdmin(db).drop(name)
        }
    }
}

package struct TestDatabaseError: Error, CustomStringConvertible {
    package var description: String
}

/// What the test database setup is doing (for the "still waiting" report).
final class SetupStep: Sendable {
    private let step: Mutex<String>
    init(_ step: String) { self.step = Mutex(step) }
    var current: String { step.withLock { $0 } }
    func set(_ value: String) { step.withLock { $0 = value } }
}
