import DatenwerkCore
import DatenwerkTransforms
import Testing
import DatenwerkTesting

/// Next fire times of cron schedules in Europe/Berlin, including both DST changes.
@Suite struct CronScheduleTests {
    static func t(_ iso: String) -> Int64 { try! TimestampParser(format: "iso8601", zone: nil).parse(iso) }
    static func iso(_ micros: Int64?) -> String { micros.map(TimestampParser.formatISO8601) ?? "nil" }

    func fires(_ expression: String, after start: String, count: Int, zone: String = "Europe/Berlin") throws -> [String] {
        let schedule = try CronSchedule(expression, zone: zone)
        var at = Self.t(start)
        var out: [String] = []
        for _ in 0..<count {
            guard let next = schedule.next(after: at) else { break }
            out.append(Self.iso(next))
            at = next
        }
        return out
    }

    @Test func hourlyAtFiveMinutesPastInWinterAndSummer() throws {
        #expect(try fires("5 * * * *", after: "2024-01-15T10:05:00Z", count: 2) == ["2024-01-15T11:05:00Z", "2024-01-15T12:05:00Z"])
        #expect(try fires("5 * * * *", after: "2024-07-15T10:00:00Z", count: 1) == ["2024-07-15T10:05:00Z"])
    }

    @Test func dailyAtHalfPastTwoAcrossTheSpringGap() throws {
        // 2024-03-31 02:30 does not exist in Berlin: it fires once, right after the gap (03:00 CEST = 01:00Z).
        #expect(try fires("30 2 * * *", after: "2024-03-29T12:00:00Z", count: 4) ==
                ["2024-03-30T01:30:00Z", "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z", "2024-04-02T00:30:00Z"])
    }

    @Test func dailyAtHalfPastTwoAcrossTheAutumnOverlap() throws {
        // 2024-10-27 02:30 happens twice: it fires once, at the first (CEST) occurrence.
        #expect(try fires("30 2 * * *", after: "2024-10-25T12:00:00Z", count: 4) ==
                ["2024-10-26T00:30:00Z", "2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z", "2024-10-29T01:30:00Z"])
    }

    @Test func everyQuarterHourThroughTheRepeatedHourKeepsUTCSpacing() throws {
        #expect(try fires("*/15 * * * *", after: "2024-10-27T00:40:00Z", count: 4) ==
                ["2024-10-27T00:45:00Z", "2024-10-27T01:00:00Z", "2024-10-27T01:15:00Z", "2024-10-27T01:30:00Z"])
    }

    @Test func weekdaysMonthsListsAndNames() throws {
        // Mondays to Fridays at 06:00 local, starting Friday 2024-05-03.
        #expect(try fires("0 6 * * MON-FRI", after: "2024-05-03T05:00:00Z", count: 2) == ["2024-05-06T04:00:00Z", "2024-05-07T04:00:00Z"])
        // First of January and July at midnight.
        #expect(try fires("0 0 1 JAN,JUL *", after: "2024-02-01T00:00:00Z", count: 2) == ["2024-06-30T22:00:00Z", "2024-12-31T23:00:00Z"])
        // Day of month OR day of week when both are restricted: the 13th or any Friday.
        #expect(try fires("0 12 13 * 5", after: "2024-09-01T00:00:00Z", count: 3) == ["2024-09-06T10:00:00Z", "2024-09-13T10:00:00Z", "2024-09-20T10:00:00Z"])
        // Sunday as 0 and as 7.
        #expect(try fires("0 0 * * 7", after: "2024-09-01T00:00:00Z", count: 1) == (try fires("0 0 * * 0", after: "2024-09-01T00:00:00Z", count: 1)))
        // Leap day.
        #expect(try fires("0 0 29 2 *", after: "2024-03-01T00:00:00Z", count: 1) == ["2028-02-28T23:00:00Z"])
    }

    @Test func utcZoneAndMacros() throws {
        #expect(try fires("@daily", after: "2024-03-30T12:00:00Z", count: 2, zone: "UTC") == ["2024-03-31T00:00:00Z", "2024-04-01T00:00:00Z"])
        #expect(try fires("@hourly", after: "2024-03-31T00:30:00Z", count: 2) == ["2024-03-31T01:00:00Z", "2024-03-31T02:00:00Z"])
    }

    @Test func everyDurationIsAlignedToTheEpoch() throws {
        #expect(try fires("every 15m", after: "2024-05-01T10:07:00Z", count: 2) == ["2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z"])
        #expect(try fires("every PT1H", after: "2024-05-01T10:00:00Z", count: 1) == ["2024-05-01T11:00:00Z"])
    }

    @Test func invalidExpressionsSayWhy() {
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule("61 * * * *") }
        let fields = try? CronSchedule("5 * * *")
        #expect(fields == nil)
        do {
            _ = try CronSchedule("0 25 * * *")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "hour 25 is outside 0–23")
        }
        do {
            _ = try CronSchedule("every soon")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".hasPrefix("'soon' is not a duration"))
        }
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule("0 0 * * *", zone: "Mars/Olympus") }
    }
}

extension CronScheduleTests {
    @Test func everyHourJobsFollowRealTimeThroughTheSpringGap() throws {
        // 01:45 CET, then 03:00 CEST: the wall clock jumps, real time advances 15 minutes.
        #expect(try fires("*/15 * * * *", after: "2024-03-31T00:40:00Z", count: 3) ==
                ["2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:15:00Z"])
    }
}
