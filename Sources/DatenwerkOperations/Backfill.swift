import Foundation

/// Backfill = one `backfill` job per chunk of the range; the job queue remembers what is done.
package enum Backfill {
    /// Allowed `--chunk` lengths (1 minute … 10 years) and the most chunks one command may queue.
    package static let chunkSeconds = 60...(3660 * 86_400)
    package static let maxChunks: Int64 = 100_000

    /// [from, to) cut into chunks of `seconds` (the last one shorter).
    package static func chunks(from: Int64, to: Int64, seconds: Int) -> [Range<Int64>] {
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
    package static func enqueue(_ pipeline: String, windows: [Range<Int64>], queue: any JobQueue) async throws -> Int {
        var added = 0
        for window in windows {
            if try await queue.enqueue(pipeline: pipeline, kind: "backfill", due: Micros.date(window.lowerBound), window: window) != nil { added += 1 }
        }
        if let first = windows.first, let last = windows.last {
            try await queue.retryFailed(pipeline: pipeline, kind: "backfill", due: first.lowerBound..<last.upperBound)
        }
        return added
    }

    /// How many chunks of `pipeline` are in each status.
    package static func states(_ pipeline: String, queue: any JobQueue) async throws -> [JobStatus: Int] {
        try await queue.counts(pipeline: pipeline, kind: "backfill")
    }
}
