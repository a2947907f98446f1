import Testing

@testable import DatenwerkTransforms
import DatenwerkTesting

@Suite struct TimestampParserTests {
    let berlin = try! LocalTimeResolver(zone: "Europe/Berlin")

    private func parse(_ text: String, _ format: String, zone: LocalTimeResolver? = nil, strip: String = "") throws -> Int64 {
        try TimestampParser(format: format, zone: zone, stripCharacters: strip).parse(text[...])
    }

    @Test func germanPatterns() throws {
        #expect(try parse("06.05.2024 10:00", "dd.MM.yyyy HH:mm", zone: berlin) == 1_714_982_400_000_000)
        #expect(try parse("  06.05.2024 10:00 ", "dd.MM.yyyy HH:mm", zone: berlin) == 1_714_982_400_000_000)
        #expect(try parse("2024-07-15 12:00:00.123", "yyyy-MM-dd HH:mm:ss.SSS", zone: berlin) == 1_721_037_600_123_000)
        #expect(try parse("2024-07-15 12:00:00.123456", "yyyy-MM-dd HH:mm:ss.SSSSSS", zone: berlin) == 1_721_037_600_123_456)
    }

    @Test func twoDigitYears() throws {
        #expect(try parse("07.03.99", "dd.MM.yy") == 920_764_800_000_000)
        #expect(try parse("31.12.68", "dd.MM.yy") == 3_124_137_600_000_000)
        #expect(try parse("01.01.69", "dd.MM.yy") == -31_536_000_000_000)
        #expect(try parse("15.07.24", "dd.MM.yy", zone: berlin) == 1_720_994_400_000_000)
    }

    @Test func compactAndAmericanPatterns() throws {
        #expect(try parse("2024070112", "yyyyMMddHH", zone: berlin) == 1_719_828_000_000_000)
        #expect(try parse("3/5/2024 13:07", "M/d/yyyy H:mm") == 1_709_644_020_000_000)
        #expect(try parse("03/05/2024 13:07", "M/d/yyyy H:mm") == 1_709_644_020_000_000)
        #expect(try parse("2024-07-15T12:00", "yyyy-MM-ddTHH:mm", zone: berlin) == 1_721_037_600_000_000)
        #expect(try parse("15.07.2024 um 12:00 Uhr", "dd.MM.yyyy 'um' HH:mm 'Uhr'", zone: berlin) == 1_721_037_600_000_000)
    }

    @Test func hour24AsUBAWritesIt() throws {
        #expect(try parse("31.12.2024 24:00", "dd.MM.yyyy HH:mm", zone: berlin) == 1_735_686_000_000_000)
        #expect(try parse("2024-06-30 24:00:00", "yyyy-MM-dd HH:mm:ss", zone: berlin) == 1_719_784_800_000_000)
        let error = #expect(throws: TimestampError.self) { try parse("30.06.2024 24:30", "dd.MM.yyyy HH:mm", zone: berlin) }
        #expect(error?.description == "'30.06.2024 24:30' does not match 'dd.MM.yyyy HH:mm': hour 24 is only allowed as 24:00")
    }

    @Test func wrappingQuotesAreStripped() throws {
        #expect(try parse("'2024-07-15 12:00'", "yyyy-MM-dd HH:mm", zone: berlin, strip: "'") == 1_721_037_600_000_000)
        #expect(try parse(" \"15.07.2024 12:00\" ", "dd.MM.yyyy HH:mm", zone: berlin, strip: "\"'") == 1_721_037_600_000_000)
        #expect(throws: TimestampError.self) { try parse("'2024-07-15 12:00'", "yyyy-MM-dd HH:mm", zone: berlin) }
    }

    @Test func explicitOffsetsWinOverTheZone() throws {
        #expect(try parse("2024-07-15T12:00:00+02:00", "yyyy-MM-dd'T'HH:mm:ssXXX", zone: berlin) == 1_721_037_600_000_000)
        #expect(try parse("15.07.2024 12:00 +0200", "dd.MM.yyyy HH:mm Z", zone: berlin) == 1_721_037_600_000_000)
        #expect(try parse("15.07.2024 10:00 Z", "dd.MM.yyyy HH:mm Z", zone: berlin) == 1_721_037_600_000_000)
        #expect(try parse("15.07.2024 05:00 -05:00", "dd.MM.yyyy HH:mm XXX") == 1_721_037_600_000_000)
    }

    @Test func iso8601() throws {
        let iso = try TimestampParser(format: "iso8601", zone: berlin)
        #expect(try iso.parse("2024-03-31T01:00:00Z") == 1_711_846_800_000_000)
        #expect(try iso.parse("2024-03-31T01:00:00.123456789Z") == 1_711_846_800_123_456)
        #expect(try iso.parse("2024-03-31T03:00:00.5+02:00") == 1_711_846_800_500_000)
        #expect(try iso.parse("2024-03-31T02:00:00+0100") == 1_711_846_800_000_000)
        #expect(try iso.parse("2024-03-30T20:00:00-05:00") == 1_711_846_800_000_000)
        #expect(try iso.parse("2024-07-15 12:15:30Z") == 1_721_045_730_000_000)
        #expect(try iso.parse("2024-07-15T10:00Z") == 1_721_037_600_000_000)
        // Without an offset: local time in the zone; a date alone is local midnight.
        #expect(try iso.parse("2024-07-15T12:00:00") == 1_721_037_600_000_000)
        #expect(try iso.parse("2024-07-15") == 1_720_994_400_000_000)
        #expect(try TimestampParser(format: "iso8601", zone: nil).parse("2024-07-15T10:00:00") == 1_721_037_600_000_000)
        // Month 13 and Feb 30 even with an offset.
        let month = #expect(throws: TimestampError.self) { try iso.parse("2024-13-01T00:00:00Z") }
        #expect(month?.description == "'2024-13-01T00:00:00Z' does not match 'iso8601': month 13")
        let february = #expect(throws: TimestampError.self) { try iso.parse("2024-02-30") }
        #expect(february?.reason == "day 30 (February 2024 has 29 days)")
        let garbage = #expect(throws: TimestampError.self) { try iso.parse("2024-07-15X12:00") }
        #expect(garbage?.description == "'2024-07-15X12:00' does not match 'iso8601': expected 'T' or the end at character 11, found 'X12:00'")
    }

    @Test func epochs() throws {
        #expect(try parse("1711846800", "epoch_s") == 1_711_846_800_000_000)
        #expect(try parse("1711846800.25", "epoch_s") == 1_711_846_800_250_000)
        #expect(try parse("-3600", "epoch_s") == -3_600_000_000)
        #expect(try parse("1711846800123", "epoch_ms") == 1_711_846_800_123_000)
        #expect(try parse(" 1711846800123.456 ", "epoch_ms") == 1_711_846_800_123_456)
        #expect(try parse("1711846800123456", "epoch_us") == 1_711_846_800_123_456)
        let error = #expect(throws: TimestampError.self) { try parse("17118e6", "epoch_ms") }
        #expect(error?.description == "'17118e6' does not match 'epoch_ms': unexpected text 'e6' at character 6")
        #expect(throws: TimestampError.self) { try parse("", "epoch_s") }
        #expect(throws: TimestampError.self) { try parse("99999999999999999999", "epoch_s") }
    }

    @Test func mismatchesSayWhat() {
        let month = #expect(throws: TimestampError.self) { try parse("31.13.2024 10:00", "dd.MM.yyyy HH:mm", zone: berlin) }
        #expect(month?.description == "'31.13.2024 10:00' does not match 'dd.MM.yyyy HH:mm': month 13")
        #expect(month?.kind == .mismatch)

        let separator = #expect(throws: TimestampError.self) { try parse("2024-07-15", "dd.MM.yyyy", zone: berlin) }
        #expect(separator?.description == "'2024-07-15' does not match 'dd.MM.yyyy': expected '.' at character 3, found '24-07-15'")

        let digits = #expect(throws: TimestampError.self) { try parse("15.7.2024", "dd.MM.yyyy", zone: berlin) }
        #expect(digits?.reason == "expected MM (2 digits) at character 4, found '7.2024'")

        let trailing = #expect(throws: TimestampError.self) { try parse("15.07.2024 12:00 Uhr", "dd.MM.yyyy HH:mm", zone: berlin) }
        #expect(trailing?.reason == "unexpected text ' Uhr' at character 17")

        let short = #expect(throws: TimestampError.self) { try parse("15.07.2024 12", "dd.MM.yyyy HH:mm", zone: berlin) }
        #expect(short?.reason == "expected ':' at character 14, found the end of the text")

        let empty = #expect(throws: TimestampError.self) { try parse("   ", "dd.MM.yyyy", zone: berlin) }
        #expect(empty?.reason == "expected dd (2 digits) at character 4, found the end of the text")
    }

    @Test func localTimeProblemsComeFromTheZone() throws {
        let gap = #expect(throws: TimestampError.self) { try parse("31.03.2024 02:30", "dd.MM.yyyy HH:mm", zone: berlin) }
        #expect(gap?.kind == .nonexistent)
        #expect(gap?.description == "'31.03.2024 02:30': 2024-03-31 02:30 does not exist in Europe/Berlin (clocks skip from 02:00 to 03:00)")

        let reject = berlin.with(ambiguity: .reject)
        let overlap = #expect(throws: TimestampError.self) { try parse("27.10.2024 02:30", "dd.MM.yyyy HH:mm", zone: reject) }
        #expect(overlap?.kind == .ambiguous)
        #expect(try parse("27.10.2024 02:30", "dd.MM.yyyy HH:mm", zone: berlin) == 1_729_989_000_000_000)
        #expect(try parse("27.10.2024 02:30", "dd.MM.yyyy HH:mm", zone: berlin.with(ambiguity: .second)) == 1_729_992_600_000_000)
    }

    @Test func invalidFormatsAreRejectedUpFront() {
        let twelveHour = #expect(throws: TimestampError.self) { try TimestampParser(format: "dd.MM.yyyy hh:mm", zone: nil) }
        #expect(twelveHour?.kind == .invalidFormat)
        #expect(twelveHour?.description == "invalid timestamp format 'dd.MM.yyyy hh:mm': unsupported pattern letters 'hh' at character 12 (use HH for a 24-hour clock)")
        let noDate = #expect(throws: TimestampError.self) { try TimestampParser(format: "HH:mm", zone: nil) }
        #expect(noDate?.reason == "a pattern needs a year (yyyy or yy), a month (MM or M) and a day (dd or d)")
        #expect(throws: TimestampError.self) { try TimestampParser(format: "yyyy-MM-dd 'T HH", zone: nil) }
        #expect(throws: TimestampError.self) { try TimestampParser(format: "yyyyMdd", zone: nil) }
        #expect(throws: TimestampError.self) { try TimestampParser(format: "EEE, dd MM yyyy", zone: nil) }
    }

    @Test func formatsISO8601() {
        #expect(TimestampParser.formatISO8601(0) == "1970-01-01T00:00:00Z")
        #expect(TimestampParser.formatISO8601(1_711_846_800_000_000) == "2024-03-31T01:00:00Z")
        #expect(TimestampParser.formatISO8601(1_711_846_800_123_456) == "2024-03-31T01:00:00.123456Z")
        #expect(TimestampParser.formatISO8601(1_711_846_800_500_000) == "2024-03-31T01:00:00.500000Z")
        #expect(TimestampParser.formatISO8601(-1) == "1969-12-31T23:59:59.999999Z")
        #expect(TimestampParser.formatISO8601(951_827_696_789_012) == "2000-02-29T12:34:56.789012Z")
    }

    @Test func formatAndParseRoundTrip() throws {
        let iso = try TimestampParser(format: "iso8601", zone: nil)
        for micros: Int64 in [0, -1, 1_711_846_800_123_456, 4_102_444_799_999_999, -2_208_988_800_000_000] {
            #expect(try iso.parse(TimestampParser.formatISO8601(micros)[...]) == micros)
        }
    }
}
