import DatenwerkCore
import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite struct SchedulerTests {
    static func spec(_ schedule: String, jitter: String? = nil, name: String = "hourly") throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: \(name)
            tenant: "05515000"
            schedule: "\(schedule)"
            \(jitter.map { "jitter: \($0)" } ?? "")
            source: { kind: file, path: x.csv, format: { kind: csv } }
            observations: { station: { id: a }, time: { field: t, format: iso8601 }, values: [{ field: v, property: air_temperature }] }
            """, file: "/tmp/p.yaml")
    }

    static func micros(_ iso: String) throws -> Int64 { try TimestampParser(format: "iso8601", zone: .utc).parse(iso) }

    @Test func missedFiresAfterDowntimeAreCaughtUpOnce() async throws {
        try await TestDatabase.with { db in
            let scheduler = Scheduler(pipelines: [try Self.spec("5 * * * *")], database: db, logger: Logger(label: "test"))
            // First sight: nothing fires for the past.
            #expect(try await scheduler.tick(now: Self.micros("2024-03-30T10:00:00Z")).isEmpty)
            // Five hours down: one job, for the latest missed fire (14:05Z), not five.
            let fired = try await scheduler.tick(now: Self.micros("2024-03-30T15:00:00Z"))
            #expect(fired == [Scheduler.Fired(pipeline: "hourly", fire: try Self.micros("2024-03-30T14:05:00Z"), missed: 5)])
            // The same instant again (a second scheduler, or a restart): nothing new.
            #expect(try await scheduler.tick(now: Self.micros("2024-03-30T15:00:00Z")).isEmpty)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs") == 1)
            let next = try await db.client.query("SELECT next_fire FROM datenwerk.schedules", logger: db.logger).decode(Date.self).collect()
            #expect(next.first.map({ Micros.of($0) }) == (try Self.micros("2024-03-30T15:05:00Z")))
        }
    }

    /// Two schedulers ticking at once (two `serve` processes) enqueue each fire once.
    @Test func concurrentSchedulersAgree() async throws {
        try await TestDatabase.with { db in
            let spec = try Self.spec("*/10 * * * *")
            let a = Scheduler(pipelines: [spec], database: db, logger: Logger(label: "a"))
            let b = Scheduler(pipelines: [spec], database: db, logger: Logger(label: "b"))
            _ = try await a.tick(now: Self.micros("2024-10-27T00:00:00Z"))
            for minute in stride(from: 10, through: 120, by: 10) {
                let now = try Self.micros("2024-10-27T00:00:00Z") + Int64(minute) * 60_000_000
                async let x = a.tick(now: now)
                async let y = b.tick(now: now)
                let fired = try await x.count + y.count
                #expect(fired == 1, "minute \(minute): \(fired) schedulers fired")
            }
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE kind = 'scheduled'") == 12)
        }
    }

    /// Across the autumn change, "30 2 * * *" in Europe/Berlin fires once (at the first 02:30, 00:30Z).
    @Test func dailyFireOnTheAutumnChangeDay() async throws {
        try await TestDatabase.with { db in
            let scheduler = Scheduler(pipelines: [try Self.spec("30 2 * * *")], database: db, logger: Logger(label: "test"))
            _ = try await scheduler.tick(now: Self.micros("2024-10-26T12:00:00Z"))
            var fires: [Int64] = []
            var now = try Self.micros("2024-10-26T12:00:00Z")
            while now < (try Self.micros("2024-10-28T12:00:00Z")) {
                now += 15 * 60_000_000
                fires += try await scheduler.tick(now: now).map(\.fire)
            }
            #expect(fires == [try Self.micros("2024-10-27T00:30:00Z"), try Self.micros("2024-10-28T01:30:00Z")])
        }
    }

    @Test func jitterDelaysTheStartWithinItsBound() async throws {
        try await TestDatabase.with { db in
            let scheduler = Scheduler(pipelines: [try Self.spec("0 * * * *", jitter: "90s")], database: db, logger: Logger(label: "test"))
            _ = try await scheduler.tick(now: Self.micros("2024-05-01T00:30:00Z"))
            _ = try await scheduler.tick(now: Self.micros("2024-05-01T01:00:00Z"))
            let delay = try await scalar(db, "SELECT extract(epoch FROM not_before - due_at)::bigint FROM datenwerk.jobs")
            #expect((0...90).contains(delay))
        }
    }

    @Test func badSchedulesAreConfigurationErrors() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: x
                tenant: "05515000"
                schedule: "61 * * * *"
                jitter: soon
                source: { kind: file, path: x.csv, format: { kind: csv } }
                observations: { station: { id: a }, time: { field: t, format: iso8601 }, values: [{ field: v, property: air_temperature }] }
                """, file: "p.yaml")
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("61") && $0.contains("(at 'schedule')") })
        #expect(messages.contains("'soon' is not a duration (e.g. 30s, 5m, PT1M) (at 'jitter')"))
    }
}
