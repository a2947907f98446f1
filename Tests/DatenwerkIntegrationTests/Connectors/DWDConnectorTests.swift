@testable import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import Testing

@Suite struct DWDConnectorTests {
    // MARK: - The real samples

    // MARK: - Over HTTP

    @Test func zipThroughALoopbackServerWithStationTemplate() async throws {
        let file = Paths.reference("dwd-cdc/observations_recent_RR_akt.zip")
        let server = try await LoopbackHTTPServer.start { request in
            request.path == "/hourly/precipitation/recent/stundenwerte_RR_00020_akt.zip" ? .file(file) : .text("not found", status: 404)
        }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: dwd-http
            tenant: "08136000"
            source:
              kind: dwd-cdc
              url: "\(server.baseURL)/hourly/precipitation/recent/stundenwerte_RR_{station}_akt.zip"
              stations: ["20"]
            """, file: "/tmp/dwd.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        #expect(report.totals.bytes == 788)
        let expected = try String(contentsOfFile: Golden.fixtures + "/dwd-cdc/hourly-precipitation-zip/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    @Test func poiThroughALoopbackServer() async throws {
        let file = Paths.reference("dwd-cdc/10315-BEOB.csv")
        let server = try await LoopbackHTTPServer.start { _ in .file(file) }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: dwd-poi-http
            tenant: "05515000"
            source: { kind: dwd-cdc, url: "\(server.baseURL)/weather/weather_reports/poi/10315-BEOB.csv", product: poi }
            """, file: "/tmp/dwd.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        let expected = try String(contentsOfFile: Golden.fixtures + "/dwd-cdc/poi-current/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    // MARK: - Station list

    @Test func stationListIsFixedWidthLatin1() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: Paths.reference("dwd-cdc/TU_Stundenwerte_Beschreibung_Stationen.trimmed.txt"))))
        let (stations, skipped) = DWDMetadata.stationList(DWDMetadata.latin1(bytes))
        #expect(stations.count == 40)
        #expect(skipped.isEmpty)
        let grossenkneten = try #require(stations["00044"])
        #expect(grossenkneten == DWDStationInfo(id: "00044", name: "Großenkneten", latitude: 52.9336, longitude: 8.2370, height: 44,
                                                state: "Niedersachsen", since: "20070401", until: "20240101"))
        // Names with spaces stay whole; umlauts in the Bundesland are Latin-1.
        #expect(stations["00102"]?.name == "Leuchtturm Alte Weser")
        #expect(stations["00102"]?.height == 0)
        #expect(stations["00096"]?.name == "Neuruppin-Alt Ruppin")
        #expect(stations["00071"]?.state == "Baden-Württemberg")
        #expect(stations["00003"]?.until == "20110331")
    }

    @Test func stationListLineEndingsAndAbgabeColumn() {
        let text = "Stations_id von_datum bis_datum Stationshoehe geoBreite geoLaenge Stationsname Bundesland Abgabe\r\n"
            + "----------- --------- --------- ------------- --------- --------- ----------------------------------------- ---------- ------\r\n"
            + "00052 19760101 19880101             46     53.6623   10.1990 Ahrensburg-Wulfsdorf                     Schleswig-Holstein                       Frei\r\n"
            + "not a station line\n"
        let (stations, skipped) = DWDMetadata.stationList(text)
        #expect(stations["00052"]?.name == "Ahrensburg-Wulfsdorf")
        #expect(stations["00052"]?.state == "Schleswig-Holstein")
        #expect(skipped == [4])
    }

    /// A produkt file without Metadaten_Geographie gets its station from `station_list`; TU columns,
    /// QN_9 as the quality, `-999` skipped, a value that is not a number quarantined with its field.
    @Test func stationListFillsAProductWithoutMetadata() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try write(folder + "/produkt_tu_stunde_20230101_20230101_00044.txt", """
            STATIONS_ID;MESS_DATUM;QN_9;TT_TU;RF_TU;eor\r
                     44;2023010100;    1;   9.6;  87.0;eor\r
                     44;2023010101;    1;-999;  88.0;eor\r
                     44;2023010102;    1;  x.5;  89.0;eor\r
                     44;2023010103;    1;  60.5;  90.0;eor\r

            """)
        let (items, report) = try await run("""
            url: \(folder)/produkt_*.txt
            station_list: \(Paths.reference("dwd-cdc/TU_Stundenwerte_Beschreibung_Stationen.trimmed.txt"))
            """)
        #expect(report.totals.recordsRead == 4)
        #expect(items == [
            #"{"station":"dwd-cdc:00044","name":"Großenkneten","kind":"weather_station","lon":8.237,"lat":52.9336,"alt":44,"properties":{"station_id":"00044","state":"Niedersachsen","location_since":"20070401"}}"#,
            #"{"station":"dwd-cdc:00044","property":"air_temperature","unit":"Cel","start":"2023-01-01T00:00:00Z","value":9.6,"quality":"1"}"#,
            #"{"station":"dwd-cdc:00044","property":"relative_humidity","unit":"%","start":"2023-01-01T00:00:00Z","value":87,"quality":"1"}"#,
            #"{"station":"dwd-cdc:00044","property":"relative_humidity","unit":"%","start":"2023-01-01T01:00:00Z","value":88,"quality":"1"}"#,
            #"{"station":"dwd-cdc:00044","property":"relative_humidity","unit":"%","start":"2023-01-01T02:00:00Z","value":89,"quality":"1"}"#,
            #"{"quarantined":"'x.5' is not a number","origin":"produkt_tu_stunde_20230101_20230101_00044.txt","line":4,"record":3,"field":"TT_TU"}"#,
            #"{"station":"dwd-cdc:00044","property":"relative_humidity","unit":"%","start":"2023-01-01T03:00:00Z","value":90,"quality":"1"}"#,
            #"{"quarantined":"60.5 is outside the plausible range -80…60 for air_temperature","origin":"produkt_tu_stunde_20230101_20230101_00044.txt","line":5,"record":4,"field":"TT_TU"}"#,
        ])
    }

    /// 10-minute data before 2000 is MEZ (UTC+1); later data is UTC.
    @Test func tenMinuteDataBefore2000IsMEZ() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try write(folder + "/produkt_zehn_min_tu_19991231_20000101_00044.txt", """
            STATIONS_ID;MESS_DATUM;  QN;PP_10;TT_10;TM5_10;RF_10;TD_10;eor
                     44;199912312350;    1;1010.0;   1.5;-999;  90.0;-999;eor
                     44;200001010000;    1;1010.1;   1.4;-999;  91.0;-999;eor

            """)
        let (items, _) = try await run("url: \(folder)/produkt_zehn_min_tu_19991231_20000101_00044.txt")
        let temperatures = items.filter { $0.contains("air_temperature") }
        #expect(temperatures == [
            #"{"station":"dwd-cdc:00044","property":"air_temperature","unit":"Cel","start":"1999-12-31T22:50:00Z","value":1.5,"quality":"1"}"#,
            #"{"station":"dwd-cdc:00044","property":"air_temperature","unit":"Cel","start":"2000-01-01T00:00:00Z","value":1.4,"quality":"1"}"#,
        ])
    }

    /// When `Metadaten_Parameter` says where MEZ applies ("Zeitbezug ist MEZ"), that wins over the rule of thumb.
    @Test func metadatenParameterDecidesMEZ() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try write(folder + "/produkt_zehn_min_sd_20000601_20000601_00044.txt", """
            STATIONS_ID;MESS_DATUM;  QN;DS_10;GS_10;SD_10;LS_10;eor
                     44;200006011200;    1;  10.0;  50.0;   0.167;-999;eor

            """)
        let parameter = "Stations_ID;Von_Datum;Bis_Datum;Stationsname;Parameter;Parameterbeschreibung;Einheit;Datenquelle (Strukturversion=SV);Zusatz-Info;Besonderheiten;Literaturhinweis;eor;\n"
            + "44;19950101;20001231;Gro\u{DF}enkneten;SD_10;Sonnenscheindauer 10min;Stunde;ESAU-Daten (Zeitbezug ist MEZ);;;;eor;\n"
            + "generiert: 12.04.2023 --  Deutscher Wetterdienst  --\n"
        try Data(parameter.unicodeScalars.map { UInt8($0.value) }).write(to: URL(fileURLWithPath: folder + "/Metadaten_Parameter_00044.txt"))
        let (items, _) = try await run("url: \(folder)/*")
        #expect(items.contains(#"{"station":"dwd-cdc:00044","property":"sunshine_duration","unit":"min","start":"2000-06-01T10:50:00Z","end":"2000-06-01T11:00:00Z","value":10.02,"quality":"1"}"#))
    }

    // MARK: - Configuration

    @Test func configurationProblemsNameTheirKeys() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: dwd
                tenant: "05515000"
                source: { kind: dwd-cdc, url: "https://opendata.dwd.de/x/stundenwerte_TU_{station}_akt.zip", product: hourly, station_lists: x }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unknown key 'station_lists' in 'source' (kind: dwd-cdc); did you mean 'station_list'?"))
        #expect(messages.contains("'hourly' is not one of auto, climate, poi (at 'source.product')"))
        let config = ConnectorConfig(kind: "dwd-cdc", values: [
            "url": .string("https://opendata.dwd.de/x/stundenwerte_TU_{station}_akt.zip"), "product": .string("poi"),
            "station_list": .string("list.txt"),
        ])
        #expect(DWDConnector().check(config).map(\.key) == ["url", "station_list"])
        let badID = ConnectorConfig(kind: "dwd-cdc", values: ["url": .string("a.zip"), "stations": .strings(["01766", "Münster Ost"])])
        #expect(DWDConnector().check(badID).map(\.message) == ["'Münster Ost' is not a station id (letters and digits only, e.g. \"01766\" or \"10315\")"])
    }

    @Test func aZipWithoutProductOrMetadataFailsClearly() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try write(folder + "/stundenwerte_TU_00044_akt.zip", "this is not a zip")
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: dwd-bad
            tenant: "05515000"
            source: { kind: dwd-cdc, url: "\(folder)/stundenwerte_TU_00044_akt.zip" }
            """, file: folder + "/p.yaml", connectors: BuiltinConnectors.registry)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.failure?.message.contains("stundenwerte_TU_00044_akt.zip is not a readable zip archive") == true)
    }

    // MARK: - Helpers

    private func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "dwd-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Runs a dwd-cdc source with the given keys (YAML lines) into memory.
    private func run(_ keys: String) async throws -> ([String], RunReport) {
        let indented = keys.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: dwd-test
            tenant: "05515000"
            source:
              kind: dwd-cdc
            \(indented)
            """, file: "/tmp/dwd-test.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        return (Golden.lines(sink.items), report)
    }
}
