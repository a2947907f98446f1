import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

@Suite("JSONParser")
struct JSONParserTests {
    private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test("objects keep member order; arrays, literals and nesting")
    func structure() throws {
        let value = try parse(#" { "z": 1, "a": [true, false, null, {"x": []}], "m": {} } "#)
        #expect(value == .object([
            .init("z", .number(1)),
            .init("a", .array([.bool(true), .bool(false), .null, .object([.init("x", .array([]))])])),
            .init("m", .object([])),
        ]))
    }

    @Test("numbers", arguments: [
        ("0", 0.0), ("-0", -0.0), ("42", 42), ("-17", -17), ("3.25", 3.25), ("0.1", 0.1), ("-0.001", -0.001),
        ("1e3", 1000), ("2.5E-3", 0.0025), ("1.7976931348623157e308", 1.7976931348623157e308),
        ("12345678901234567890", 12345678901234567890.0), ("0.30000000000000004", 0.30000000000000004),
        ("51.33962", 51.33962), ("7.0", 7),
    ])
    func numbers(text: String, expected: Double) throws {
        #expect(try parse(text) == .number(expected))
    }

    @Test("string escapes, including surrogate pairs")
    func escapes() throws {
        #expect(try parse(#""\u00e4\ud83d\ude00""#) == .string("ä😀"))
        #expect(try parse(#""a\"b\\c\/d\n\t\r\b\f""#) == .string("a\"b\\c/d\n\t\r\u{08}\u{0C}"))
        #expect(try parse(#""Stra\u00DFe \u20AC""#) == .string("Straße €"))
        #expect(try parse(#""\ud83d x""#) == .string("\u{FFFD} x"))
        #expect(try parse("\"Grüße 😀\"") == .string("Grüße 😀"))
        #expect(try parse(#"{"k\u00e9y": "v"}"#)["kéy"] == .string("v"))
    }

    @Test("syntax errors carry the byte offset", arguments: [
        (#"{"a": 1,}"#, 8), ("[1, 2", 5), ("01", 0), (#"{"a" 1}"#, 5), ("tru", 0), (#""abc"#, 0), ("[1] x", 4),
        ("1.", 2), (#""\x""#, 1), ("", 0), ("-", 1),
    ])
    func syntaxErrors(text: String, offset: Int) throws {
        let error = try #require(throws: JSONSyntaxError.self) { try parse(text) }
        #expect(error.offset == offset, "\(error)")
    }

    @Test("nesting beyond the depth limit is an error, not a crash")
    func depthLimit() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let error = try #require(throws: JSONSyntaxError.self) { try parse(deep) }
        #expect(error.message.contains("deeper"))
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try parse(ok) != .null)
    }
}
