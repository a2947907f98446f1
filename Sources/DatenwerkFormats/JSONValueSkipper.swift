/// Walks over one JSON value byte by byte, across any chunk splits, checking its syntax exactly as
/// `JSONParser` does (same grammar, same nesting and number-length limits) while keeping only one flag per
/// open container: a value of any size is skipped in bounded memory.
///
/// `StreamingJSONDecoder` uses it for everything outside the record array, so a 20 MB `meta` member streams past.
struct JSONValueSkipper {
    private enum Mode: UInt8 {
        case value, firstValueOrClose, firstKeyOrClose, key, colon, commaOrClose
        case string, escape, unicode, literal
        // Number states, per RFC 8259: after '-', after a leading '0', in the integer digits, after '.',
        // in the fraction, after 'e', after the exponent sign, in the exponent.
        case minus, zero, integer, dot, fraction, exponentMark, exponentSign, exponent
    }

    private var mode = Mode.value
    /// One entry per open container, innermost last: true for an object.
    private var containers: [Bool] = []
    /// The string being read is a member name (a ':' follows it).
    private var inKey = false
    private var hexLeft = 0
    private var literal: StaticString = "null"
    private var literalIndex = 0
    /// Where the literal or number being read started (for messages), as an offset into the caller's buffer.
    private var tokenStart = 0
    /// The number being read (at most `JSONParser.maximumNumberLength` bytes), to check its range at its end.
    private var number: [UInt8] = []

    init() {}

    /// The caller dropped `count` bytes from the front of its buffer: offsets kept here move with it.
    mutating func shift(by count: Int) {
        tokenStart -= count
    }

    /// Advances over the value that starts at or continues from `p[i]`; true when it is complete, with `i`
    /// just after it (a number ends at the first byte that cannot continue it, which is left unread).
    mutating func advance(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int) throws(JSONSyntaxError) -> Bool {
        let end = p.count
        while i < end {
            let b = p[i]
            switch mode {
            case .string:
                var k = i
                while k < end {
                    let c = p[k]
                    if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { break }
                    k += 1
                }
                i = k
                guard k < end else { return false }
                i += 1
                if p[k] == UInt8(ascii: "\\") {
                    mode = .escape
                } else if inKey {
                    inKey = false
                    mode = .colon
                } else if valueEnded() {
                    return true
                }
            case .escape:
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    mode = .string
                case UInt8(ascii: "u"):
                    hexLeft = 4
                    mode = .unicode
                default:
                    throw JSONSyntaxError(offset: i - 1, message: "invalid escape '\\\(Character(Unicode.Scalar(b)))' in string")
                }
                i += 1
            case .unicode:
                guard isHexDigit(b) else { throw JSONSyntaxError(offset: i, message: "invalid \\u escape, expected 4 hex digits") }
                i += 1
                hexLeft -= 1
                if hexLeft == 0 { mode = .string }
            case .literal:
                guard b == literal.utf8Start[literalIndex] else {
                    throw JSONSyntaxError(offset: tokenStart, message: "invalid literal, expected '\(literal)'")
                }
                i += 1
                literalIndex += 1
                if literalIndex == literal.utf8CodeUnitCount, valueEnded() { return true }
            case .minus, .zero, .integer, .dot, .fraction, .exponentMark, .exponentSign, .exponent:
                if try continueNumber(b, at: i) {
                    i += 1
                } else if valueEnded() {
                    return true
                }
            case .value, .firstValueOrClose:
                if isJSONWhitespace(b) {
                    i += 1
                } else if b == UInt8(ascii: "]") && mode == .firstValueOrClose {
                    i += 1
                    containers.removeLast()
                    if valueEnded() { return true }
                } else {
                    try startValue(b, at: i)
                    i += 1
                }
            case .firstKeyOrClose, .key:
                if isJSONWhitespace(b) {
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inKey = true
                    mode = .string
                    i += 1
                } else if b == UInt8(ascii: "}") && mode == .firstKeyOrClose {
                    i += 1
                    containers.removeLast()
                    if valueEnded() { return true }
                } else {
                    throw unexpected(b, at: i, expected: "a member name in quotes")
                }
            case .colon:
                if isJSONWhitespace(b) {
                    i += 1
                } else if b == UInt8(ascii: ":") {
                    i += 1
                    mode = .value
                } else {
                    throw unexpected(b, at: i, expected: "':' after a member name")
                }
            case .commaOrClose:
                let inObject = containers[containers.count - 1]
                if isJSONWhitespace(b) {
                    i += 1
                } else if b == UInt8(ascii: ",") {
                    i += 1
                    mode = inObject ? .key : .value
                } else if b == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    i += 1
                    containers.removeLast()
                    if valueEnded() { return true }
                } else {
                    throw unexpected(b, at: i, expected: inObject ? "',' or '}'" : "',' or ']'")
                }
            }
        }
        return false
    }

    /// The input ended at offset `i`: true when the value is complete there (a number needs no terminator).
    mutating func endOfInput(at i: Int) throws(JSONSyntaxError) -> Bool {
        guard containers.isEmpty else { return false }
        switch mode {
        case .zero, .integer, .fraction, .exponent:
            try checkRange()
            return true
        case .minus, .dot, .exponentMark, .exponentSign:
            _ = try continueNumber(0x20, at: i)  // throws the message for the missing digit
            return false
        default:
            return false
        }
    }

    private mutating func valueEnded() -> Bool {
        if containers.isEmpty { return true }
        mode = .commaOrClose
        return false
    }

    private mutating func startValue(_ b: UInt8, at i: Int) throws(JSONSyntaxError) {
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if containers.count >= JSONParser.maximumDepth {
                throw JSONSyntaxError(offset: i, message: "JSON nested deeper than \(JSONParser.maximumDepth) levels")
            }
            containers.append(b == UInt8(ascii: "{"))
            mode = b == UInt8(ascii: "{") ? .firstKeyOrClose : .firstValueOrClose
        case UInt8(ascii: "\""):
            inKey = false
            mode = .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            literal = b == UInt8(ascii: "t") ? "true" : b == UInt8(ascii: "f") ? "false" : "null"
            literalIndex = 1
            tokenStart = i
            mode = .literal
        case UInt8(ascii: "-"):
            tokenStart = i
            number.removeAll(keepingCapacity: true)
            number.append(b)
            mode = .minus
        case UInt8(ascii: "0"):
            tokenStart = i
            number.removeAll(keepingCapacity: true)
            number.append(b)
            mode = .zero
        case UInt8(ascii: "1")...UInt8(ascii: "9"):
            tokenStart = i
            number.removeAll(keepingCapacity: true)
            number.append(b)
            mode = .integer
        default:
            throw unexpected(b, at: i, expected: "a value")
        }
    }

    /// True when `b` continues the number being read; false when the number is complete before it.
    private mutating func continueNumber(_ b: UInt8, at i: Int) throws(JSONSyntaxError) -> Bool {
        let digit = b &- UInt8(ascii: "0") < 10
        let next: Mode?
        switch mode {
        case .minus:
            guard digit else { throw JSONSyntaxError(offset: i, message: "invalid number, expected a digit") }
            next = b == UInt8(ascii: "0") ? .zero : .integer
        case .zero:
            if digit { throw JSONSyntaxError(offset: tokenStart, message: "invalid number, leading zero") }
            next = b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E")) ? .exponentMark : nil
        case .integer:
            next = digit ? .integer : b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E")) ? .exponentMark : nil
        case .dot:
            guard digit else { throw JSONSyntaxError(offset: i, message: "invalid number, expected a digit after '.'") }
            next = .fraction
        case .fraction:
            next = digit ? .fraction : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E")) ? .exponentMark : nil
        case .exponentMark:
            if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
                next = .exponentSign
            } else {
                guard digit else { throw JSONSyntaxError(offset: i, message: "invalid number, expected a digit in the exponent") }
                next = .exponent
            }
        case .exponentSign:
            guard digit else { throw JSONSyntaxError(offset: i, message: "invalid number, expected a digit in the exponent") }
            next = .exponent
        case .exponent:
            next = digit ? .exponent : nil
        default:
            next = nil
        }
        guard let next else {
            try checkRange()
            return false
        }
        number.append(b)
        if number.count > JSONParser.maximumNumberLength {
            throw JSONSyntaxError(offset: tokenStart, message: "number longer than \(JSONParser.maximumNumberLength) characters")
        }
        mode = next
        return true
    }

    /// As `JSONParser`: only exponents can take a number beyond a double, and those go through `Double(String)`.
    private func checkRange() throws(JSONSyntaxError) {
        guard mode == .exponent || number.count > 15 else { return }
        if let value = Double(String(decoding: number, as: UTF8.self)), value.isFinite { return }
        throw JSONSyntaxError(offset: tokenStart, message: "number out of range")
    }

    private func unexpected(_ b: UInt8, at i: Int, expected: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: i, message: "unexpected \(describeByte(b)), expected \(expected)")
    }
}

@inline(__always) func isHexDigit(_ b: UInt8) -> Bool {
    b &- UInt8(ascii: "0") < 10 || (b | 0x20) &- UInt8(ascii: "a") < 6
}
