/// Why a timestamp text could not be read, or why a timestamp format is not usable.
package struct TimestampError: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Kind: String, Sendable, Hashable {
        /// The text does not have the shape of the format, or a field is out of range.
        case mismatch
        /// The local time falls into the spring-forward gap.
        case nonexistent
        /// The local time occurs twice and the ambiguity rule is `reject`.
        case ambiguous
        /// The format itself is not valid (reported when the parser is created).
        case invalidFormat
    }

    package var kind: Kind
    package var text: String
    package var format: String
    package var reason: String

    package init(_ kind: Kind, text: String, format: String, reason: String) {
        self.kind = kind
        self.text = text
        self.format = format
        self.reason = reason
    }

    package var description: String {
        switch kind {
        case .mismatch: return "'\(text)' does not match '\(format)': \(reason)"
        case .nonexistent, .ambiguous: return "'\(text)': \(reason)"
        case .invalidFormat: return "invalid timestamp format '\(format)': \(reason)"
        }
    }
}

/// Reads timestamps of one format into microseconds since 1970-01-01T00:00:00Z.
///
/// The format is a pattern (`dd.MM.yyyy HH:mm`, `yyyyMMddHH`, `yyyy-MM-dd'T'HH:mm:ssXXX`)
/// or a keyword: `iso8601` (RFC 3339, also date-only), `epoch_s`, `epoch_ms`, `epoch_us`.
/// Times without an offset are local times of `zone` (UTC when `zone` is nil).
/// Parsing scans bytes by hand: no `DateFormatter`, no `Calendar` per record.
package struct TimestampParser: Sendable {
    package static let keywords = ["iso8601", "epoch_s", "epoch_ms", "epoch_us"]

    package var format: String { program.format }
    package var zone: LocalTimeResolver { program.zone }
    /// Characters removed from both ends before parsing (e.g. `'` or `"` around a CSV cell).
    package var stripCharacters: String { program.stripCharacters }

    private enum Mode: Sendable {
        case pattern([Token])
        case iso8601
        case epoch(microsPerUnit: Int64)
    }

    private enum Field: Sendable {
        case year4, year2, month, day, hour, minute, second
    }

    /// Plain values only, so walking the tokens never retains anything.
    private enum Token: Sendable {
        /// Digits of one field: exactly `min` when `min == max`, else as many as there are up to `max`.
        /// `symbol` indexes `Program.symbols` (the pattern letters, for messages).
        case number(Field, min: Int, max: Int, symbol: Int)
        /// Fraction of a second; `digits` from the pattern, more are read when no digit field follows.
        case fraction(digits: Int, greedy: Bool, symbol: Int)
        /// `Z`, `±HH`, `±HHMM` or `±HH:MM`.
        case offset
        case literal(UInt8)
    }

    /// Everything a parse needs, behind one reference so copying the parser costs one retain.
    private final class Program: Sendable {
        let format: String
        let zone: LocalTimeResolver
        let stripCharacters: String
        let strip: [UInt8]
        let stripsCharacters: Bool
        let mode: Mode
        let symbols: [String]

        init(format: String, zone: LocalTimeResolver, stripCharacters: String, mode: Mode, symbols: [String]) {
            self.format = format
            self.zone = zone
            self.stripCharacters = stripCharacters
            self.strip = Array(stripCharacters.utf8)
            self.stripsCharacters = !stripCharacters.isEmpty
            self.mode = mode
            self.symbols = symbols
        }
    }

    private let program: Program

    package init(format: String, zone: LocalTimeResolver?, stripCharacters: String = "") throws(TimestampError) {
        let mode: Mode
        var symbols: [String] = []
        switch format {
        case "iso8601": mode = .iso8601
        case "epoch_s": mode = .epoch(microsPerUnit: 1_000_000)
        case "epoch_ms": mode = .epoch(microsPerUnit: 1000)
        case "epoch_us": mode = .epoch(microsPerUnit: 1)
        default: mode = .pattern(try Self.compile(format, symbols: &symbols))
        }
        program = Program(format: format, zone: zone ?? .utc, stripCharacters: stripCharacters, mode: mode, symbols: symbols)
    }

    // MARK: - Pattern compilation

    private static func compile(_ format: String, symbols: inout [String]) throws(TimestampError) -> [Token] {
        func fail(_ reason: String) -> TimestampError { TimestampError(.invalidFormat, text: "", format: format, reason: reason) }
        let chars = Array(format)
        var tokens: [Token] = []
        var seen: Set<Character> = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "'" {
                // Quoted literal; '' is a single quote.
                var j = i + 1
                if j < chars.count, chars[j] == "'" {
                    tokens.append(.literal(UInt8(ascii: "'")))
                    i = j + 1
                    continue
                }
                while j < chars.count, chars[j] != "'" { j += 1 }
                guard j < chars.count else { throw fail("unterminated quote at character \(i + 1)") }
                for byte in String(chars[(i + 1)..<j]).utf8 { tokens.append(.literal(byte)) }
                i = j + 1
                continue
            }
            guard c.isASCII, c.isLetter else {
                for byte in String(c).utf8 { tokens.append(.literal(byte)) }
                i += 1
                continue
            }
            var j = i
            while j < chars.count, chars[j] == c { j += 1 }
            let count = j - i
            let symbol = String(repeating: c, count: count)
            let index = symbols.count
            symbols.append(symbol)
            let token: Token
            switch (c, count) {
            case ("y", 4): token = .number(.year4, min: 4, max: 4, symbol: index)
            case ("y", 2): token = .number(.year2, min: 2, max: 2, symbol: index)
            case ("M", 2): token = .number(.month, min: 2, max: 2, symbol: index)
            case ("M", 1): token = .number(.month, min: 1, max: 2, symbol: index)
            case ("d", 2): token = .number(.day, min: 2, max: 2, symbol: index)
            case ("d", 1): token = .number(.day, min: 1, max: 2, symbol: index)
            case ("H", 2): token = .number(.hour, min: 2, max: 2, symbol: index)
            case ("H", 1): token = .number(.hour, min: 1, max: 2, symbol: index)
            case ("m", 2): token = .number(.minute, min: 2, max: 2, symbol: index)
            case ("s", 2): token = .number(.second, min: 2, max: 2, symbol: index)
            case ("S", 1...9): token = .fraction(digits: count, greedy: false, symbol: index)
            case ("X", 1...3), ("Z", 1...3): token = .offset
            case ("T", 1): token = .literal(UInt8(ascii: "T"))
            default:
                var reason = "unsupported pattern letters '\(symbol)' at character \(i + 1)"
                switch c {
                case "h", "a", "k", "K": reason += " (use HH for a 24-hour clock)"
                case "D": reason += " (day of month is dd)"
                case "Y": reason += " (year is yyyy)"
                case "m": reason += " (minutes are mm, month is MM)"
                case "s": reason += " (seconds are ss)"
                default: reason += "; supported: yyyy yy MM M dd d HH H mm ss S…S XXX Z; quote literal letters like 'T'"
                }
                throw fail(reason)
            }
            if case .number(let field, _, _, _) = token {
                let key: Character = field == .year2 ? "y" : c
                if seen.contains(key) { throw fail("'\(c)' appears twice") }
                seen.insert(key)
            }
            tokens.append(token)
            i = j
        }
        guard seen.contains("y"), seen.contains("M"), seen.contains("d") else {
            throw fail("a pattern needs a year (yyyy or yy), a month (MM or M) and a day (dd or d)")
        }
        // A fraction reads all its digits unless a digit field follows directly.
        for (index, token) in tokens.enumerated() {
            guard case .fraction(let digits, _, let symbol) = token else { continue }
            var greedy = true
            if index + 1 < tokens.count, case .number = tokens[index + 1] { greedy = false }
            tokens[index] = .fraction(digits: digits, greedy: greedy, symbol: symbol)
        }
        // A variable-width number directly followed by another number would be ambiguous.
        for index in tokens.indices.dropLast() {
            if case .number(_, let min, let max, let symbol) = tokens[index], min != max,
               case .number = tokens[index + 1]
            {
                throw fail("'\(symbols[symbol])' has a variable width and cannot be followed directly by another number; use two letters")
            }
        }
        return tokens
    }

    // MARK: - Parsing

    /// Microseconds since 1970-01-01T00:00:00Z (UTC) of `text`.
    package func parse(_ text: Substring) throws(TimestampError) -> Int64 {
        let result: Result<Int64, TimestampError>
        let program = self.program
        if let fast = text.utf8.withContiguousStorageIfAvailable({ Self.parse(bytes: $0, text: text, program: program) }) {
            result = fast
        } else {
            let bytes = Array(text.utf8)
            result = bytes.withUnsafeBufferPointer { Self.parse(bytes: $0, text: text, program: program) }
        }
        return try result.get()
    }

    package func parse(_ text: String) throws(TimestampError) -> Int64 {
        try parse(text[...])
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>, text: Substring, program: Program) -> Result<Int64, TimestampError> {
        var start = 0, end = bytes.count
        trim(bytes, &start, &end)
        if program.stripsCharacters {
            let strip = program.strip
            while start < end, strip.contains(bytes[start]) { start += 1 }
            while end > start, strip.contains(bytes[end - 1]) { end -= 1 }
            trim(bytes, &start, &end)
        }
        var scanner = Scanner(bytes: bytes, position: start, end: end)
        let fields: Fields
        do throws(ScanFailure) {
            switch program.mode {
            case .epoch(let microsPerUnit):
                return .success(try scanner.epoch(microsPerUnit: microsPerUnit))
            case .iso8601:
                fields = try scanner.iso8601()
            case .pattern(let tokens):
                fields = try scanner.pattern(tokens, symbols: program.symbols)
            }
        } catch {
            return .failure(TimestampError(.mismatch, text: String(text), format: program.format, reason: error.reason))
        }
        if let offset = fields.offsetSeconds {
            if let problem = CivilTime.problem(
                year: fields.year, month: fields.month, day: fields.day, hour: fields.hour,
                minute: fields.minute, second: fields.second, microsecond: fields.microsecond)
            {
                return .failure(TimestampError(.mismatch, text: String(text), format: program.format, reason: problem))
            }
            let local = CivilTime.seconds(
                year: fields.year, month: fields.month, day: fields.day,
                hour: fields.hour, minute: fields.minute, second: fields.second)
            return .success((local - Int64(offset)) * CivilTime.microsPerSecond + Int64(fields.microsecond))
        }
        do throws(LocalTimeError) {
            return .success(
                try program.zone.utcMicroseconds(
                    year: fields.year, month: fields.month, day: fields.day, hour: fields.hour,
                    minute: fields.minute, second: fields.second, microsecond: fields.microsecond))
        } catch {
            let kind: TimestampError.Kind
            switch error {
            case .nonexistent: kind = .nonexistent
            case .ambiguous: kind = .ambiguous
            case .invalid, .unknownZone: kind = .mismatch
            }
            return .failure(TimestampError(kind, text: String(text), format: program.format, reason: error.reason))
        }
    }

    @inline(__always)
    private static func trim(_ bytes: UnsafeBufferPointer<UInt8>, _ start: inout Int, _ end: inout Int) {
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private struct Fields {
        var year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, microsecond = 0
        var offsetSeconds: Int?
    }

    private struct ScanFailure: Error {
        var reason: String
    }

    /// A cursor over the bytes of one timestamp.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var position: Int
        let end: Int

        private func found() -> String {
            guard position < end else { return "the end of the text" }
            var stop = position
            while stop < end, stop - position < 8 { stop += 1 }
            let piece = String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<stop]), as: UTF8.self)
            return "'\(piece)'"
        }

        private var column: Int { position + 1 }

        @inline(__always)
        private func digit(at index: Int) -> Int? {
            guard index < end else { return nil }
            let value = Int(bytes[index]) &- 48
            return (0...9).contains(value) ? value : nil
        }

        /// Reads `min...max` digits.
        @inline(__always)
        mutating func number(min: Int, max: Int, what: @autoclosure () -> String) throws(ScanFailure) -> Int {
            var value = 0, count = 0
            while count < max, let d = digit(at: position) {
                value = value * 10 + d
                position += 1
                count += 1
            }
            if count < min {
                position -= count
                let width = min == max ? "\(min) digits" : "\(min) to \(max) digits"
                throw ScanFailure(reason: "expected \(what()) (\(width)) at character \(column), found \(found())")
            }
            return value
        }

        /// Reads fraction digits and returns microseconds; digits beyond the sixth are cut off.
        mutating func fraction(min: Int, max: Int, what: @autoclosure () -> String) throws(ScanFailure) -> Int {
            var micros = 0, count = 0
            while count < max, let d = digit(at: position) {
                if count < 6 { micros = micros * 10 + d }
                position += 1
                count += 1
            }
            if count < min {
                position -= count
                throw ScanFailure(reason: "expected \(what()) (fraction of a second) at character \(column), found \(found())")
            }
            for _ in Swift.min(count, 6)..<6 { micros *= 10 }
            return micros
        }

        @inline(__always)
        mutating func literal(_ byte: UInt8) throws(ScanFailure) {
            guard position < end, bytes[position] == byte else {
                let expected = String(decoding: [byte], as: UTF8.self)
                throw ScanFailure(reason: "expected '\(expected)' at character \(column), found \(found())")
            }
            position += 1
        }

        @inline(__always)
        mutating func take(_ byte: UInt8) -> Bool {
            guard position < end, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// `Z`, `z`, `±HH`, `±HHMM`, `±HH:MM`.
        mutating func offset() throws(ScanFailure) -> Int {
            if take(UInt8(ascii: "Z")) || take(UInt8(ascii: "z")) { return 0 }
            let sign: Int
            if take(UInt8(ascii: "+")) {
                sign = 1
            } else if take(UInt8(ascii: "-")) {
                sign = -1
            } else {
                throw ScanFailure(reason: "expected an offset (Z, +01:00 or +0100) at character \(column), found \(found())")
            }
            let hours = try number(min: 2, max: 2, what: "offset hours")
            var minutes = 0
            if take(UInt8(ascii: ":")) {
                minutes = try number(min: 2, max: 2, what: "offset minutes")
            } else if digit(at: position) != nil {
                minutes = try number(min: 2, max: 2, what: "offset minutes")
            }
            guard hours <= 18, minutes <= 59 else { throw ScanFailure(reason: "offset \(hours):\(minutes) is out of range") }
            return sign * (hours * 3600 + minutes * 60)
        }

        func finish() throws(ScanFailure) {
            if position < end {
                throw ScanFailure(reason: "unexpected text \(found()) at character \(column)")
            }
        }

        mutating func pattern(_ tokens: [Token], symbols: [String]) throws(ScanFailure) -> Fields {
            var fields = Fields()
            for token in tokens {
                switch token {
                case .literal(let byte):
                    try literal(byte)
                case .number(let field, let min, let max, let symbol):
                    let value = try number(min: min, max: max, what: symbols[symbol])
                    switch field {
                    case .year4: fields.year = value
                    case .year2: fields.year = value <= 68 ? 2000 + value : 1900 + value
                    case .month: fields.month = value
                    case .day: fields.day = value
                    case .hour: fields.hour = value
                    case .minute: fields.minute = value
                    case .second: fields.second = value
                    }
                case .fraction(let digits, let greedy, let symbol):
                    fields.microsecond = try fraction(min: greedy ? 1 : digits, max: greedy ? 9 : digits, what: symbols[symbol])
                case .offset:
                    fields.offsetSeconds = try offset()
                }
            }
            try finish()
            return fields
        }

        /// RFC 3339 (`2024-03-31T01:00:00.123456789+02:00`), with a space instead of `T`,
        /// without seconds, without offset (local time), or a date alone.
        mutating func iso8601() throws(ScanFailure) -> Fields {
            var fields = Fields()
            fields.year = try number(min: 4, max: 4, what: "yyyy")
            try literal(UInt8(ascii: "-"))
            fields.month = try number(min: 2, max: 2, what: "MM")
            try literal(UInt8(ascii: "-"))
            fields.day = try number(min: 2, max: 2, what: "dd")
            if position == end { return fields }
            if !(take(UInt8(ascii: "T")) || take(UInt8(ascii: "t")) || take(UInt8(ascii: " "))) {
                throw ScanFailure(reason: "expected 'T' or the end at character \(column), found \(found())")
            }
            fields.hour = try number(min: 2, max: 2, what: "HH")
            try literal(UInt8(ascii: ":"))
            fields.minute = try number(min: 2, max: 2, what: "mm")
            if take(UInt8(ascii: ":")) {
                fields.second = try number(min: 2, max: 2, what: "ss")
                if take(UInt8(ascii: ".")) || take(UInt8(ascii: ",")) {
                    fields.microsecond = try fraction(min: 1, max: 9, what: "fraction")
                }
            }
            if position < end {
                fields.offsetSeconds = try offset()
            }
            try finish()
            return fields
        }

        /// An integer or decimal count of units since the epoch, e.g. `1711846800` or `1711846800123.5`.
        mutating func epoch(microsPerUnit: Int64) throws(ScanFailure) -> Int64 {
            let negative = take(UInt8(ascii: "-"))
            if !negative { _ = take(UInt8(ascii: "+")) }
            var whole: Int64 = 0, count = 0
            while let d = digit(at: position) {
                let (times, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(Int64(d))
                guard !o1, !o2 else { throw ScanFailure(reason: "number is too large") }
                whole = sum
                position += 1
                count += 1
            }
            guard count > 0 else { throw ScanFailure(reason: "expected digits at character \(column), found \(found())") }
            var micros = whole.multipliedReportingOverflow(by: microsPerUnit)
            guard !micros.overflow, micros.partialValue <= 253_402_300_800 * 1_000_000 else {
                throw ScanFailure(reason: "\(whole) is after the year 9999")
            }
            if take(UInt8(ascii: ".")) {
                // Fractional units down to whole microseconds, the rest is cut off.
                var scale = microsPerUnit
                while let d = digit(at: position) {
                    scale /= 10
                    micros.partialValue += Int64(d) * scale
                    position += 1
                }
            }
            try finish()
            return negative ? -micros.partialValue : micros.partialValue
        }
    }

    // MARK: - Formatting

    /// `2024-03-31T01:00:00Z`, with a `.ffffff` fraction only when it is not zero.
    package static func formatISO8601(_ micros: Int64) -> String {
        let seconds = CivilTime.floorDiv(micros, CivilTime.microsPerSecond)
        let fraction = Int(micros - seconds * CivilTime.microsPerSecond)
        let days = CivilTime.floorDiv(seconds, CivilTime.secondsPerDay)
        let date = CivilTime.date(days: days)
        let secondOfDay = Int(seconds - days * CivilTime.secondsPerDay)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(28)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(48 + value / divisor % 10))
                divisor /= 10
            }
        }
        var year = date.year
        if year < 0 {
            bytes.append(UInt8(ascii: "-"))
            year = -year
        }
        if year > 9999 { put(year / 10000, String(year / 10000).count) }
        put(year % 10000, 4)
        bytes.append(UInt8(ascii: "-"))
        put(date.month, 2)
        bytes.append(UInt8(ascii: "-"))
        put(date.day, 2)
        bytes.append(UInt8(ascii: "T"))
        put(secondOfDay / 3600, 2)
        bytes.append(UInt8(ascii: ":"))
        put(secondOfDay / 60 % 60, 2)
        bytes.append(UInt8(ascii: ":"))
        put(secondOfDay % 60, 2)
        if fraction != 0 {
            bytes.append(UInt8(ascii: "."))
            put(fraction, 6)
        }
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
