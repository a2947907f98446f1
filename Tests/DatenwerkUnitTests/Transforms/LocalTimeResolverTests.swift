import Foundation
import Testing

@testable import DatenwerkTransforms
import DatenwerkTesting

@Suite struct LocalTimeResolverTests {
    let berlin = try! LocalTimeResolver(zone: "Europe/Berlin")

    @Test func winterAndSummerTime() throws {
        // CET = UTC+1, CEST = UTC+2.
        #expect(try berlin.utcMicroseconds(year: 2024, month: 1, day: 15, hour: 12, minute: 0, second: 0, microsecond: 0) == 1_705_316_400_000_000)
        #expect(try berlin.utcMicroseconds(year: 2024, month: 7, day: 15, hour: 12, minute: 0, second: 0, microsecond: 0) == 1_721_037_600_000_000)
        #expect(try berlin.utcMicroseconds(year: 2000, month: 2, day: 29, hour: 13, minute: 34, second: 56, microsecond: 789_012) == 951_827_696_789_012)
        #expect(try berlin.utcMicroseconds(year: 1970, month: 1, day: 1, hour: 0) == -3_600_000_000)
        // Twice, so the second answer comes from the cache.
        #expect(try berlin.utcMicroseconds(year: 2024, month: 7, day: 15, hour: 12, minute: 30) == 1_721_039_400_000_000)
        #expect(try berlin.utcMicroseconds(year: 2024, month: 7, day: 15, hour: 12, minute: 30) == 1_721_039_400_000_000)
    }

    @Test func springGapDoesNotExist() throws {
        #expect(try berlin.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 1, minute: 59) == 1_711_846_740_000_000)
        #expect(try berlin.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 3, minute: 0) == 1_711_846_800_000_000)
        for rule in LocalTimeResolver.Ambiguity.allCases {
            let resolver = berlin.with(ambiguity: rule)
            let error = #expect(throws: LocalTimeError.self) {
                try resolver.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 2, minute: 30, second: 0, microsecond: 0)
            }
            #expect(error == .nonexistent("2024-03-31 02:30 does not exist in Europe/Berlin (clocks skip from 02:00 to 03:00)"))
            #expect(error?.description == "2024-03-31 02:30 does not exist in Europe/Berlin (clocks skip from 02:00 to 03:00)")
        }
        #expect(throws: LocalTimeError.self) { try berlin.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 2, minute: 0) }
        #expect(throws: LocalTimeError.self) { try berlin.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 2, minute: 59, second: 59) }
    }

    @Test func autumnOverlapFollowsTheRule() throws {
        let first = try LocalTimeResolver(zone: "Europe/Berlin", ambiguity: .first)
        let second = try LocalTimeResolver(zone: "Europe/Berlin", ambiguity: .second)
        let reject = try LocalTimeResolver(zone: "Europe/Berlin", ambiguity: .reject)
        // 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
        #expect(try first.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 2, minute: 30) == 1_729_989_000_000_000)
        #expect(try second.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 2, minute: 30) == 1_729_992_600_000_000)
        #expect(TimestampParser.formatISO8601(try first.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 2, minute: 30)) == "2024-10-27T00:30:00Z")
        #expect(TimestampParser.formatISO8601(try second.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 2, minute: 30)) == "2024-10-27T01:30:00Z")
        let error = #expect(throws: LocalTimeError.self) {
            try reject.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 2, minute: 30, second: 0, microsecond: 0)
        }
        #expect(error?.description == "2024-10-27 02:30 occurs twice in Europe/Berlin (clocks go back from 03:00 to 02:00): 2024-10-27T00:30:00Z or 2024-10-27T01:30:00Z; set the ambiguity rule to 'first' or 'second' to accept it")
        // Around the repeated hour every rule agrees.
        for resolver in [first, second, reject] {
            #expect(try resolver.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 1, minute: 59) == 1_729_987_140_000_000)
            #expect(try resolver.utcMicroseconds(year: 2024, month: 10, day: 27, hour: 3, minute: 0) == 1_729_994_400_000_000)
        }
    }

    @Test func hour24IsMidnightOfTheNextDay() throws {
        let midnight = try berlin.utcMicroseconds(year: 2025, month: 1, day: 1, hour: 0)
        #expect(try berlin.utcMicroseconds(year: 2024, month: 12, day: 31, hour: 24) == midnight)
        #expect(try berlin.utcMicroseconds(year: 2025, month: 1, day: 1, hour: 0) == 1_735_686_000_000_000)
        #expect(throws: LocalTimeError.invalid("hour 24 is only allowed as 24:00")) {
            try berlin.utcMicroseconds(year: 2024, month: 12, day: 31, hour: 24, minute: 30)
        }
    }

    @Test func invalidFields() {
        #expect(throws: LocalTimeError.invalid("month 13")) { try berlin.utcMicroseconds(year: 2024, month: 13, day: 1, hour: 0) }
        #expect(throws: LocalTimeError.invalid("day 30 (February 2024 has 29 days)")) { try berlin.utcMicroseconds(year: 2024, month: 2, day: 30, hour: 0) }
        #expect(throws: LocalTimeError.invalid("day 29 (February 2023 has 28 days)")) { try berlin.utcMicroseconds(year: 2023, month: 2, day: 29, hour: 0) }
        #expect(throws: LocalTimeError.invalid("day 31 (April 2024 has 30 days)")) { try berlin.utcMicroseconds(year: 2024, month: 4, day: 31, hour: 0) }
        #expect(throws: LocalTimeError.invalid("minute 60")) { try berlin.utcMicroseconds(year: 2024, month: 4, day: 1, hour: 0, minute: 60) }
        #expect(throws: LocalTimeError.invalid("hour 25")) { try berlin.utcMicroseconds(year: 2024, month: 4, day: 1, hour: 25) }
        #expect(LocalTimeError.invalid("month 13").description == "invalid date or time: month 13")
    }

    @Test func unknownZoneIsNamed() {
        let error = #expect(throws: LocalTimeError.self) { try LocalTimeResolver(zone: "Europe/Berln") }
        #expect(error == .unknownZone("Europe/Berln"))
        #expect(error?.description.hasPrefix("unknown time zone 'Europe/Berln'") == true)
        #expect(error?.description.contains("did you mean 'Europe/Berlin'?") == true)
    }

    @Test func utcAndOtherZones() throws {
        #expect(try LocalTimeResolver.utc.utcMicroseconds(year: 2024, month: 3, day: 31, hour: 2, minute: 30) == 1_711_852_200_000_000)
        #expect(try LocalTimeResolver(zone: "UTC").utcMicroseconds(year: 1969, month: 12, day: 31, hour: 23) == -3_600_000_000)
        // New York: EST = UTC-5; its 2024 spring gap is 02:00–03:00 on 10 March.
        let newYork = try LocalTimeResolver(zone: "America/New_York")
        #expect(try newYork.utcMicroseconds(year: 2024, month: 1, day: 15, hour: 6) == 1_705_316_400_000_000)
        let gap = #expect(throws: LocalTimeError.self) { try newYork.utcMicroseconds(year: 2024, month: 3, day: 10, hour: 2, minute: 15) }
        #expect(gap?.description == "2024-03-10 02:15 does not exist in America/New_York (clocks skip from 02:00 to 03:00)")
        // Kolkata has a half-hour offset and no daylight saving time.
        let kolkata = try LocalTimeResolver(zone: "Asia/Kolkata")
        #expect(try kolkata.utcMicroseconds(year: 2024, month: 1, day: 15, hour: 16, minute: 30) == 1_705_316_400_000_000)
    }

    @Test func civilDayArithmeticMatchesTheCalendar() {
        // Round trip over 1900…2100 and a few known day numbers.
        #expect(CivilTime.days(year: 1970, month: 1, day: 1) == 0)
        #expect(CivilTime.days(year: 2000, month: 3, day: 1) == 11_017)
        #expect(CivilTime.days(year: 1969, month: 12, day: 31) == -1)
        var expected = CivilTime.days(year: 1900, month: 1, day: 1)
        for year in 1900...2100 {
            for month in 1...12 {
                for day in 1...CivilTime.daysInMonth(month, year: year) {
                    let days = CivilTime.days(year: year, month: month, day: day)
                    if days != expected { Issue.record("\(year)-\(month)-\(day) is day \(days), expected \(expected)") }
                    expected += 1
                    let back = CivilTime.date(days: days)
                    if back != (year, month, day) { Issue.record("\(year)-\(month)-\(day) came back as \(back)") }
                }
            }
        }
    }

    /// Every quarter hour of 2024 read back from its local wall-clock time, checked against the
    /// system time zone database (this also runs the cache through eviction and every transition).
    @Test(arguments: ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
    func agreesWithTheTimeZoneDatabaseAllYear(identifier: String) throws {
        let zone = try #require(TimeZone(identifier: identifier))
        let first = try LocalTimeResolver(zone: identifier, ambiguity: .first)
        let second = first.with(ambiguity: .second)
        var instant: Int64 = 1_704_067_200   // 2024-01-01T00:00:00Z
        var mismatches = 0
        while instant < 1_735_689_600 {
            let local = instant + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
            let days = CivilTime.floorDiv(local, 86_400)
            let date = CivilTime.date(days: days)
            let secondOfDay = Int(local - days * 86_400)
            let fields = (date.year, date.month, date.day, secondOfDay / 3600, secondOfDay / 60 % 60)
            let a = try first.utcMicroseconds(year: fields.0, month: fields.1, day: fields.2, hour: fields.3, minute: fields.4)
            let b = try second.utcMicroseconds(year: fields.0, month: fields.1, day: fields.2, hour: fields.3, minute: fields.4)
            // Outside a repeated hour both rules give the instant; inside it one of them does.
            let expected = instant * 1_000_000
            if a != expected && b != expected || (a != b && a > b) { mismatches += 1 }
            instant += 900
        }
        #expect(mismatches == 0)
    }

    /// Seventy years read back, in steps that land on every hour of the day over time: the day table (11 years)
    /// wraps several times, and zones that change at midnight (São Paulo), skip a whole day (Apia, 2011-12-30) or move
    /// by half an hour (Lord Howe) still agree with the time zone database.
    @Test(arguments: ["Europe/Berlin", "America/Sao_Paulo", "Pacific/Apia", "Australia/Lord_Howe"])
    func agreesWithTheTimeZoneDatabaseOverDecades(identifier: String) throws {
        let zone = try #require(TimeZone(identifier: identifier))
        let first = try LocalTimeResolver(zone: identifier, ambiguity: .first)
        let second = first.with(ambiguity: .second)
        var instant: Int64 = 0                 // 1970-01-01T00:00:00Z
        var mismatches: [Int64] = []
        while instant < 2_208_988_800 {        // 2040
            let local = instant + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
            let days = CivilTime.floorDiv(local, 86_400)
            let date = CivilTime.date(days: days)
            let secondOfDay = Int(local - days * 86_400)
            let fields = (date.year, date.month, date.day, secondOfDay / 3600, secondOfDay / 60 % 60)
            let a = try first.utcMicroseconds(year: fields.0, month: fields.1, day: fields.2, hour: fields.3, minute: fields.4)
            let b = try second.utcMicroseconds(year: fields.0, month: fields.1, day: fields.2, hour: fields.3, minute: fields.4)
            let expected = instant * 1_000_000
            if a != expected && b != expected || (a != b && a > b) { mismatches.append(instant) }
            instant += 5 * 3600 + 17 * 60
        }
        #expect(mismatches.isEmpty)
    }

    @Test func sharedByConcurrentTasks() async throws {
        let resolver = berlin
        func work(_ task: Int) -> Int64 {
            var sum: Int64 = 0
            for i in 0..<3000 {
                let month = 1 + (i + task) % 12, day = 1 + (i * 7) % 28, hour = 3 + (i + task) % 20
                sum &+= (try? resolver.utcMicroseconds(year: 2024, month: month, day: day, hour: hour, minute: i % 60)) ?? -1
            }
            return sum
        }
        let fresh = try LocalTimeResolver(zone: "Europe/Berlin")
        var expected: [Int: Int64] = [:]
        for task in 0..<8 {
            var sum: Int64 = 0
            for i in 0..<3000 {
                let month = 1 + (i + task) % 12, day = 1 + (i * 7) % 28, hour = 3 + (i + task) % 20
                sum &+= (try? fresh.utcMicroseconds(year: 2024, month: month, day: day, hour: hour, minute: i % 60)) ?? -1
            }
            expected[task] = sum
        }
        let results = await withTaskGroup(of: (Int, Int64).self) { group in
            for task in 0..<8 { group.addTask { (task, work(task)) } }
            var results: [Int: Int64] = [:]
            for await (task, sum) in group { results[task] = sum }
            return results
        }
        #expect(results == expected)
    }
}
