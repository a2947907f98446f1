import Foundation
import Synchronization

/// Wrong credentials per client (peer address), as a token bucket: each client may fail `burst` times, and one
/// failure more is forgiven every `window / burst` (10 per minute: one every 6 s). A client whose bucket is empty
/// is answered 429 with `Retry-After` (the seconds until one failure is forgiven) before its credential is even
/// looked at, so guessing tokens costs a minute per 10 guesses. Requests that present no credential, or the right
/// one, cost nothing.
///
/// Memory is bounded: at most `maxClients` buckets. A new client when the table is full first drops every
/// bucket that has refilled (a client that has not failed lately); if none has, the one idle longest.
package final class FailureLimiter: Sendable {
    package struct Policy: Sendable {
        package var burst: Int
        package var window: Duration
        package var maxClients: Int

        package init(burst: Int = 10, window: Duration = .seconds(60), maxClients: Int = 10_000) {
            self.burst = max(1, burst)
            self.window = window
            self.maxClients = max(1, maxClients)
        }
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    package let policy: Policy
    private let buckets = Mutex<[String: Bucket]>([:])

    package init(_ policy: Policy = Policy()) { self.policy = policy }

    /// Seconds per forgiven failure.
    private var refillSeconds: Double {
        let w = policy.window.components
        return (Double(w.seconds) + Double(w.attoseconds) / 1e18) / Double(policy.burst)
    }

    private func refilled(_ bucket: Bucket, at now: ContinuousClock.Instant) -> Bucket {
        let elapsed = bucket.updated.duration(to: now).components
        let seconds = max(0, Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        let tokens = min(Double(policy.burst), bucket.tokens + (refillSeconds > 0 ? seconds / refillSeconds : Double(policy.burst)))
        return Bucket(tokens: tokens, updated: now)
    }

    /// nil when `client` may try; otherwise the whole seconds (at least 1) to wait.
    package func retryAfter(_ client: String, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { table in
            guard let bucket = table[client] else { return nil }
            let current = refilled(bucket, at: now)
            guard current.tokens < 1 else { return nil }
            return max(1, Int(((1 - current.tokens) * refillSeconds).rounded(.up)))
        }
    }

    /// Counts one wrong credential of `client`.
    package func recordFailure(_ client: String, now: ContinuousClock.Instant = .now) {
        buckets.withLock { table in
            if let bucket = table[client] {
                var current = refilled(bucket, at: now)
                current.tokens = max(0, current.tokens - 1)
                table[client] = current
                return
            }
            if table.count >= policy.maxClients {
                let full = Double(policy.burst)
                for (key, bucket) in table where refilled(bucket, at: now).tokens >= full { table.removeValue(forKey: key) }
                if table.count >= policy.maxClients, let oldest = table.min(by: { $0.value.updated < $1.value.updated })?.key {
                    table.removeValue(forKey: oldest)
                }
            }
            table[client] = Bucket(tokens: Double(policy.burst) - 1, updated: now)
        }
    }

    /// Clients with a bucket (for tests of the bound).
    package var trackedClients: Int { buckets.withLock { $0.count } }
}
