import Foundation
import PostgresNIO

/// Backfill = one `backfill` job per chunk of the range; the jobs table remembers what is done.
public enum Backfill {
    /// Allowed `--chunk` lengths (1 minute … 10 years) and the most chunks one command may queue.
    public static let chunkSeconds = 60...(3660 * 86_400)
    public static let maxChunks: Int64 = 100_000

    /// [from, to) cut into chunks of `seconds` (the last one shorter).
    public static func chunks(from: Int64, to: Int64, seconds: Int) -> [Range<Int64>] {
        let step = Int64(seconds) * 1_000_000
        var windows: [Range<Int64>] = []
        var t = from
        while t < to {
            windows.append(t..<min(t + step, to))
            t += step
        }
        return windows
    }

    /// Queues the chunks not queued before and gives failed ones a new chance; returns how many were added.
    public static func enqueue(_ pipeline: String, windows: [Range<Int64>], database: Database) async throws -> Int {
        let queue = JobQueue(database)
        var added = 0
        for window in windows {
            if try await queue.enqueue(pipeline: pipeline, kind: "backfill", due: JobQueue.date(window.lowerBound), window: window) != nil { added += 1 }
        }
        if let first = windows.first, let last = windows.last {
            try await database.client.query("""
                UPDATE datenwerk.jobs SET status = 'queued', attempts = 0, not_before = now(), error = NULL
                WHERE pipeline = \(pipeline) AND kind = 'backfill' AND status = 'failed'
                  AND due_at >= \(JobQueue.date(first.lowerBound)) AND due_at < \(JobQueue.date(last.upperBound))
                """, logger: database.logger)
        }
        return added
    }

    public static func states(_ pipeline: String, database: Database) async throws -> [String: Int] {
        var states: [String: Int] = [:]
        for try await (status, n) in try await database.client.query(
            "SELECT status, count(*)::bigint FROM datenwerk.jobs WHERE pipeline = \(pipeline) AND kind = 'backfill' GROUP BY status",
            logger: database.logger
        ).decode((String, Int64).self) {
            states[status] = Int(n)
        }
        return states
    }
}
