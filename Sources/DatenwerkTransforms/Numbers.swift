/// Reads numbers as open-data files write them: `12,5`, `1.234,5`, `1,234.5`, ` -3e-2 `.
///
/// Strict about grouping (groups of three after the first) so `12,5` is never read as
/// 125 and text such as `n/a`, `---` or `technische Störung` is rejected instead of guessed.
/// Hand-written byte scanning; no `NumberFormatter`.
package enum Numbers {
    /// The number in `text`, or nil when it is not one. With `decimalComma` the decimal
    /// separator is `,` and `.` groups thousands; without, it is the other way round.
    package static func parse(_ text: Substring, decimalComma: Bool) -> Double? {
        if let value = text.utf8.withContiguousStorageIfAvailable({ parse(bytes: $0, decimalComma: decimalComma) }) {
            return value
        }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { parse(bytes: $0, decimalComma: decimalComma) }
    }

    package static func parse(_ text: String, decimalComma: Bool) -> Double? {
        parse(text[...], decimalComma: decimalComma)
    }

    /// Exact powers of ten; products and quotients with them are correctly rounded (Clinger's fast path).
    private static let exactPowers: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    private static func parse(bytes: UnsafeBufferPointer<UInt8>, decimalComma: Bool) -> Double? {
        var i = 0, end = bytes.count
        // Trim ASCII white space and no-break spaces (C2 A0).
        while true {
            if i < end, isSpace(bytes[i]) { i += 1; continue }
            if i + 1 < end, bytes[i] == 0xC2, bytes[i + 1] == 0xA0 { i += 2; continue }
            break
        }
        while true {
            if end > i, isSpace(bytes[end - 1]) { end -= 1; continue }
            if end - 1 > i, bytes[end - 2] == 0xC2, bytes[end - 1] == 0xA0 { end -= 2; continue }
            break
        }
        guard i < end else { return nil }

        var negative = false
        if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        } else if i + 2 < end, bytes[i] == 0xE2, bytes[i + 1] == 0x88, bytes[i + 2] == 0x92 {
            negative = true   // U+2212 MINUS SIGN
            i += 3
        }

        let group = decimalComma ? UInt8(ascii: ".") : UInt8(ascii: ",")
        let decimal = decimalComma ? UInt8(ascii: ",") : UInt8(ascii: ".")

        var mantissa: UInt64 = 0
        var significant = 0         // digits kept in `mantissa` (leading zeros excluded)
        var dropped = false         // digits beyond 19 that did not fit
        var exponent = 0            // decimal exponent applied to `mantissa`
        var digits = 0

        // Integer part with optional grouping.
        var inGroup = 0
        var grouped = false
        while i < end {
            let byte = bytes[i]
            if byte &- 48 < 10 {
                accumulate(byte, &mantissa, &significant, &dropped, &exponent, fraction: false)
                digits += 1
                inGroup += 1
            } else if byte == group {
                if grouped ? inGroup != 3 : !(1...3).contains(inGroup) { return nil }
                grouped = true
                inGroup = 0
            } else {
                break
            }
            i += 1
        }
        if grouped, inGroup != 3 { return nil }

        // Fraction.
        if i < end, bytes[i] == decimal {
            i += 1
            while i < end, bytes[i] &- 48 < 10 {
                accumulate(bytes[i], &mantissa, &significant, &dropped, &exponent, fraction: true)
                digits += 1
                i += 1
            }
        }
        guard digits > 0 else { return nil }

        // Exponent.
        if i < end, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            var negativeExponent = false
            if i < end, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
                negativeExponent = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            var value = 0, count = 0
            while i < end, bytes[i] &- 48 < 10 {
                if value < 100_000 { value = value * 10 + Int(bytes[i] &- 48) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            exponent += negativeExponent ? -value : value
        }
        guard i == end else { return nil }

        let magnitude: Double
        if mantissa == 0 {
            magnitude = 0
        } else if !dropped, mantissa < (1 << 53), (-22...22).contains(exponent) {
            let m = Double(mantissa)
            magnitude = exponent < 0 ? m / exactPowers[-exponent] : m * exactPowers[exponent]
        } else {
            // Rare: very long or very large numbers; let the standard library round them.
            guard let value = Double("\(mantissa)e\(exponent)"), value.isFinite else { return nil }
            magnitude = value
        }
        return negative ? -magnitude : magnitude
    }

    @inline(__always)
    private static func accumulate(
        _ byte: UInt8, _ mantissa: inout UInt64, _ significant: inout Int, _ dropped: inout Bool,
        _ exponent: inout Int, fraction: Bool
    ) {
        let digit = UInt64(byte &- 48)
        if significant < 19 {
            if mantissa != 0 || digit != 0 {
                mantissa = mantissa * 10 + digit
                significant += 1
            }
            if fraction { exponent -= 1 }
        } else {
            // Beyond 19 significant digits: keep the magnitude, lose the digit.
            if digit != 0 { dropped = true }
            if !fraction { exponent += 1 }
        }
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
