import DatenwerkCore
@testable import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import Testing
import DatenwerkTesting

/// The mapper's byte-level trim and `missing:` check give what Foundation's `trimmingCharacters(in: .whitespaces)` and
/// `Set<String>.contains` gave: Unicode white space (NBSP, U+3000, tabs), canonical equivalence, station ids as written.
@Suite("ObservationMapper") struct ObservationMapperTests {
    func run(_ csv: String, missing: String) async throws -> (RecordingSink, RunReport) {
        let dir = try Paths.temporaryDirectory()
        try Data(csv.utf8).write(to: URL(fileURLWithPath: dir + "/in.csv"))
        let s = try spec("""
            version: 1
            name: ws
            tenant: "05515000"
            source: { kind: file, path: in.csv, format: { kind: csv, delimiter: ";" } }
            observations:
              station: { id: Station }
              time: { field: Zeit, format: "yyyy-MM-dd HH:mm", timezone: Europe/Berlin }
              decimal: comma
              missing: \(missing)
              values:
                - { field: T, property: air_temperature, unit: Cel }
                - { field: P, property: air_pressure, unit: hPa }
            """, in: dir)
        return try await dryRun(s)
    }

    @Test func stationIDsAreTrimmedOfUnicodeWhiteSpace() async throws {
        let csv = "Station;Zeit;T;P\n"
            + " S1\u{A0};2024-01-15 12:00;1,5;1000\n"
            + "\tS1\u{3000};2024-01-15 13:00;2,5;1001\n"
            + "S1;2024-01-15 14:00;3,5;1002\n"
            + "\u{202F}\u{2009};2024-01-15 15:00;4,5;1003\n"
            + "S\u{A0}2;2024-01-15 16:00;5,5;1004\n"
            + "\u{FEFF}S1;2024-01-15 17:00;6,5;1005\n"
        let (sink, report) = try await run(csv, missing: "[\"\"]")
        #expect(sink.stations.map(\.key) == ["ws:S1", "ws:S\u{A0}2", "ws:\u{FEFF}S1"])
        #expect(sink.observations.filter { $0.stationKey == "ws:S1" }.count == 6)
        #expect(report.totals.quarantined == 1)
        #expect(sink.quarantined.first?.error.reason == "station id is empty or missing")
        #expect(sink.quarantined.first?.error.location.line == 5)
    }

    @Test func canonicallyEquivalentStationIDsKeepTheirOwnBytes() async throws {
        // é precomposed, then decomposed: one station (as a Set<String> sees it), each observation keyed as written.
        let csv = "Station;Zeit;T;P\n\u{E9};2024-01-15 12:00;1;1000\ne\u{301};2024-01-15 13:00;2;1001\n\u{E9};2024-01-15 14:00;3;1002\n"
        let (sink, _) = try await run(csv, missing: "[\"\"]")
        #expect(sink.stations.count == 1)
        let keys = sink.observations.filter { $0.property == "air_temperature" }.map { Array($0.stationKey.utf8) }
        #expect(keys == [Array("ws:\u{E9}".utf8), Array("ws:e\u{301}".utf8), Array("ws:\u{E9}".utf8)])
    }

    @Test func missingMarkersMatchTrimmedTextAndCanonicalEquivalents() async throws {
        let csv = "Station;Zeit;T;P\n"
            + "A;2024-01-15 12:00;-999;\u{A0}-999\u{A0}\n"     // marker, and marker padded with NBSP
            + "A;2024-01-15 13:00;\t n/a ;\u{3000}\n"            // padded marker; all white space → trimmed to "" (a marker)
            + "A;2024-01-15 14:00;K;\u{212A}\n"                  // the Kelvin sign marker equals K, and itself
            + "A;2024-01-15 15:00;--;N/A\n"                      // not markers: not numbers
            + "A;2024-01-15 16:00; 7,5\u{A0};\u{2007}1000,5\n"   // numbers with white space
        let (sink, report) = try await run(csv, missing: "[\"-999\", \"n/a\", \"\", \"\u{212A}\"]")
        #expect(report.totals.skips[.missingValue] == 6)
        // U+2007 is white space to the missing check (trimmed "1000,5" is no marker) but not to the number reader.
        #expect(sink.quarantined.map { "\($0.error.location.line ?? 0) \($0.error.field ?? "-"): \($0.error.reason)" } == [
            "5 T: '--' is not a number (and 1 more problem in this record)",
            "6 P: '\u{2007}1000,5' is not a number",
        ])
        #expect(sink.observations.map { "\($0.property)=\(JSONValue.format($0.result))" } == ["air_temperature=7.5"])
    }

    /// `MissingMarkers.matches` against the expression it replaced, over hostile markers and cells.
    @Test func missingMarkersAgreeWithTheStringSet() {
        let markers: [Set<String>] = [[""], ["-999"], ["-999", "n/a", ""], ["\u{212A}"], ["K"], ["\u{E9}"], ["e\u{301}"], ["\u{A0}"], [" - "], ["—", "k.A."]]
        let cells = ["", " ", "\t", "\u{A0}", "\u{3000}", "-999", " -999 ", "\u{A0}-999\u{A0}", "\t-999", "-9990", "n/a", " n/a\u{202F}", "N/A",
                     "K", " K ", "\u{212A}", "\u{E9}", "e\u{301}", " e\u{301} ", "\u{A0}\u{A0}", " - ", "-", "—", " —\u{A0}", "k.A.", "\u{FFFD}", "12,5"]
        for set in markers {
            let missing = MissingMarkers(set)
            for cell in cells {
                let expected = set.contains(cell) || set.contains(cell.trimmingCharacters(in: .whitespaces))
                #expect(missing.matches(cell) == expected, "\(set) \(Array(cell.unicodeScalars))")
            }
        }
    }
}
