import DatenwerkCore
@testable import DatenwerkTransforms
import Testing
import DatenwerkTesting

/// Issue 10: schedules and durations out of range are errors, never an overflow trap later.
@Suite("CronSchedule limits")
struct CronScheduleLimitsTests {
    @Test("durations: units, ISO 8601, and what is refused with a reason")
    func durations() throws {
        #expect(try CronSchedule.durationSeconds("30s") == 30)
        #expect(try CronSchedule.durationSeconds(" 15m ") == 900)
        #expect(try CronSchedule.durationSeconds("1d") == 86_400)
        #expect(try CronSchedule.durationSeconds("PT1H30M") == 5400)
        #expect(try CronSchedule.durationSeconds("P1W") == 604_800)
        #expect(try CronSchedule.durationSeconds("P1DT12H") == 129_600)
        #expect(try CronSchedule.durationSeconds("3650d") == CronSchedule.maximumDurationSeconds)
        for text in ["", "m", "15", "15x", "-5m", "+5m", "1.5h", "P", "PT", "P1H", "PT1D", "PTM", "P1S", "every 5m"] {
            let error = try #require(throws: CronSchedule.ParseError.self, "\(text)") { try CronSchedule.durationSeconds(text) }
            #expect(error.description.contains("is not a duration") || error.description.contains("zero"), "\(text): \(error)")
        }
        for text in ["0m", "PT0S"] {
            let error = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule.durationSeconds(text) }
            #expect(error.description == "'\(text)' is zero; a duration must be positive")
        }
        for text in ["3651d", "9999999999999m", "99999999999999999999999999s", "PT9223372036854775807S", "P9999999999999W", "P3000DT900000H"] {
            let error = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule.durationSeconds(text) }
            #expect(error.description == "'\(text)' is longer than 3650 days, the longest duration allowed")
        }
        let jitter = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule.durationSeconds("2h", maximum: 3600) }
        #expect(jitter.description == "'2h' is longer than 3600 seconds, the longest duration allowed")
    }

    @Test("every 9999999999999m is an error when parsed, not an overflow when the next run is computed")
    func hugeEvery() throws {
        let error = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule("every 9999999999999m") }
        #expect(error.description == "'9999999999999m' is longer than 3650 days, the longest duration allowed")
        let longest = try CronSchedule("every 3650d")
        #expect(longest.next(after: 1_714_557_600_000_000) == 1_892_160_000_000_000)   // a multiple of 3650 days since 1970
        #expect(longest.next(after: .max) == nil)
        #expect(longest.next(after: .min) == nil)
        #expect(try CronSchedule("every 15m").next(after: CronSchedule.endMicroseconds - 1) == nil)
        #expect(try CronSchedule("every 15m").next(after: -1) == 0)
    }

    @Test("cron fields without a value ('/', ',1', '*/') are errors (found by fuzzing: '0 / * * *' trapped)")
    func emptyFieldParts() throws {
        for expression in ["0 / * * *", "0 1,/ * * *", "0 ,1 * * *", "0 1, * * *", "*/ * * * *", "0 /5 * * *"] {
            #expect(throws: CronSchedule.ParseError.self, "\(expression.debugDescription)") { try CronSchedule(expression) }
        }
        #expect(try CronSchedule("5/20 * * * *", zone: "UTC").next(after: 0) == 300_000_000)
    }

    @Test("cron next(after:) at the ends of the calendar is nil, not a trap")
    func calendarEnds() throws {
        let schedule = try CronSchedule("*/15 * * * *")
        #expect(schedule.next(after: .max) == nil)
        #expect(schedule.next(after: .min) == nil)
        #expect(try CronSchedule("0 0 1 1 *").next(after: CronSchedule.endMicroseconds - 1) == nil)
        #expect(try CronSchedule("0 0 31 2 *").next(after: 0) == nil)
    }
}
