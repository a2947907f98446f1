import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkTransforms
import Logging
import Testing
import DatenwerkTesting

/// The scheduler's rules without a database: `SchedulePlan` and `Scheduler` over an in-memory store.
@Suite struct SchedulePlanTests {
    static let hourly = try! CronSchedule("5 * * * *", zone: "UTC")

    @Test func firstSightStartsFromNowAndNeverFiresForThePast() {
        let now = utc("2024-03-30T14:30:00Z")
        #expect(SchedulePlan(cron: Self.hourly, state: nil, now: now) == .start(expression: "5 * * * * (UTC)", lastFire: now, nextFire: utc("2024-03-30T15:05:00Z")))
    }

    @Test func missedFiresAfterDowntimeBecomeExactlyOneJob() {
        // Last fire 09:05, down until 14:30: five fires missed (10:05 … 14:05), one job for the latest.
        let state = ScheduleState(expression: Self.hourly.description, lastFire: utc("2024-03-30T09:05:00Z"))
        let plan = SchedulePlan(cron: Self.hourly, state: state, now: utc("2024-03-30T14:30:00Z"), jitter: 0)
        #expect(plan == .fire(due: utc("2024-03-30T14:05:00Z"), notBefore: utc("2024-03-30T14:05:00Z"), missed: 5, nextFire: utc("2024-03-30T15:05:00Z")))
    }

    @Test func aFireExactlyNowIsDueAndNothingDueWaits() {
        let state = ScheduleState(expression: Self.hourly.description, lastFire: utc("2024-03-30T14:05:00Z"))
        #expect(SchedulePlan(cron: Self.hourly, state: state, now: utc("2024-03-30T14:59:59Z")) == .wait(nextFire: utc("2024-03-30T15:05:00Z")))
        guard case .fire(let due, _, let missed, let next) = SchedulePlan(cron: Self.hourly, state: state, now: utc("2024-03-30T15:05:00Z")) else {
            Issue.record("15:05 is due at 15:05")
            return
        }
        #expect(due == utc("2024-03-30T15:05:00Z") && missed == 1 && next == utc("2024-03-30T16:05:00Z"))
    }

    @Test func aChangedScheduleStartsAgainWithoutCatchingUp() throws {
        let state = ScheduleState(expression: "0 * * * * (UTC)", lastFire: utc("2024-03-29T00:00:00Z"))
        let now = utc("2024-03-30T14:30:00Z")
        #expect(SchedulePlan(cron: Self.hourly, state: state, now: now) == .start(expression: "5 * * * * (UTC)", lastFire: now, nextFire: utc("2024-03-30T15:05:00Z")))
        // The zone is part of the schedule: the same fields in another zone are a changed schedule.
        let berlin = try CronSchedule("5 * * * *", zone: "Europe/Berlin")
        guard case .start = SchedulePlan(cron: berlin, state: ScheduleState(expression: Self.hourly.description, lastFire: 0), now: now) else {
            Issue.record("a new zone must start again")
            return
        }
    }

    @Test func jitterStaysWithinItsBoundsAndDelaysOnlyTheJob() {
        var generator = SeededGenerator(seed: 42)
        let draws = (0..<2_000).map { _ in SchedulePlan.jitter(seconds: 90, using: &generator) }
        #expect(draws.allSatisfy { (0...90_000_000).contains($0) })
        #expect(draws.min()! < 5_000_000 && draws.max()! > 85_000_000, "spread over the whole range")
        #expect(SchedulePlan.jitter(seconds: 0, using: &generator) == 0)
        #expect(SchedulePlan.jitter(seconds: -5, using: &generator) == 0)
        // More than validation allows is clamped to one day (no overflow, no absurd delay).
        #expect((0..<200).allSatisfy { _ in SchedulePlan.jitter(seconds: Int.max, using: &generator) <= Int64(PipelineSpec.maxJitterSeconds) * 1_000_000 })

        let state = ScheduleState(expression: Self.hourly.description, lastFire: utc("2024-03-30T13:05:00Z"))
        let plan = SchedulePlan(cron: Self.hourly, state: state, now: utc("2024-03-30T14:30:00Z"), jitter: 61_000_000)
        #expect(plan == .fire(due: utc("2024-03-30T14:05:00Z"), notBefore: utc("2024-03-30T14:06:01Z"), missed: 1, nextFire: utc("2024-03-30T15:05:00Z")))
    }

    @Test func schedulerTicksAfterDowntimeEnqueueOneJobOnce() async throws {
        let store = InMemoryJobQueue()
        let spec = try spec("""
            version: 1
            name: hourly
            tenant: "05515000"
            schedule: "5 * * * *"
            timezone: UTC
            jitter: 30s
            source: { kind: file, path: x.csv, format: { kind: csv } }
            observations: { station: { id: a }, time: { field: t, format: iso8601 }, values: [{ field: v, property: air_temperature }] }
            """)
        let unscheduled = try spec.withoutSchedule()
        let scheduler = Scheduler(pipelines: [spec, unscheduled], store: store, logger: Logger(label: "test"))
        #expect(scheduler.pipelines.map(\.name) == ["hourly"])
        #expect(try await scheduler.tick(now: utc("2024-03-30T09:30:00Z")).isEmpty)   // first sight
        let fired = try await scheduler.tick(now: utc("2024-03-30T14:30:00Z"))
        #expect(fired == [Scheduler.Fired(pipeline: "hourly", fire: utc("2024-03-30T14:05:00Z"), missed: 5)])
        #expect(try await scheduler.tick(now: utc("2024-03-30T14:31:00Z")).isEmpty)
        let jobs = store.table.jobs
        #expect(jobs.count == 1)
        #expect(jobs.first.map { $0.kind == "scheduled" && $0.due == utc("2024-03-30T14:05:00Z") } == true)
        #expect(jobs.first.map { (0...30_000_000).contains($0.notBefore - $0.due) } == true)
        #expect(store.schedule("hourly")?.lastFire == utc("2024-03-30T14:05:00Z"))
    }
}

extension PipelineSpec {
    /// The same pipeline, named `manual`, without `schedule:`.
    func withoutSchedule() throws -> PipelineSpec {
        var copy = self
        copy.name = "manual"
        copy.cron = nil
        return copy
    }
}
