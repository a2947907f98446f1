import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A running connection pool to one database. Create with `Database.with(location:) { db in … }`.
package struct Database: Sendable {
    private let pools: PoolBox
    package let location: DatabaseLocation
    package let logger: Logger

    /// The current pool. `resetPool()` replaces it (after an outage); take it anew for each use.
    package var client: PostgresClient { pools.current }

    /// The same pools, logging to `logger` (a test reads what a load logged).
    package func logging(to logger: Logger) -> Database {
        Database(pools: pools, location: location, logger: logger)
    }

    /// Runs `body` with a pool whose background task lives exactly as long as `body`.
    package static func with<T: Sendable>(
        _ location: DatabaseLocation,
        logger: Logger = Logger(label: "datenwerk.postgres"),
        _ body: @Sendable (Database) async throws -> T
    ) async throws -> T {
        let pools = PoolBox { PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger) }
        // Let the pool's run loop start before the first lease (avoids PostgresNIO's "run() hasn't been called" warning).
        await Task.yield()
        do {
            let result = try await body(Database(pools: pools, location: location, logger: logger))
            await pools.shutdown()
            return result
        } catch {
            await pools.shutdown()
            throw error
        }
    }

    /// Replaces the pool with a new one (at most once every 2 s). After a long outage postgres-nio's pool only
    /// retries on its back-off (up to a minute); the server calls this as soon as a direct connection
    /// succeeds again. Leases of the old pool end by themselves; the old pool is shut down 60 s later.
    package func resetPool() {
        if pools.reset() { logger.notice("database pool renewed after an outage") }
    }
    /// Creates `name` on the server if it is missing (connects to the `postgres` maintenance database).
    package static func createDatabaseIfMissing(_ location: DatabaseLocation, logger: Logger = Logger(label: "datenwerk.postgres")) async throws {
        let name = location.database
        try await Database.with(location.with(database: "postgres"), logger: logger) { db in
            let rows = try await db.client.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: logger)
            var exists = false
            for try await _ in rows { exists = true }
            if !exists {
                do {
                    try await db.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(quoteIdentifier(name))"), logger: logger)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P04" {
                    // created concurrently by another process: fine
                }
            }
        }
    }

    /// Runs `body` with one connection of the pool whose operations fail, instead of hanging, once the
    /// server closed it (see `GuardedConnection`).
    package func withConnection<T: Sendable>(_ body: (GuardedConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(GuardedConnection(connection))
        }
    }

    /// Runs `body` in one transaction on one connection.
    package func transaction<T: Sendable>(_ body: (GuardedConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                // A closed connection has rolled back already (and a query on it would never return).
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
        }
    }

    /// Runs SQL text with several statements, one after another (extended protocol takes one at a time).
    package static func executeScript(_ sql: String, on connection: GuardedConnection, logger: Logger) async throws {
        for statement in splitSQLStatements(sql) {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }
}

package func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Splits a SQL script at top-level `;`, honouring quotes, comments and dollar-quoted bodies.
package func splitSQLStatements(_ sql: String) -> [String] {
    var statements: [String] = []
    var current = ""
    let chars = Array(sql)
    var i = 0
    func flush() {
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { statements.append(trimmed) }
        current = ""
    }
    while i < chars.count {
        let c = chars[i]
        if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
            while i < chars.count, chars[i] != "\n" { i += 1 }
            continue
        }
        if c == "'" || c == "\"" {
            current.append(c)
            i += 1
            while i < chars.count {
                current.append(chars[i])
                if chars[i] == c { i += 1; break }
                i += 1
            }
            continue
        }
        if c == "$" {
            var j = i + 1
            while j < chars.count, chars[j] == "_" || chars[j].isLetter || chars[j].isNumber { j += 1 }
            if j < chars.count, chars[j] == "$" {
                let tag = String(chars[i...j])
                current += tag
                i = j + 1
                while i < chars.count {
                    if chars[i] == "$", i + tag.count <= chars.count, String(chars[i..<(i + tag.count)]) == tag {
                        current += tag
                        i += tag.count
                        break
                    }
                    current.append(chars[i])
                    i += 1
                }
                continue
            }
        }
        if c == ";" { flush(); i += 1; continue }
        current.append(c)
        i += 1
    }
    flush()
    return statements
}

/// A readable one-line text for database errors: the server's message and SQLSTATE, never query values.
/// The server is unreachable or went away (restart, shutdown, network), as opposed to an error of the statement:
/// worth trying again once it is back.
package func isConnectionError(_ error: any Error) -> Bool {
    if error is ConnectionLost { return true }
    guard let error = error as? PSQLError else { return false }
    guard let state = error.serverInfo?[.sqlState] else { return error.code != .server }
    // 08 connection exception, 57P01–57P03 admin/crash shutdown and "cannot connect now" (starting up).
    return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
}

package func describeDatabaseError(_ error: any Error) -> String {
    if let error = error as? PSQLError {
        if let info = error.serverInfo {
            var text = "PostgreSQL: \(info[.message] ?? "error")"
            if let detail = info[.detail] { text += " (\(detail))" }
            if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
            return text
        }
        return "PostgreSQL connection: \(error.code)"
    }
    return String(describing: error)
}

/// The pool behind a `Database`, replaceable after an outage. Each pool runs in a task of its own.
final class PoolBox: Sendable {
    private struct State {
        var current: PostgresClient
        var tasks: [Task<Void, Never>] = []
        var lastReset = ContinuousClock.now
        var closed = false
    }

    private let make: @Sendable () -> PostgresClient
    private let state: Mutex<State>

    init(_ make: @escaping @Sendable () -> PostgresClient) {
        self.make = make
        let first = make()
        state = Mutex(State(current: first))
        let task = Task { await first.run() }
        state.withLock { $0.tasks.append(task) }
    }

    var current: PostgresClient { state.withLock { $0.current } }

    /// True when a new pool was started.
    func reset() -> Bool {
        let old: Task<Void, Never>? = state.withLock { s in
            guard !s.closed, ContinuousClock.now - s.lastReset > .seconds(2) else { return nil }
            s.lastReset = .now
            let fresh = make()
            s.current = fresh
            s.tasks.append(Task { await fresh.run() })
            return s.tasks[s.tasks.count - 2]
        }
        guard let old else { return false }
        Task {
            try? await Task.sleep(for: .seconds(60))
            old.cancel()
        }
        return true
    }

    func shutdown() async {
        let tasks = state.withLock { s in
            s.closed = true
            return s.tasks
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
