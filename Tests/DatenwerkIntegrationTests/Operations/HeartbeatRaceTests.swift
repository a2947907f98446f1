import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// A heartbeat that meets the run's own final transaction: the beat waits for the job row, the transaction ends the
/// job and commits, and the beat must not call that lease "lost" (seen in CI: a worker stopped counting a job whose
/// run had just succeeded). Ordered with a fault point of the database itself: the beat is known to wait on the row
/// lock (pg_stat_activity) before the commit is sent, so no timing luck is involved.
@Suite struct HeartbeatRaceTests {
    @Test(.timeLimit(.minutes(2))) func aBeatThatWaitsForTheRunsCommitIsNotLost() async throws {
        try await TestDatabase.with { db in
            let queue = PostgresJobQueue(db)
            _ = try #require(try await queue.enqueue(pipeline: "race", kind: "manual", due: Date()))
            let job = try #require(try await queue.claim(owner: "w1", lease: .seconds(30), pipelines: ["race"]))
            try await db.transaction { connection in
                // What the sink's finishRun does in the run's transaction.
                try await connection.query("""
                    UPDATE datenwerk.jobs SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL WHERE id = \(job.id)
                    """, logger: db.logger)
                async let beat = queue.heartbeat(job.id, owner: "w1", lease: .seconds(30))
                // Wait until the beat's UPDATE is blocked on this transaction's row lock.
                var waiting = false
                for _ in 0..<600 where !waiting {
                    let rows = try await db.client.query("""
                        SELECT count(*)::bigint FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%heartbeat_at = now()%'
                        """, logger: db.logger).decode(Int64.self).collect()
                    waiting = rows.first ?? 0 > 0
                    if !waiting { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(waiting, "the heartbeat never waited on the job row")
                try await connection.query("COMMIT", logger: db.logger)
                try await connection.query("BEGIN", logger: db.logger)   // the helper's own COMMIT closes this one
                let held = try await beat
                #expect(held, "a job that ended in the run's own commit is not a lost lease")
            }
            // And a job really taken over by another worker is still "lost".
            _ = try #require(try await queue.enqueue(pipeline: "race", kind: "manual", due: Date()))
            let second = try #require(try await queue.claim(owner: "w1", lease: .seconds(30), pipelines: ["race"]))
            try await db.client.query("UPDATE datenwerk.jobs SET lease_owner = 'w2' WHERE id = \(second.id)", logger: db.logger)
            #expect(try await queue.heartbeat(second.id, owner: "w1", lease: .seconds(30)) == false)
        }
    }
}
