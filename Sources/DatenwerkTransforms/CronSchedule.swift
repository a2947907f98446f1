import DatenwerkCore

/// A pipeline schedule: a 5-field cron expression in a time zone (default Europe/Berlin),
/// or `every <duration>`.
///
/// Cron semantics across DST changes (as Vixie cron does it): a job at fixed hours whose time falls
/// into the spring gap fires once at the first instant after the gap, and one in the repeated autumn
/// hour fires once, at its first occurrence; a job that runs every hour (`*` in the hour field) follows
/// real time, so it runs in the repeated hour as well and never twice at one instant.
package struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    package enum Kind: Sendable, Hashable {
        case cron(minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>, daysRestricted: Bool, weekdaysRestricted: Bool)
        case every(seconds: Int64)
    }

    package struct ParseError: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package let expression: String
    package let kind: Kind
    package let zone: LocalTimeResolver

    package static func == (a: CronSchedule, b: CronSchedule) -> Bool { a.expression == b.expression && a.zone.identifier == b.zone.identifier }
    package func hash(into hasher: inout Hasher) { hasher.combine(expression); hasher.combine(zone.identifier) }
    package var description: String { "\(expression) (\(zone.identifier))" }

    package init(_ expression: String, zone identifier: String = "Europe/Berlin") throws {
        self.expression = expression
        do {
            self.zone = try LocalTimeResolver(zone: identifier, ambiguity: .first)
        } catch {
            throw ParseError(description: "\(error)")
        }
        let text = expression.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("every ") {
            let duration = String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            kind = .every(seconds: try Self.durationSeconds(duration))
            return
        }
        let macros = ["@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
                      "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"]
        let fields = (macros[text] ?? text).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(description: "'\(expression)' has \(fields.count) fields; cron needs 5 (minute hour day-of-month month day-of-week) or 'every <duration>'")
        }
        let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        let days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        let minute = try Self.field(fields[0], "minute", 0...59)
        let hour = try Self.field(fields[1], "hour", 0...23)
        let dom = try Self.field(fields[2], "day of month", 1...31)
        let month = try Self.field(fields[3], "month", 1...12, names: months, nameBase: 1)
        var dow = try Self.field(fields[4], "day of week", 0...7, names: days, nameBase: 0)
        if dow.contains(7) { dow.remove(7); dow.insert(0) }
        kind = .cron(minutes: minute, hours: hour, days: dom, months: month, weekdays: dow,
                     daysRestricted: fields[2] != "*", weekdaysRestricted: fields[4] != "*")
    }

    /// The first instant this calendar arithmetic handles (0001-01-01T00:00Z, µs UTC).
    static let earliestMicroseconds: Int64 = CivilTime.days(year: 1, month: 1, day: 1) * 86_400_000_000
    /// The first instant after year 9999 (µs UTC).
    static let endMicroseconds: Int64 = CivilTime.days(year: 10_000, month: 1, day: 1) * 86_400_000_000

    /// The first fire time strictly after `after` (µs UTC); nil when there is none before the year 10000
    /// (or `after` is outside the years 1–9999).
    package func next(after: Int64) -> Int64? {
        guard after >= Self.earliestMicroseconds && after < Self.endMicroseconds else { return nil }
        let result: Int64?
        switch kind {
        case .every(let seconds):
            // Aligned to the epoch, so restarts keep the same rhythm. `seconds` is at most maximumDurationSeconds,
            // so the step fits easily; the product is checked all the same.
            let (step, stepOverflow) = max(1, seconds).multipliedReportingOverflow(by: 1_000_000)
            guard !stepOverflow else { return nil }
            let (t, overflow) = (CivilTime.floorDiv(after, step) + 1).multipliedReportingOverflow(by: step)
            result = overflow ? nil : t
        case .cron:
            result = nextCron(after: after)
        }
        guard let result, result < Self.endMicroseconds else { return nil }
        return result
    }

    private func nextCron(after: Int64) -> Int64? {
        switch kind {
        case .every:
            return nil
        case .cron(let minutes, let hours, let days, let months, let weekdays, let daysRestricted, let weekdaysRestricted) where hours.count == 24:
            // Every hour: walk real time minute by minute, so the repeated autumn hour runs too and the
            // spacing stays even in UTC (what `*/15 * * * *` is meant to do).
            var u = (after / 60_000_000 + 1) * 60_000_000
            for _ in 0..<(366 * 8 * 1440) {
                let local = u / 1_000_000 + Int64(zone.offsetSeconds(atUTCMicroseconds: u))
                let day = CivilTime.floorDiv(local, 86_400)
                let (_, m, d) = CivilTime.date(days: day)
                let weekday = Int(((day % 7) + 11) % 7)
                let domOK = days.contains(d), dowOK = weekdays.contains(weekday)
                let dayMatches = months.contains(m) && (daysRestricted && weekdaysRestricted ? (domOK || dowOK) : (domOK && dowOK))
                if !dayMatches {
                    u += (86_400 - (local - day * 86_400)) * 1_000_000   // jump to the next local midnight
                    continue
                }
                if minutes.contains(Int((local % 3600) / 60)) { return u }
                u += 60_000_000
            }
            return nil
        case .cron(let minutes, let hours, let days, let months, let weekdays, let daysRestricted, let weekdaysRestricted):
            let offset = Int64(zone.offsetSeconds(atUTCMicroseconds: after))
            let localSeconds = after / 1_000_000 + offset
            var day = CivilTime.floorDiv(localSeconds, 86_400) - 1          // start a day early: offsets can move us back
            let sortedHours = hours.sorted(), sortedMinutes = minutes.sorted()
            for _ in 0..<(366 * 8) {
                defer { day += 1 }
                let (y, m, d) = CivilTime.date(days: day)
                guard months.contains(m) else { continue }
                let weekday = Int(((day % 7) + 11) % 7)   // 1970-01-01 was a Thursday (4)
                let domOK = days.contains(d), dowOK = weekdays.contains(weekday)
                let matches = daysRestricted && weekdaysRestricted ? (domOK || dowOK) : (domOK && dowOK)
                guard matches else { continue }
                for h in sortedHours {
                    for mi in sortedMinutes {
                        let t: Int64
                        do {
                            t = try zone.utcMicroseconds(year: y, month: m, day: d, hour: h, minute: mi)
                        } catch .nonexistent {
                            // In the spring gap: fire at the first instant after it (the next full hour's offset).
                            guard let after = try? zone.utcMicroseconds(year: y, month: m, day: d, hour: h + 1 <= 23 ? h + 1 : 23, minute: 0) else { continue }
                            t = after
                        } catch {
                            continue
                        }
                        if t > after { return t }
                    }
                }
            }
            return nil
        }
    }

    /// The longest duration `durationSeconds` accepts: 3650 days. Anything longer is a typo, and every
    /// duration up to it can be turned into microseconds and added to any time in the years 1–9999 without overflow.
    package static let maximumDurationSeconds: Int64 = 3650 * 86_400

    /// Seconds in a duration as pipelines write them: `30s`, `15m`, `1h`, `1d`, or ISO 8601 `PT15M`, `PT1H30M`,
    /// `P1D`, `P1W`, `P1DT12H`. Zero, negative, malformed and longer-than-`maximum` durations are a `ParseError`
    /// saying which; this never traps, whatever the text (`every 9999999999999m` is an error, not an overflow).
    package static func durationSeconds(_ text: String, maximum: Int64 = maximumDurationSeconds) throws(ParseError) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        let malformed = ParseError(description: "'\(t)' is not a duration like 15m, 1h, 30s, 1d or PT15M")
        let tooLong = ParseError(description: "'\(t)' is longer than \(maximum / 86_400 > 0 ? "\(maximum / 86_400) days" : "\(maximum) seconds"), the longest duration allowed")
        /// `count` units of `unit` seconds, or nil when that is beyond `maximum`.
        func seconds(_ count: Int64, _ unit: Int64) -> Int64? {
            count <= maximum / unit ? count * unit : nil
        }
        func unitSeconds(_ c: Character) -> Int64? {
            switch c {
            case "s": return 1
            case "m": return 60
            case "h": return 3600
            case "d": return 86_400
            default: return nil
            }
        }
        if let unit = t.last.flatMap(unitSeconds) {
            let digits = t.dropLast()
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw malformed }
            // More digits than Int64 holds is still just "too long".
            guard let count = Int64(digits) else { throw tooLong }
            guard count > 0 else { throw ParseError(description: "'\(t)' is zero; a duration must be positive") }
            guard let total = seconds(count, unit) else { throw tooLong }
            return total
        }
        guard t.hasPrefix("P") else { throw malformed }
        var total: Int64 = 0, number = "", inTime = false, any = false
        for c in t.dropFirst() {
            if c == "T" && !inTime && number.isEmpty { inTime = true; continue }
            if c.isASCII && c.isNumber { number.append(c); continue }
            guard !number.isEmpty else { throw malformed }
            let unit: Int64
            switch (c, inTime) {
            case ("W", false): unit = 7 * 86_400
            case ("D", false): unit = 86_400
            case ("H", true): unit = 3600
            case ("M", true): unit = 60
            case ("S", true): unit = 1
            default: throw malformed
            }
            guard let n = Int64(number), let part = seconds(n, unit) else { throw tooLong }
            number = ""
            any = true
            total += part
            guard total <= maximum else { throw tooLong }
        }
        guard any && number.isEmpty else { throw malformed }
        guard total > 0 else { throw ParseError(description: "'\(t)' is zero; a duration must be positive") }
        return total
    }

    /// `durationSeconds` without the reason.
    static func duration(_ text: String) -> Int64? {
        try? durationSeconds(text)
    }

    static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String] = [], nameBase: Int = 0) throws -> Set<Int> {
        func value(_ token: Substring) throws -> Int {
            if let n = Int(token) {
                guard range.contains(n) else { throw ParseError(description: "\(name) \(n) is outside \(range.lowerBound)–\(range.upperBound)") }
                return n
            }
            if let i = names.firstIndex(of: token.uppercased()) { return i + nameBase }
            throw ParseError(description: "'\(token)' is not a valid \(name)")
        }
        var result = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            // base, or base/step; an empty base ("/5", ",,") is an error, not a crash.
            let slash = part.firstIndex(of: "/")
            let base = part[..<(slash ?? part.endIndex)]
            var step = 1
            if let slash {
                let stepText = part[part.index(after: slash)...]
                guard let s = Int(stepText), s > 0 else { throw ParseError(description: "'\(stepText)' is not a valid step for \(name)") }
                step = s
            }
            guard !base.isEmpty else { throw ParseError(description: "'\(part)' is not a valid \(name)") }
            let lower: Int, upper: Int
            if base == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                lower = try value(base[..<dash])
                upper = try value(base[base.index(after: dash)...])
                guard lower <= upper else { throw ParseError(description: "\(name) range \(base) runs backwards") }
            } else {
                lower = try value(base)
                upper = slash != nil ? range.upperBound : lower
            }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        guard !result.isEmpty else { throw ParseError(description: "empty \(name) field") }
        return result
    }
}
