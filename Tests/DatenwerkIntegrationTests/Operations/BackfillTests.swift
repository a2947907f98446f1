import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

@Suite struct BackfillTests {
    @Test func chunksCoverTheRangeWithoutGaps() {
        let day: Int64 = 86_400_000_000
        let windows = Backfill.chunks(from: 0, to: 2 * day + 5, seconds: 86_400)
        #expect(windows == [0..<day, day..<(2 * day), (2 * day)..<(2 * day + 5)])
    }

    /// `datenwerk backfill` loads ten days in daily chunks while another session keeps reading the table:
    /// the reader is never blocked by a lock (its queries run with `lock_timeout = 1s` and none fails) and sees
    /// the data arrive chunk by chunk.
    /// Run again, it finds every chunk done and loads nothing.
    @Test func backfillInChunksWithAConcurrentReader() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            // 20 stations × 240 hours = ten days from 2024-01-01.
            let file = try BigLoad.write(dir, rows: 4_800)
            let env = ["DATABASE_URL": db.location.url]
            let backfill = try ChildProcess(["backfill", file, "--from", "2024-01-01", "--to", "2024-01-11", "--chunk", "1d"], environment: env)
            let counts: [Int64] = try await db.client.withConnection { reader in
                try await reader.query("SET lock_timeout = '1s'", logger: db.logger)
                var counts: [Int64] = []
                while backfill.process.isRunning {
                    for try await n in try await reader.query("SELECT count(*)::bigint FROM datenwerk.observations", logger: db.logger).decode(Int64.self) {
                        counts.append(n)
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                return counts
            }
            #expect(await backfill.wait() == 0, "\(backfill.text)")
            #expect(backfill.text.contains("10 chunks: 10 done, 0 failed (10 run now)"), "\(backfill.text)")
            #expect(counts == counts.sorted(), "the reader saw rows disappear")
            // Chunk by chunk: the reader saw several intermediate states, not all-or-nothing.
            let intermediate = Set(counts.filter { $0 > 0 && $0 < 14_400 })
            #expect(intermediate.count >= 2, "counts seen: \(Set(counts).sorted())")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 14_400)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE trigger = 'backfill' AND status = 'succeeded'") == 10)
            // Each chunk is its own run with its own window; the live cursor is not touched by a backfill.
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE loaded = 1440") == 10)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.checkpoints WHERE pipeline = 'big-load'") == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.checkpoints WHERE pipeline = 'big-load#backfill'") == 1)
            let again = try ChildProcess(["backfill", file, "--from", "2024-01-01", "--to", "2024-01-11", "--chunk", "1d"], environment: env)
            #expect(await again.wait() == 0)
            #expect(again.text.contains("10 chunks: 10 done, 0 failed (0 run now)"), "\(again.text)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs") == 10)
        }
    }
}
