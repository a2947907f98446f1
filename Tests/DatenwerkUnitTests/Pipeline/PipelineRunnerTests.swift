import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import Testing
import DatenwerkTesting

/// End-to-end runs into memory (no database): decode → transform → normalise.
@Suite struct PipelineRunnerTests {
    @Test func germanCSVWithLocalTimesAcrossBothDSTChanges() async throws {
        let spec = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
        let (sink, report) = try await dryRun(spec)
        #expect(report.succeeded)
        // 3 stations × (24 + 23 + 24 + 25) hours + one row in the spring gap.
        #expect(report.totals.recordsRead == 3 * 96 + 1)
        #expect(sink.stations.map(\.key).sorted() == ["musterstadt-klima:MS-01", "musterstadt-klima:MS-02", "musterstadt-klima:MS-03"])
        // Latin-1 decoded.
        #expect(sink.stations.first { $0.key.hasSuffix("MS-02") }?.name == "Hafen Süd")

        // Spring: local 01:00 CET = 00:00Z, then 03:00 CEST = 01:00Z (02:xx does not exist).
        let spring = sink.values("musterstadt-klima:MS-01", "air_temperature").map(\.0)
            .filter { $0 >= "2024-03-30T22:00:00Z" && $0 <= "2024-03-31T03:00:00Z" }
        #expect(spring == ["2024-03-30T22:00:00Z", "2024-03-30T23:00:00Z", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z",
                           "2024-03-31T02:00:00Z", "2024-03-31T03:00:00Z"])
        // Autumn: 02:00 appears twice in the file; with `ambiguous: sequence` the first is CEST (00:00Z), the repeat CET (01:00Z).
        let autumn = sink.values("musterstadt-klima:MS-01", "air_temperature").map(\.0)
            .filter { $0 >= "2024-10-26T23:00:00Z" && $0 <= "2024-10-27T03:00:00Z" }
        #expect(autumn == ["2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z", "2024-10-27T03:00:00Z"])
        // Every instant is unique per station and property: nothing collapses on the natural key.
        let keys = sink.observations.map { "\($0.stationKey)|\($0.property)|\($0.phenomenonStart)" }
        #expect(Set(keys).count == keys.count)
    }

    @Test func quarantinesTheSpringGapAndTextValuesWithLocatedReasons() async throws {
        let spec = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
        let (sink, report) = try await dryRun(spec)
        #expect(report.totals.quarantined == 2)
        let reasons = sink.quarantined.map { "\($0.error.location.line ?? 0) \($0.error.field ?? "-"): \($0.error.reason)" }
        #expect(reasons == [
            "145 Datum+Uhrzeit: '31.03.2024 02:30': 2024-03-31 02:30 does not exist in Europe/Berlin (clocks skip from 02:00 to 03:00)",
            "208 Wind [km/h]: 'Störung' is not a number",
        ])
        #expect(sink.quarantined[0].raw == "MS-01;Münster Domplatz;405328,42;5757524,87;31.03.2024;02:30;3,9;81;1009,4;7,2")
        // The other values of the row with the bad wind reading still load.
        #expect(sink.values("musterstadt-klima:MS-03", "air_temperature").contains { $0.0 == "2024-10-26T12:00:00Z" })
        #expect(!sink.values("musterstadt-klima:MS-03", "wind_speed").contains { $0.0 == "2024-10-26T12:00:00Z" })
    }

    @Test func normalisesUnitsDecimalCommaMissingMarkerAndUTMCoordinates() async throws {
        let dir = try Paths.temporaryDirectory()
        let csv = """
            Station;Rechtswert;Hochwert;Zeit;Temp [°F];Wind [km/h];Druck [Pa];NO2 [mg/m3]
            A;405328,42;5757524,87;2024-01-15 12:00;50,0;36,0;101325;0,041
            A;405328,42;5757524,87;2024-01-15 13:00;-999;-999;-999;-999
            B;1.405.328,42;5757524,87;2024-07-15 12:00;212;3,6;99000,5;0,0005
            """
        try Data(csv.utf8).write(to: URL(fileURLWithPath: dir + "/in.csv"))
        let s = try spec("""
            version: 1
            name: units
            tenant: "05515000"
            source: { kind: file, path: in.csv, format: { kind: csv, delimiter: ";" } }
            observations:
              station: { id: Station, coordinates: { x: Rechtswert, y: Hochwert, crs: "EPSG:25832" } }
              time: { field: Zeit, format: "yyyy-MM-dd HH:mm", zone: Europe/Berlin }
              decimal: comma
              missing: ["-999"]
              values:
                - { field: "Temp [°F]", property: air_temperature, unit: "°F" }
                - { field: "Wind [km/h]", property: wind_speed, unit: km/h }
                - { field: "Druck [Pa]", property: air_pressure, unit: Pa }
                - { field: "NO2 [mg/m3]", property: no2_concentration, unit: mg/m3 }
            """, in: dir)
        let (sink, report) = try await dryRun(spec: s)
        #expect(report.succeeded)
        let a = sink.observations.filter { $0.stationKey == "units:A" }.map { "\($0.property)=\(JSONValue.format(($0.result * 1e6).rounded() / 1e6))@\(TimestampParser.formatISO8601($0.phenomenonStart))" }
        #expect(a == ["air_temperature=10@2024-01-15T11:00:00Z", "wind_speed=10@2024-01-15T11:00:00Z", "air_pressure=1013.25@2024-01-15T11:00:00Z", "no2_concentration=41@2024-01-15T11:00:00Z"])
        // Row 2 is all -999: no observations, no error. Row 3: 212 °F = 100 °C is plausible; the easting is far outside UTM.
        #expect(report.totals.quarantined == 1)
        #expect(sink.quarantined[0].error.field == "Rechtswert")
        let station = try #require(sink.stations.first { $0.key == "units:A" })
        let point = try #require(station.location)
        #expect(abs(point.longitude - 7.622149016) < 1e-8)
        #expect(abs(point.latitude - 51.960350170) < 1e-8)
        #expect(station.sourceCoordinates == SourceCoordinates(x: 405328.42, y: 5757524.87, epsg: 25832))
    }

    @Test func rejectsImplausibleValuesAndUnmappedSeriesAfterMelt() async throws {
        let dir = try Paths.temporaryDirectory()
        // A wide counter table: one column per counting direction and an unknown extra series.
        let csv = """
            Datum,Zaehlstelle,Stadteinwaerts,Stadtauswaerts,Sonstige
            2024-06-01 08:00,Neutor,120,98,5
            2024-06-01 09:00,Neutor,-4,101,7
            """
        try Data(csv.utf8).write(to: URL(fileURLWithPath: dir + "/wide.csv"))
        let s = try spec("""
            version: 1
            name: wide
            tenant: "05515000"
            source: { kind: file, path: wide.csv, format: { kind: csv } }
            transform:
              - melt: { id_fields: [Datum, Zaehlstelle], name_field: richtung, value_field: anzahl }
              - filter: { field: richtung, not_in: [Sonstige] }
              - set: { quelle: test }
            observations:
              station: { id: richtung, prefix: neutor, properties: [Zaehlstelle, quelle] }
              time: { field: Datum, format: "yyyy-MM-dd HH:mm", zone: Europe/Berlin, interval: PT1H }
              values:
                - field: anzahl
                  property_field: richtung
                  properties:
                    Stadteinwaerts: bicycle_count
                    Stadtauswaerts: { property: bicycle_count }
            """, in: dir)
        let (sink, report) = try await dryRun(spec: s)
        // Melt makes 3 records per row, the filter drops 'Sonstige'; each direction is its own counting station.
        #expect(report.totals.recordsRead == 2)
        #expect(report.totals.quarantined == 1)
        #expect(sink.quarantined[0].error.reason == "-4 is outside the plausible range 0…1000000 for bicycle_count")
        #expect(sink.quarantined[0].error.location.line == 3)
        let first = try #require(sink.observations.first)
        #expect(first.phenomenonEnd! - first.phenomenonStart == 3_600_000_000)
        #expect(sink.stations.map(\.key) == ["neutor:Stadteinwaerts", "neutor:Stadtauswaerts"])
        #expect(sink.stations.first?.properties == .object([.init("Zaehlstelle", .string("Neutor")), .init("quelle", .string("test"))]))
        #expect(sink.observations.map { "\($0.stationKey)=\(JSONValue.format($0.result))" } == ["neutor:Stadteinwaerts=120", "neutor:Stadtauswaerts=98", "neutor:Stadtauswaerts=101"])
    }

    @Test func failPolicyStopsAtTheFirstBadRecord() async throws {
        var s = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
        s.onBadRecord = .fail
        let (sink, report) = try await dryRun(s)
        let failure = try #require(report.failure)
        #expect(failure.step == .transform)
        #expect(failure.message.contains("klima-musterstadt.csv:145"))
        #expect(failure.message.contains("does not exist in Europe/Berlin"))
        #expect(sink.failures.count == 1)
    }

    @Test func maxBadRecordsFailsTheRun() async throws {
        var s = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
        s.maxBadRecords = 1
        let (_, report) = try await dryRun(s)
        #expect(report.failure?.message.hasPrefix("more than max_bad_records = 1 bad records (2 so far); first: ") == true)
        s.maxBadRecords = 2
        s.onBadRecord = .skip
        let (sink, ok) = try await dryRun(s)
        #expect(ok.succeeded)
        // Two bad records standing for 5 values (one fails on its time with all of its values), plus the one
        // missing value the file marks: skipped, counted by rule, and the books balance.
        #expect(ok.totals.skips[.badRecord] == 5)
        #expect(ok.totals.skips[.missingValue] == 1)
        #expect(ok.totals.skipped == 6)
        #expect(ok.totals.isBalanced)
        #expect(sink.quarantined.isEmpty)
    }

    @Test func pagedJSONDumpWithOffsetsAcrossTheAutumnChange() async throws {
        let spec = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-energie.yaml"))
        let (sink, report) = try await dryRun(spec)
        #expect(report.totals.recordsRead == 72)
        #expect(report.totals.origins.map { ($0 as NSString).lastPathComponent } == ["page-1.json", "page-2.json", "page-3.json"])
        let bad = try #require(sink.quarantined.first)
        #expect(bad.error.location.path == "$.items[3]")   // item 28 of 72: page 2 starts at item 25
        #expect(bad.error.field == "energie_kwh")
        #expect(bad.raw.contains("\"n/a\""))
        // 02:45+02:00 and 02:00+01:00 are 15 minutes apart in UTC although the local clock went back.
        let times = sink.values("musterstadt-energie:UW-NORD", "electricity_consumption").map(\.0)
        #expect(times.contains("2024-10-27T00:45:00Z"))
        #expect(times.contains("2024-10-27T01:00:00Z"))
        #expect(Set(times).count == 24)
        // kWh → MW.h and W → kW.
        let first = try #require(sink.observations.first { $0.property == "electricity_consumption" })
        let power = try #require(sink.observations.first { $0.property == "electric_power" && $0.phenomenonStart == first.phenomenonStart && $0.stationKey == first.stationKey })
        #expect(abs(power.result - first.result * 4 * 1000) < 1e-6)
        #expect(first.phenomenonEnd! - first.phenomenonStart == 15 * 60 * 1_000_000)
    }
}

private func dryRun(spec: PipelineSpec) async throws -> (RecordingSink, RunReport) { try await dryRun(spec) }
