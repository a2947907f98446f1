import DatenwerkCore

/// A syntax error in a JSON text, at a byte offset from the start of the parsed bytes.
package struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    package var offset: Int
    package var message: String

    package init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    package var description: String { "\(message) at byte \(offset)" }
}

/// A small full-document JSON parser over bytes (RFC 8259), keeping object members in source order.
///
/// Lenient in two places only: invalid UTF-8 and lone surrogate escapes become U+FFFD.
package enum JSONParser {
    /// Nesting deeper than this is refused instead of risking the stack.
    package static let maximumDepth = 512
    /// A number written with more characters than this is refused (no double needs more than ~770 digits).
    package static let maximumNumberLength = 1024

    /// Parses one complete JSON text; anything but whitespace after the value is an error.
    package static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        if let value = try bytes.withContiguousStorageIfAvailable({ try parse(buffer: $0) }) { return value }
        return try Array(bytes).withUnsafeBufferPointer { try parse(buffer: $0) }
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var reader = JSONReader(buffer)
        reader.skipWhitespace()
        let value = try reader.value()
        reader.skipWhitespace()
        if reader.i < buffer.count {
            throw JSONSyntaxError(offset: reader.i, message: "unexpected \(describeByte(buffer[reader.i])) after the JSON value")
        }
        return value
    }

    /// Decodes the string whose opening quote is at `buffer[0]` (used for object keys seen by the streaming scanner).
    static func parseString(buffer: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> String {
        var reader = JSONReader(buffer)
        return try reader.string()
    }
}

private struct JSONReader {
    let p: UnsafeBufferPointer<UInt8>
    let n: Int
    var i = 0
    var depth = 0

    init(_ p: UnsafeBufferPointer<UInt8>) {
        self.p = p
        n = p.count
    }

    private func fail(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? i, message: message)
    }

    private func unexpected(_ expected: String) -> JSONSyntaxError {
        if i >= n { return fail("unexpected end of JSON, expected \(expected)") }
        return fail("unexpected \(describeByte(p[i])), expected \(expected)")
    }

    @inline(__always) mutating func skipWhitespace() {
        while i < n && isJSONWhitespace(p[i]) { i += 1 }
    }

    mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard i < n else { throw unexpected("a value") }
        switch p[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw unexpected("a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        let start = i
        guard n - i >= count else { throw fail("unexpected end of JSON in literal", at: start) }
        let w = word.utf8Start
        for k in 0..<count where p[i + k] != w[k] {
            throw fail("invalid literal, expected '\(word)'", at: start)
        }
        i += count
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > JSONParser.maximumDepth { throw fail("JSON nested deeper than \(JSONParser.maximumDepth) levels") }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1
        var members: [JSONValue.Member] = []
        skipWhitespace()
        if i < n && p[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        while true {
            guard i < n && p[i] == UInt8(ascii: "\"") else { throw unexpected("a member name in quotes") }
            let key = try string()
            skipWhitespace()
            guard i < n && p[i] == UInt8(ascii: ":") else { throw unexpected("':' after a member name") }
            i += 1
            skipWhitespace()
            let value = try value()
            members.append(JSONValue.Member(key, value))
            skipWhitespace()
            guard i < n else { throw unexpected("',' or '}'") }
            if p[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
            } else if p[i] == UInt8(ascii: "}") {
                i += 1
                depth -= 1
                return .object(members)
            } else {
                throw unexpected("',' or '}'")
            }
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if i < n && p[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            items.append(try value())
            skipWhitespace()
            guard i < n else { throw unexpected("',' or ']'") }
            if p[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
            } else if p[i] == UInt8(ascii: "]") {
                i += 1
                depth -= 1
                return .array(items)
            } else {
                throw unexpected("',' or ']'")
            }
        }
    }

    /// A string starting at the opening quote at `i`.
    mutating func string() throws(JSONSyntaxError) -> String {
        let open = i
        i += 1
        let start = i
        while i < n {
            let b = p[i]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            i += 1
        }
        guard i < n else { throw fail("unterminated string", at: open) }
        // Escapes: collect UTF-8 bytes.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(i - start + 16)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        while i < n {
            let b = p[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            if b != UInt8(ascii: "\\") {
                bytes.append(b)
                i += 1
                continue
            }
            guard i + 1 < n else { break }
            let escape = p[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if i + 1 < n && p[i] == UInt8(ascii: "\\") && p[i + 1] == UInt8(ascii: "u") {
                        let save = i
                        i += 2
                        let low = try hex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            scalar = 0xFFFD
                            i = save
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    scalar = 0xFFFD
                }
                appendUTF8(scalar, to: &bytes)
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in string", at: i - 2)
            }
        }
        throw fail("unterminated string", at: open)
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard n - i >= 4 else { throw fail("unterminated \\u escape") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i + k]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape, expected 4 hex digits", at: i + k)
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }

    private static let exactPowersOfTen: [Double] = (0...22).map { k in
        var v = 1.0
        for _ in 0..<k { v *= 10 }
        return v
    }

    /// A number per the JSON grammar; short decimals are computed exactly, the rest goes through `Double(Substring)`.
    private mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        @inline(__always) func isDigit(_ k: Int) -> Bool { k < n && p[k] &- UInt8(ascii: "0") < 10 }
        guard isDigit(i) else { throw fail("invalid number, expected a digit", at: i) }
        var mantissa: UInt64 = 0
        var digits = 0
        if p[i] == UInt8(ascii: "0") {
            i += 1
            if isDigit(i) { throw fail("invalid number, leading zero", at: start) }
        } else {
            while isDigit(i) {
                mantissa = mantissa &* 10 &+ UInt64(p[i] - UInt8(ascii: "0"))
                digits += 1
                i += 1
            }
        }
        var fractionDigits = 0
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw fail("invalid number, expected a digit after '.'", at: i) }
            while isDigit(i) {
                mantissa = mantissa &* 10 &+ UInt64(p[i] - UInt8(ascii: "0"))
                if mantissa != 0 { digits += 1 }
                fractionDigits += 1
                i += 1
            }
        }
        var hasExponent = false
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            hasExponent = true
            i += 1
            if i < n && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { throw fail("invalid number, expected a digit in the exponent", at: i) }
            while isDigit(i) { i += 1 }
        }
        if i - start > JSONParser.maximumNumberLength {
            throw fail("number longer than \(JSONParser.maximumNumberLength) characters", at: start)
        }
        if !hasExponent && digits <= 15 && fractionDigits <= 22 {
            // Both operands are exact doubles, so one IEEE division rounds correctly.
            var value = Double(mantissa)
            if fractionDigits > 0 { value /= JSONReader.exactPowersOfTen[fractionDigits] }
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
        // JSON has no infinity: a number beyond the range of a double (1e400) is refused rather than stored as inf.
        guard let value = Double(text), value.isFinite else { throw fail("number out of range", at: start) }
        return value
    }
}
