import DatenwerkCore

/// A pipeline schedule: a 5-field cron expression in a time zone (default Europe/Berlin),
/// or `every <duration>`.
///
/// Cron semantics across DST changes (as Vixie cron does it): a job at fixed hours whose time falls
/// into the spring gap fires once at the first instant after the gap, and one in the repeated autumn
/// hour fires once, at its first occurrence; a job that runs every hour (`*` in the hour field) follows
/// real time, so it runs in the repeated hour as well and never twice at one instant.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case cron(minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>, daysRestricted: Bool, weekdaysRestricted: Bool)
        case every(seconds: Int64)
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let expression: String
    public let kind: Kind
    public let zone: LocalTimeResolver

    public static func == (a: CronSchedule, b: CronSchedule) -> Bool { a.expression == b.expression && a.zone.identifier == b.zone.identifier }
    public func hash(into hasher: inout Hasher) { hasher.combine(expression); hasher.combine(zone.identifier) }
    public var description: String { "\(expression) (\(zone.identifier))" }

    public init(_ expression: String, zone identifier: String = "Europe/Berlin") throws {
        self.expression = expression
        do {
            self.zone = try LocalTimeResolver(zone: identifier, ambiguity: .first)
        } catch {
            throw ParseError(description: "\(error)")
        }
        let text = expression.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("every ") {
            let duration = String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            guard let seconds = Self.duration(duration) else {
                throw ParseError(description: "'\(duration)' is not a duration like 15m, 1h, 30s, 1d or PT15M")
            }
            kind = .every(seconds: seconds)
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

    /// The first fire time strictly after `after` (µs UTC).
    public func next(after: Int64) -> Int64? {
        switch kind {
        case .every(let seconds):
            let step = seconds * 1_000_000
            // Aligned to the epoch, so restarts keep the same rhythm.
            return (after / step + 1) * step
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

    static func duration(_ text: String) -> Int64? {
        if let value = Int64(text.dropLast()), value > 0, let unit = text.last {
            switch unit {
            case "s": return value
            case "m": return value * 60
            case "h": return value * 3600
            case "d": return value * 86400
            default: break
            }
        }
        guard text.hasPrefix("PT") || text.hasPrefix("P") else { return nil }
        var total: Int64 = 0, number = "", inTime = false
        for c in text.dropFirst() {
            if c == "T" { inTime = true; continue }
            if c.isNumber { number.append(c); continue }
            guard let n = Int64(number) else { return nil }
            number = ""
            switch (c, inTime) {
            case ("D", false): total += n * 86400
            case ("H", true): total += n * 3600
            case ("M", true): total += n * 60
            case ("S", true): total += n
            default: return nil
            }
        }
        return number.isEmpty && total > 0 ? total : nil
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
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: "/", maxSplits: 1)
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw ParseError(description: "'\(pieces[1])' is not a valid step for \(name)") }
                step = s
            }
            let base = pieces[0]
            let lower: Int, upper: Int
            if base == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                lower = try value(base[..<dash])
                upper = try value(base[base.index(after: dash)...])
                guard lower <= upper else { throw ParseError(description: "\(name) range \(base) runs backwards") }
            } else {
                lower = try value(base)
                upper = pieces.count == 2 ? range.upperBound : lower
            }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        guard !result.isEmpty else { throw ParseError(description: "empty \(name) field") }
        return result
    }
}
