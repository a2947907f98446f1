import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import Logging

/// A pipeline's schedule as stored: the expression it was last planned with and the last fire turned into a job.
package struct ScheduleState: Sendable, Hashable {
    package var expression: String
    /// µs UTC.
    package var lastFire: Int64

    package init(expression: String, lastFire: Int64) {
        self.expression = expression
        self.lastFire = lastFire
    }
}

/// What one scheduler tick does for one pipeline, decided without a database. Fires missed while nobody was
/// running become ONE job for the latest of them (caught up once, not N times).
package enum SchedulePlan: Sendable, Hashable {
    /// First sight (or a changed schedule): remember it from `lastFire` = now; never fire for the past.
    case start(expression: String, lastFire: Int64, nextFire: Int64?)
    /// Nothing due yet.
    case wait(nextFire: Int64?)
    /// One `scheduled` job due at `due` (the latest missed fire), not taken before `notBefore` (due + jitter).
    case fire(due: Int64, notBefore: Int64, missed: Int, nextFire: Int64?)

    /// The most fires one tick counts (a schedule every second, down for 11 days); later ones are caught up next tick.
    package static let maxCounted = 1_000_000

    /// The plan at `now` (µs UTC) for `cron` with what was stored; `jitter` (µs) delays a fire's job.
    package init(cron: CronSchedule, state: ScheduleState?, now: Int64, jitter: Int64 = 0) {
        let key = cron.description
        guard let state, state.expression == key else {
            self = .start(expression: key, lastFire: now, nextFire: cron.next(after: now))
            return
        }
        var cursor = state.lastFire
        var latest: Int64?
        var missed = 0
        while let fire = cron.next(after: cursor), fire <= now, missed < Self.maxCounted {
            latest = fire
            cursor = fire
            missed += 1
        }
        let next = cron.next(after: max(latest ?? cursor, now))
        guard let latest else {
            self = .wait(nextFire: next)
            return
        }
        self = .fire(due: latest, notBefore: latest + jitter, missed: missed, nextFire: next)
    }

    /// A random delay in [0, seconds] (µs) for a pipeline's `jitter:`; validation bounds it (≤ 1 day), clamped
    /// again here so no spec can make it overflow.
    package static func jitter(seconds: Int, using generator: inout some RandomNumberGenerator) -> Int64 {
        guard seconds > 0 else { return 0 }
        return Int64.random(in: 0...Int64(min(seconds, PipelineSpec.maxJitterSeconds)) * 1_000_000, using: &generator)
    }

    package static func jitter(seconds: Int) -> Int64 {
        var generator = SystemRandomNumberGenerator()
        return jitter(seconds: seconds, using: &generator)
    }
}

/// Where schedules are kept (`PostgresJobQueue`: `datenwerk.schedules`, row-locked, so several schedulers agree).
package protocol ScheduleStore: DescribesErrors {
    /// In one transaction, with the pipeline's schedule locked: reads its state, asks `plan` what to do and does
    /// it (remember the schedule; for `.fire`, add the job unless one is due at that time already). Returns the plan.
    func advance(_ pipeline: String, _ plan: @Sendable (ScheduleState?) -> SchedulePlan) async throws -> SchedulePlan
}

/// Turns `schedule:` into jobs. Each tick looks at every scheduled pipeline in its own short transaction
/// (`ScheduleStore.advance`) and does what `SchedulePlan` says, with the pipeline's jitter.
package struct Scheduler: Sendable {
    package let pipelines: [PipelineSpec]
    package let store: any ScheduleStore
    package var logger: Logger

    package init(pipelines: [PipelineSpec], store: any ScheduleStore, logger: Logger) {
        self.pipelines = pipelines.filter { $0.cron != nil }
        self.store = store
        self.logger = logger
    }

    package struct Fired: Sendable, Hashable {
        package var pipeline: String
        package var fire: Int64
        package var missed: Int

        package init(pipeline: String, fire: Int64, missed: Int) {
            self.pipeline = pipeline
            self.fire = fire
            self.missed = missed
        }
    }

    /// Enqueues what is due at `now` (µs UTC); returns what fired.
    @discardableResult
    package func tick(now: Int64 = Micros.now) async throws -> [Fired] {
        var fired: [Fired] = []
        for spec in pipelines {
            guard let cron = spec.cron else { continue }
            let jitter = SchedulePlan.jitter(seconds: spec.jitterSeconds)
            let plan = try await store.advance(spec.name) { SchedulePlan(cron: cron, state: $0, now: now, jitter: jitter) }
            guard case .fire(let due, _, let missed, _) = plan else { continue }
            if missed > 1 { logger.notice("\(spec.name): \(missed) fires were missed; caught up with one run") }
            fired.append(Fired(pipeline: spec.name, fire: due, missed: missed))
        }
        return fired
    }

    /// Ticks every `interval` until cancelled; database errors are logged and the next tick tries again.
    package func run(interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            do { try await tick() } catch {
                logger.error("scheduler: \(store.describe(error))")
            }
            try? await Task.sleep(for: interval)
        }
    }
}
