/// Proleptic Gregorian calendar arithmetic on plain integers, so converting a local
/// wall-clock time never builds `DateComponents` or asks a `Calendar`.
package enum CivilTime {
    static let secondsPerDay: Int64 = 86_400
    static let microsPerSecond: Int64 = 1_000_000

    static let monthNames = [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ]

    package static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    package static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 for a civil date. Works in 400-year eras of 146 097 days,
    /// with years starting on 1 March so the leap day is the last day of a year.
    package static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400                                    // 0...399
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)      // March = 0
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1    // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of a day count since 1970-01-01 (inverse of `days(year:month:day:)`).
    package static func date(days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// Why a set of fields is not a valid wall-clock time, or nil when it is.
    /// Hour 24 is accepted only as 24:00:00 (the end of the day, as UBA writes it).
    static func problem(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, microsecond: Int) -> String? {
        if !(1...9999).contains(year) { return "year \(year)" }
        if !(1...12).contains(month) { return "month \(month)" }
        let length = daysInMonth(month, year: year)
        if day < 1 || day > length {
            return "day \(day) (\(monthNames[month - 1]) \(year) has \(length) days)"
        }
        if hour == 24 {
            if minute != 0 || second != 0 || microsecond != 0 { return "hour 24 is only allowed as 24:00" }
        } else if !(0...23).contains(hour) {
            return "hour \(hour)"
        }
        if !(0...59).contains(minute) { return "minute \(minute)" }
        if !(0...59).contains(second) { return "second \(second)" }
        if !(0...999_999).contains(microsecond) { return "microsecond \(microsecond)" }
        return nil
    }

    /// Seconds since 1970-01-01T00:00 of a wall-clock time read as if it were UTC.
    @inline(__always)
    static func seconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64 {
        days(year: year, month: month, day: day) * secondsPerDay + Int64(hour * 3600 + minute * 60 + second)
    }

    /// Floor division, so instants before 1970 fall into the right day or hour.
    @inline(__always)
    package static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// `2024-03-31 02:30` (with `:ss` only when the seconds are not zero).
    static func describeLocal(_ seconds: Int64) -> String {
        let days = floorDiv(seconds, secondsPerDay)
        let date = date(days: days)
        let s = Int(seconds - days * secondsPerDay)
        var out = "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2)) \(pad(s / 3600, 2)):\(pad(s / 60 % 60, 2))"
        if s % 60 != 0 { out += ":\(pad(s % 60, 2))" }
        return out
    }

    /// `02:00` — the clock time of a local second count.
    static func describeClock(_ seconds: Int64) -> String {
        let s = Int(seconds - floorDiv(seconds, secondsPerDay) * secondsPerDay)
        return "\(pad(s / 3600, 2)):\(pad(s / 60 % 60, 2))"
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
