import DatenwerkTransforms

/// Small allocation-free writers into `[UInt8]` for the streamed downloads: UTC timestamps,
/// numbers, JSON strings and CSV fields. No Foundation formatters.
package enum ByteWriting {
    // MARK: Text

    @inlinable
    package static func append(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    @inlinable
    package static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    /// Bytes already encoded (a station's or property's parts of a row), copied through their buffer: appending
    /// an array as a sequence retained and released it for every row of a download.
    @inlinable
    package static func append(bytes: [UInt8], to out: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { out.append(contentsOf: $0) }
    }

    // MARK: Numbers

    /// Decimal digits of an integer.
    package static func append(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            appendDigits(value.magnitude, to: &out)
        } else {
            appendDigits(UInt64(value), to: &out)
        }
    }

    static func appendDigits(_ value: UInt64, minimumWidth: Int = 1, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
                count += 1
            } while v > 0
            while count < minimumWidth && count < 20 {
                buffer[19 - count] = 48
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// The shortest text that reads back as the same `Double` (`17.4`, `71`, `1e-05`), with `.` as
    /// decimal separator; whole numbers below 10^16 have no fraction. Callers handle non-finite values.
    package static func append(_ value: Double, to out: inout [UInt8]) {
        if value.rounded(.towardZero) == value, value.magnitude < 1e16 {
            append(Int64(value), to: &out)
        } else if !appendShortDecimal(value, to: &out) {
            append(value.description, to: &out)
        }
    }

    /// The same text as `value.description` for a value of at most 15 significant digits with
    /// 10⁻⁴ ≤ |value| < 10¹⁵ (its decimal form, which `description` uses there), without a `String`;
    /// false (nothing written) for every other value.
    ///
    /// It tries k = 1, 2, … decimals: m = round(|value|·10^k) and accepts the first k where m / 10^k (both exact,
    /// so the division is correctly rounded, as reading the text "m·10^-k" is) gives `value` back. While
    /// m < 10¹⁵ the k-decimal numbers lie more than four ulps apart, so at most one of them reads back as `value`
    /// and the rounded product finds it; the smallest such k is the shortest round-trip text, which is what
    /// `description` prints (no trailing zeros: a zero last digit would have passed at k − 1).
    @inline(__always)
    static func appendShortDecimal(_ value: Double, to out: inout [UInt8]) -> Bool {
        guard let (digits, k) = shortDecimal(value) else { return false }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let unit = powersOfTen[k]
        appendDigits(digits / unit, to: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(digits % unit, minimumWidth: k, to: &out)
        return true
    }

    /// The search of `appendShortDecimal` on its own, for writers of other buffers (the loader's COPY rows):
    /// |value| = digits / 10^decimals with 1 ≤ decimals ≤ 18, the fewest decimals that read back as `value`;
    /// nil where `description` would not print a plain decimal of at most 15 significant digits.
    @inline(__always)
    package static func shortDecimal(_ value: Double) -> (digits: UInt64, decimals: Int)? {
        let magnitude = value.magnitude
        guard magnitude >= 1e-4, magnitude < 1e15 else { return nil }
        var scale = 1.0
        var k = 0
        while k < 19 {
            scale *= 10
            k += 1
            let scaled = magnitude * scale
            guard scaled < 1e15 else { return nil }
            let m = scaled.rounded()
            if m / scale == magnitude { return (UInt64(m), k) }
        }
        return nil
    }

    package static let powersOfTen: [UInt64] = (0...19).map { k in (0..<k).reduce(UInt64(1)) { p, _ in p * 10 } }

    /// `append(_:to:)` as a `String` (tests, HTML, RDF literals).
    package static func format(_ value: Double) -> String {
        var out: [UInt8] = []
        append(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Time

    /// `YYYY-MM-DDTHH:MM:SSZ` in UTC for microseconds since 1970, with `.fff` or `.ffffff` only when the
    /// time has a fraction. Years outside 0000…9999 get a sign (ISO 8601 expanded form).
    package static func appendTimestamp(micros: Int64, to out: inout [UInt8]) {
        let (seconds, fraction) = floorDivide(micros, 1_000_000)
        let (_, secondOfDay) = floorDivide(seconds, 86_400)
        appendDate(micros: micros, to: &out)
        out.append(UInt8(ascii: "T"))
        appendDigits(UInt64(secondOfDay / 3600), minimumWidth: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay % 3600 / 60), minimumWidth: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay % 60), minimumWidth: 2, to: &out)
        if fraction != 0 {
            out.append(UInt8(ascii: "."))
            if fraction % 1000 == 0 {
                appendDigits(UInt64(fraction / 1000), minimumWidth: 3, to: &out)
            } else {
                appendDigits(UInt64(fraction), minimumWidth: 6, to: &out)
            }
        }
        out.append(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DD` (UTC) of microseconds since 1970.
    package static func appendDate(micros: Int64, to out: inout [UInt8]) {
        let (seconds, _) = floorDivide(micros, 1_000_000)
        let (days, _) = floorDivide(seconds, 86_400)
        let (year, month, day) = CivilTime.date(days: days)
        appendYear(Int64(year), to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(UInt64(month), minimumWidth: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(UInt64(day), minimumWidth: 2, to: &out)
    }

    /// `appendTimestamp` as a `String`.
    package static func timestamp(micros: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(27)
        appendTimestamp(micros: micros, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `appendDate` as a `String`.
    package static func date(micros: Int64) -> String {
        var out: [UInt8] = []
        appendDate(micros: micros, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendYear(_ year: Int64, to out: inout [UInt8]) {
        if year < 0 {
            out.append(UInt8(ascii: "-"))
            appendDigits(year.magnitude, minimumWidth: 4, to: &out)
        } else if year > 9999 {
            out.append(UInt8(ascii: "+"))
            appendDigits(UInt64(year), minimumWidth: 4, to: &out)
        } else {
            appendDigits(UInt64(year), minimumWidth: 4, to: &out)
        }
    }

    /// Quotient rounded toward minus infinity and a remainder in `0..<divisor`.
    @inline(__always)
    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let q = value / divisor
        let r = value % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }


    // MARK: JSON

    /// A JSON string literal: `"`, `\` and control characters escaped, everything else as UTF-8.
    package static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        appendJSONStringContents(text, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// The inside of a JSON string literal (no quotes around it).
    package static func appendJSONStringContents(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                if start < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i])) }
                start = i + 1
                switch b {
                case UInt8(ascii: "\""): append("\\\"", to: &out)
                case UInt8(ascii: "\\"): append("\\\\", to: &out)
                case 0x0A: append("\\n", to: &out)
                case 0x0D: append("\\r", to: &out)
                case 0x09: append("\\t", to: &out)
                default:
                    append("\\u00", to: &out)
                    out.append(hexDigit(b >> 4))
                    out.append(hexDigit(b & 0xF))
                }
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
    }

    /// A JSON number, or `null` for NaN and infinities (which JSON cannot express).
    package static func appendJSONNumber(_ value: Double, to out: inout [UInt8]) {
        if value.isFinite { append(value, to: &out) } else { append("null", to: &out) }
    }

    @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    // MARK: CSV

    /// An RFC 4180 field: quoted (with doubled quotes) only when it holds `,`, `"`, CR or LF.
    ///
    /// A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula by
    /// spreadsheet programs (CSV injection): it is written quoted with a leading `'`, as OWASP recommends and
    /// spreadsheets display it (as text). Only text cells come here; numbers are written as numbers.
    package static func appendCSVField(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            let formula = bytes.first.map { [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D].contains($0) } ?? false
            var needsQuotes = formula
            for b in bytes where b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") || b == 0x0A || b == 0x0D {
                needsQuotes = true
                break
            }
            guard needsQuotes else {
                out.append(contentsOf: bytes)
                return
            }
            out.append(UInt8(ascii: "\""))
            if formula { out.append(UInt8(ascii: "'")) }
            for b in bytes {
                if b == UInt8(ascii: "\"") { out.append(b) }
                out.append(b)
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}
