import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import Testing

@Suite struct UBAConnectorTests {
    static let sample = "air-quality-uba/uba_airquality_v3_csv_station1140_DENW095_2022.excerpt.csv"

    /// Hour-ending legal time: spring `02:00` → `04:00` has no gap in UTC; the two autumn `03:00`
    /// rows are the CEST and the CET hour; `24:00` is midnight of the next day.
    @Test func hourEndingLegalTimeAcrossDST() async throws {
        let items = try await run(url: Paths.reference(Self.sample), extra: "components: [NO2]")
        let no2 = items.compactMap { item -> (String, String, Double)? in
            guard case .observation(let o) = item else { return nil }
            return (TimestampParser.formatISO8601(o.phenomenonStart), TimestampParser.formatISO8601(o.phenomenonEnd!), o.result)
        }
        func value(endingAt end: String) -> Double? { no2.first { $0.1 == end }?.2 }
        #expect(value(endingAt: "2022-01-01T00:00:00Z") == 8)     // '2022-01-01 01:00' CET
        #expect(value(endingAt: "2022-01-01T23:00:00Z") == 12)    // '2022-01-01 24:00'
        #expect(value(endingAt: "2022-03-27T01:00:00Z") == 9)     // '02:00' CET
        #expect(value(endingAt: "2022-03-27T02:00:00Z") == 5)     // '04:00' CEST, the next hour
        #expect(value(endingAt: "2022-10-30T01:00:00Z") == 17)    // first '03:00' (CEST)
        #expect(value(endingAt: "2022-10-30T02:00:00Z") == 23)    // second '03:00' (CET)
        #expect(value(endingAt: "2022-10-30T03:00:00Z") == 25)    // '04:00' CET
        #expect(Set(no2.map(\.1)).count == no2.count)             // no hour twice
    }

    /// PM10 and PM2.5 are daily means (hourly floating): the interval is the 24 hours before the stamp.
    @Test func averagingPeriodPerComponent() async throws {
        let items = try await run(url: Paths.reference(Self.sample), extra: "components: [PM10, O3]")
        let first = items.compactMap { item -> Observation? in
            if case .observation(let o) = item { return o } else { return nil }
        }.prefix(2)
        #expect(first.map(\.property) == ["o3_concentration", "pm10_concentration"] || first.map(\.property) == ["pm10_concentration", "o3_concentration"])
        for o in first {
            let hours = (o.phenomenonEnd! - o.phenomenonStart) / 3_600_000_000
            #expect(hours == (o.property == "pm10_concentration" ? 24 : 1))
        }
    }

    @Test func throughALoopbackServer() async throws {
        let file = Paths.reference(Self.sample)
        let server = try await LoopbackHTTPServer.start { _ in .file(file, contentType: "text/csv; charset=utf-8") }
        defer { Task { try await server.stop() } }
        let url = "\(server.baseURL)/api/air_data/v3/airquality/csv?date_from=2022-01-01&date_to=2024-01-01&time_from=01&time_to=01&station=1140"
        let items = try await run(url: url, extra: "station: DENW095\n  station_name: Münster-Geist")
        #expect(server.requests.first?.query["station"] == "1140")
        // Same normalised output as from the file, except that the station keeps the requested id.
        let expected = try String(contentsOfFile: Golden.fixtures + "/uba-air/excerpt/expected.ndjson", encoding: .utf8)
            .replacingOccurrences(of: #""network":"UBA"}"#, with: #""network":"UBA","uba_id":"1140"}"#)
        #expect(Golden.lines(items).joined(separator: "\n") + "\n" == expected)
    }

    @Test func badValuesAndUnknownComponentsAreReported() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uba-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.csv").path
        try Data("""
            "Stationscode";Datum;"Stickstoffdioxid (NO₂) Ein-Stunden-Mittelwert in µg/m³";"Kohlenmonoxid (CO) Acht-Stunden-Mittelwert (stündlich gleitend) in mg/m³"
            DEBE010;"'2022-03-27 03:00'";12;0.4
            DEBE010;"'2022-01-01 25:00'";12;0.4
            DEBE010;"'2022-01-01 05:00'";n/a;0.4

            "Quelle: Umweltbundesamt"
            """.utf8).write(to: URL(fileURLWithPath: file))
        let items = try await run(url: file, extra: "")
        let lines = Golden.lines(items)
        #expect(lines.contains(#"{"quarantined":"'2022-03-27 03:00' cannot end an hour: its start 2022-03-27 02:00 does not exist in Europe/Berlin (clocks skip from 02:00 to 03:00)","origin":"bad.csv","line":2,"record":1,"field":"Datum"}"#))
        #expect(lines.contains(#"{"quarantined":"'2022-01-01 25:00' is not an hour like '2022-01-01 01:00' (01:00 … 24:00)","origin":"bad.csv","line":3,"record":2,"field":"Datum"}"#))
        #expect(lines.contains(#"{"quarantined":"'n/a' is not a number (NO2)","origin":"bad.csv","line":4,"record":3,"field":"Stickstoffdioxid (NO₂) Ein-Stunden-Mittelwert in µg/m³"}"#))
        // German labels work too; CO is an 8-hour mean in mg/m3.
        #expect(lines.contains(#"{"station":"uba-air:DEBE010","property":"co_concentration","unit":"mg/m3","start":"2021-12-31T20:00:00Z","end":"2022-01-01T04:00:00Z","value":0.4}"#))
    }

    @Test func rejectsUnknownComponents() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: uba
                tenant: "05515000"
                source: { kind: uba-air, url: x.csv, components: [NO2, PM25, N02] }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.hasPrefix("unknown component 'N02'") && $0.contains("did you mean 'NO2'?") }, "\(messages)")
        #expect(!messages.contains { $0.contains("'PM25'") })
    }

    private func run(url: String, extra: String) async throws -> [StagedItem] {
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: uba-test
            tenant: "05515000"
            source:
              kind: uba-air
              url: "\(url)"
              \(extra)
            """, file: "/tmp/uba.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        return sink.items
    }
}
