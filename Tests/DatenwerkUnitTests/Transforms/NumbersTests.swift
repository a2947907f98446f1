import Testing

@testable import DatenwerkTransforms
import DatenwerkTesting

@Suite struct NumbersTests {
    @Test(arguments: [
        ("12,5", 12.5), ("1.234,5", 1234.5), ("1.234.567,89", 1_234_567.89), ("1.234", 1234.0),
        (" -3,25 ", -3.25), ("+7", 7.0), ("0,0", 0.0), (",5", 0.5), ("1,5e3", 1500.0), ("2,5E-2", 0.025),
        ("\u{2212}4,2", -4.2), ("\u{00A0}17,1\u{00A0}", 17.1),
    ])
    func decimalComma(text: String, value: Double) {
        #expect(Numbers.parse(text[...], decimalComma: true) == value)
    }

    @Test(arguments: [
        ("12.5", 12.5), ("1,234.5", 1234.5), ("1,234,567", 1_234_567.0), ("-0.001", -0.001),
        ("  42  ", 42.0), ("6.02214076e23", 6.02214076e23), ("1e-7", 1e-7), ("5.", 5.0),
        ("0.1", 0.1), ("123456789012345678901234", 123456789012345678901234.0),
        ("3.141592653589793238", 3.141592653589793),
    ])
    func decimalPoint(text: String, value: Double) {
        #expect(Numbers.parse(text[...], decimalComma: false) == value)
    }

    @Test(arguments: [
        "", "   ", "n/a", "technische Störung", "---", "-", "+", ".", "e5", "1e", "12,5.3", "1.2.3",
        "nan", "inf", "12 5", "1,23", "12,34,567", "1e400", "0x10", "12%",
    ])
    func rejectedWithDecimalPoint(text: String) {
        #expect(Numbers.parse(text[...], decimalComma: false) == nil)
    }

    @Test func rejectedWithDecimalComma() {
        // With a decimal comma the dot groups thousands, so "12.5" has a broken group.
        #expect(Numbers.parse("12.5", decimalComma: true) == nil)
        #expect(Numbers.parse("1.2345,6", decimalComma: true) == nil)
        #expect(Numbers.parse("k.A.", decimalComma: true) == nil)
    }

    @Test func substringsOfLargerText() {
        let line = "station;12,5;n/a"
        let cells = line.split(separator: ";", omittingEmptySubsequences: false)
        #expect(Numbers.parse(cells[1], decimalComma: true) == 12.5)
        #expect(Numbers.parse(cells[2], decimalComma: true) == nil)
    }
}
