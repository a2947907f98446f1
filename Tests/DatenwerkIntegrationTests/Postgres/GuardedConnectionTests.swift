import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// postgres-nio 1.33 never answers a query written to a connection that has closed (its promise is dropped
/// with the failed write). `GuardedConnection` must refuse such work at once.
@Suite struct GuardedConnectionTests {
    @Test func queriesOnAConnectionTheServerClosedFailAtOnce() async throws {
        try await TestDatabase.with { db in
            try await db.withConnection { connection in
                var pid: Int32 = 0
                for try await p in try await connection.query("SELECT pg_backend_pid()", logger: db.logger).decode(Int32.self) { pid = p }
                #expect(!connection.isClosed)
                try await db.client.query("SELECT pg_terminate_backend(\(pid))", logger: db.logger)
                for _ in 0..<500 where !connection.connection.isClosed { try await Task.sleep(for: .milliseconds(10)) }
                #expect(connection.isClosed, "the client never noticed the terminated backend")
                let started = ContinuousClock.now
                await #expect(throws: ConnectionLost.self) { try await connection.query("ROLLBACK", logger: db.logger) }
                #expect(ContinuousClock.now - started < .seconds(5))
            }
        }
    }

    @Test func aTransactionWhoseServerWentAwayFailsAndRollsBack() async throws {
        try await TestDatabase.with { db in
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                try await db.transaction { connection in
                    try await connection.query("CREATE TABLE guarded_probe (x int)", logger: db.logger)
                    var pid: Int32 = 0
                    for try await p in try await connection.query("SELECT pg_backend_pid()", logger: db.logger).decode(Int32.self) { pid = p }
                    try await db.client.query("SELECT pg_terminate_backend(\(pid))", logger: db.logger)
                    for _ in 0..<500 where !connection.connection.isClosed { try await Task.sleep(for: .milliseconds(10)) }
                    try await connection.query("INSERT INTO guarded_probe VALUES (1)", logger: db.logger)
                }
            }
            #expect(ContinuousClock.now - started < .seconds(10))
            // A new pool: this one may still hold the terminated connection as idle.
            let missing = try await Database.with(db.location, logger: db.logger) { fresh in
                try await fresh.client.query("SELECT to_regclass('guarded_probe') IS NULL", logger: fresh.logger).decode(Bool.self).collect()
            }
            #expect(missing == [true])
        }
    }
}
