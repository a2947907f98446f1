import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import Testing

/// Counters, UBA, DWD, sensor.community and SMARD: every value of every fixture case is accounted for
/// (values read = loaded + quarantined + skipped), and both DST changes land hour by hour in UTC.
@Suite struct CountedConnectorsTests {
    static let kinds: Set<String> = ["counters-csv", "uba-air", "dwd-cdc", "sensor-community", "smard"]
    static let cases = FixtureCase.all.filter { kinds.contains($0.kind) && $0.lines("expected-errors.txt") == nil }

    @Test(arguments: cases)
    func everyValueIsAccountedFor(_ fixture: FixtureCase) async throws {
        let (report, _) = try await run(fixture)
        let t = report.totals
        #expect(!t.valuesUncounted, "\(fixture.testDescription): a batch did not count its values")
        #expect(t.isBalanced, "\(fixture.testDescription): \(t.valuesRead) read ≠ \(t.observations) loaded + \(t.quarantinedValues) quarantined + \(t.skipped) skipped (\(t.skips.summary))")
        #expect(t.valuesRead > 0 || t.observations == 0, "\(fixture.testDescription): observations but no values counted")
    }

    /// 27 Mar 2016, 23 values per row under 24 labels: MQ0 holds 100 + its local hour, so each value names the
    /// hour it must land in: 0:00 and 1:00 CET, then 3:00 … 23:00 CEST, one hour apart in UTC without a gap.
    @Test func hourColumnsSpringDay() async throws {
        let (_, items) = try await run("counters-csv", "kfz-dst-spring-23-values")
        let mq0 = Self.observations(items, station: "counters-csv:MQ_04010_FV1_G")
        let localHours = [0, 1] + Array(3...23)
        #expect(mq0.map(\.result) == localHours.map { Double(100 + $0) })
        // Hour k of the day starts at 2016-03-26T23:00Z + k hours.
        let midnight = try Self.instant("2016-03-26T23:00:00Z")
        #expect(mq0.map(\.phenomenonStart) == (0..<23).map { midnight + Int64($0) * Self.hour })
        #expect(mq0.allSatisfy { $0.phenomenonEnd == $0.phenomenonStart + Self.hour })
        #expect(Self.iso(mq0[2].phenomenonStart) == "2016-03-27T01:00:00Z")   // 3:00 CEST, right after 1:00 CET
        // 24 values on that day follow the labels: the zero under 2:00 is the placeholder, 3:00 is still 01:00Z.
        let labelled = Self.observations(items, station: "counters-csv:MQ_04020_FV1_G")
        #expect(labelled.count == 23)
        #expect(labelled.map { Self.iso($0.phenomenonStart) }.prefix(3) == ["2016-03-26T23:00:00Z", "2016-03-27T00:00:00Z", "2016-03-27T01:00:00Z"])
        #expect(labelled.map(\.result).prefix(3) == [21, 15, 20])
    }

    /// 30 Oct 2016, 25 values per row: 2:00 CEST (00:00Z) and 2:00 CET (01:00Z) are two hours.
    @Test func hourColumnsAutumnDay() async throws {
        let (report, items) = try await run("counters-csv", "kfz-dst-autumn-25-values")
        let mq0 = Self.observations(items, station: "counters-csv:MQ_04010_FV1_G")
        let midnight = try Self.instant("2016-10-29T22:00:00Z")
        #expect(mq0.map(\.phenomenonStart) == (0..<25).map { midnight + Int64($0) * Self.hour })
        #expect(mq0.map(\.result) == [100, 101, 102, 202] + (3...23).map { Double(100 + $0) })
        #expect(Self.iso(mq0[2].phenomenonStart) == "2016-10-30T00:00:00Z")
        #expect(Self.iso(mq0[3].phenomenonStart) == "2016-10-30T01:00:00Z")
        let bad = items.compactMap { if case .quarantined(let q) = $0 { q } else { nil } }
        #expect(bad.map(\.error.reason) == ["line 4 holds 26 hour values (28 fields) for a day of 25 hours in Europe/Berlin; expected 24 or 25"])
        #expect(bad.map(\.values) == [26])
        #expect(report.totals.isBalanced)
    }

    /// Hourly rows across both changes: the spring placeholder row is counted, 3:00 CEST follows 1:00 CET
    /// directly; the autumn 2:00 listed once covers both hours.
    @Test func hourlyRowsBothChanges() async throws {
        let (report, items) = try await run("counters-csv", "hourly-rows-dst-both")
        let total = Self.observations(items, station: "counters-csv:beispiel")
        #expect(total.map { "\(Self.iso($0.phenomenonStart))–\(Self.iso($0.phenomenonEnd!)) \(Int($0.result))" } == [
            "2016-03-26T22:00:00Z–2016-03-26T23:00:00Z 31",   // 23:00 CET
            "2016-03-26T23:00:00Z–2016-03-27T00:00:00Z 22",   // 0:00 CET
            "2016-03-27T00:00:00Z–2016-03-27T01:00:00Z 17",   // 1:00 CET
            "2016-03-27T01:00:00Z–2016-03-27T02:00:00Z 9",    // 3:00 CEST (the placeholder before it counted)
            "2016-03-27T02:00:00Z–2016-03-27T03:00:00Z 6",
            "2016-03-27T03:00:00Z–2016-03-27T04:00:00Z 11",
            "2016-10-29T21:00:00Z–2016-10-29T22:00:00Z 58",   // 23:00 CEST
            "2016-10-29T22:00:00Z–2016-10-29T23:00:00Z 41",
            "2016-10-29T23:00:00Z–2016-10-30T00:00:00Z 35",   // 1:00 CEST
            "2016-10-30T00:00:00Z–2016-10-30T02:00:00Z 44",   // 2:00 listed once: both hours
            "2016-10-30T02:00:00Z–2016-10-30T03:00:00Z 13",   // 3:00 CET
            "2016-10-30T03:00:00Z–2016-10-30T04:00:00Z 8",
            "2016-10-30T04:00:00Z–2016-10-30T05:00:00Z 10",
        ])
        #expect(report.totals.skips[.dstPlaceholder] == 3)
        #expect(report.totals.skips[.footer] == 6)
    }

    /// A row held back (the autumn 2:00 listed last, or zeros right after the spring gap) is settled when its
    /// file ends: loaded, and counted.
    @Test func aHeldRowIsSettledAtTheEndOfItsFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("counted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("Zeit,Zählung\n10/30/2016 1:00,7\n10/30/2016 2:00,5\n".utf8).write(to: directory.appendingPathComponent("a.csv"))
        try Data("Zeit,Zählung\n3/27/2016 1:00,4\n3/27/2016 3:00,0\n".utf8).write(to: directory.appendingPathComponent("b.csv"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: counters-held
            tenant: "05515000"
            source: { kind: counters-csv, url: "\(directory.path)/*.csv", station: t }
            """, file: "/tmp/held.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        let all = Self.observations(sink.items, station: "counters-csv:t")
        #expect(all.map { "\(Self.iso($0.phenomenonStart))–\(Self.iso($0.phenomenonEnd!)) \(Int($0.result))" } == [
            "2016-10-29T23:00:00Z–2016-10-30T00:00:00Z 7",
            "2016-10-30T00:00:00Z–2016-10-30T02:00:00Z 5",
            "2016-03-27T00:00:00Z–2016-03-27T01:00:00Z 4",
            "2016-03-27T01:00:00Z–2016-03-27T02:00:00Z 0",
        ])
        #expect(report.totals.valuesRead == 4)
        #expect(report.totals.isBalanced)
    }

    /// A wide file whose rows do not end with `;`: once a row ends with a value, an empty last field is the
    /// 23:00 hour, not a delimiter.
    @Test func hourColumnsWithoutTrailingDelimiter() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("counted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let labels = (0..<24).map { "\($0):00" }.joined(separator: ";")
        let full = (1...23).map(String.init).joined(separator: ";")
        let lastEmpty = (1...22).map(String.init).joined(separator: ";") + ";"
        try Data("Name  /  Date: 2016_03_27;\(labels)\nMQ_1 (MQ1);\(full)\nMQ_2 (MQ2);\(lastEmpty)\n".utf8)
            .write(to: directory.appendingPathComponent("2016_03_27_24mq.csv"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: counters-no-trailing
            tenant: "05515000"
            source: { kind: counters-csv, url: "\(directory.path)/*.csv", layout: hour-columns, property: vehicle_count }
            """, file: "/tmp/no-trailing.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(Self.observations(sink.items, station: "counters-csv:MQ_1").count == 23)
        let second = Self.observations(sink.items, station: "counters-csv:MQ_2")
        #expect(second.count == 22)
        #expect(second.last.map { Self.iso($0.phenomenonStart) } == "2016-03-27T20:00:00Z")   // 22:00 CEST
        #expect(report.totals.skips[.missingValue] == 1)   // 23:00
        #expect(report.totals.quarantined == 0)
        #expect(report.totals.isBalanced)
    }

    /// sensor.community DNMS noise sensors: `noise_LAeq` is the noise level in dB(A); min and max are counted.
    @Test func sensorCommunityNoise() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("counted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("""
            [{"id": 1, "timestamp": "2024-05-02 10:15:00", "location": {"id": 77, "latitude": "51.96", "longitude": "7.62", "country": "DE"},
              "sensor": {"id": 4242, "sensor_type": {"id": 29, "name": "DNMS (Laerm)", "manufacturer": "Luftdaten.info"}},
              "sensordatavalues": [{"value": "58.43", "value_type": "noise_LAeq"}, {"value": "49.10", "value_type": "noise_LA_min"},
                                   {"value": "71.92", "value_type": "noise_LA_max"}]}]
            """.utf8).write(to: directory.appendingPathComponent("data.json"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: sc-noise
            tenant: "05515000"
            source: { kind: sensor-community, url: "\(directory.path)/data.json" }
            """, file: "/tmp/sc-noise.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        let noise = Self.observations(sink.items, station: "sensor-community:4242")
        #expect(noise.map(\.property) == ["noise_level"])
        #expect(noise.map(\.result) == [58.43])
        #expect(report.totals.skips[.unmappedProperty] == 2)
        #expect(report.totals.isBalanced)
    }

    /// UBA, hour-ending legal time, 2023: '24:00' ends the day; spring '02:00' (CET) then '04:00' (CEST) are
    /// adjacent UTC hours; the two autumn '03:00' rows are 00:00Z–01:00Z (CEST) and 01:00Z–02:00Z (CET).
    @Test func ubaBothChanges() async throws {
        let (_, items) = try await run("uba-air", "dst-both-changes")
        let no2 = items.compactMap { item -> String? in
            guard case .observation(let o) = item, o.property == "no2_concentration" else { return nil }
            return "\(Self.iso(o.phenomenonStart))–\(Self.iso(o.phenomenonEnd!)) \(Int(o.result))"
        }
        #expect(no2 == [
            "2023-03-25T22:00:00Z–2023-03-25T23:00:00Z 21",   // '2023-03-25 24:00'
            "2023-03-25T23:00:00Z–2023-03-26T00:00:00Z 19",   // '01:00' CET
            "2023-03-26T00:00:00Z–2023-03-26T01:00:00Z 16",   // '02:00' CET
            "2023-03-26T01:00:00Z–2023-03-26T02:00:00Z 14",   // '04:00' CEST
            "2023-03-26T02:00:00Z–2023-03-26T03:00:00Z 13",   // '05:00'
            "2023-03-26T03:00:00Z–2023-03-26T04:00:00Z 18",   // '06:00'
            "2023-10-28T22:00:00Z–2023-10-28T23:00:00Z 31",   // '01:00' CEST
            "2023-10-28T23:00:00Z–2023-10-29T00:00:00Z 29",   // '02:00'
            "2023-10-29T00:00:00Z–2023-10-29T01:00:00Z 27",   // first '03:00' (CEST)
            "2023-10-29T01:00:00Z–2023-10-29T02:00:00Z 24",   // second '03:00' (CET)
            "2023-10-29T03:00:00Z–2023-10-29T04:00:00Z 22",   // '05:00' CET ('04:00' all missing)
        ])
    }

    // MARK: - Helpers

    static let hour: Int64 = 3_600_000_000

    static func instant(_ text: String) throws -> Int64 { try TimestampParser(format: "iso8601", zone: .utc).parse(text) }

    static func iso(_ micros: Int64) -> String { TimestampParser.formatISO8601(micros) }

    static func observations(_ items: [StagedItem], station: String) -> [Observation] {
        items.compactMap { if case .observation(let o) = $0, o.stationKey == station { o } else { nil } }
    }

    private func run(_ kind: String, _ name: String) async throws -> (RunReport, [StagedItem]) {
        try await run(FixtureCase(kind: kind, name: name))
    }

    private func run(_ fixture: FixtureCase) async throws -> (RunReport, [StagedItem]) {
        let registry = BuiltinConnectors.registry
        let spec = try fixture.pipeline(registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: registry).run(spec, trigger: "test")
        return (report, sink.items)
    }
}
