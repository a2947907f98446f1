import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// The plausibility rules hold for every record, whatever its source (issue 10, item 5): implausible coordinates,
/// times and over-long keys are quarantined with the field named, never loaded, and never create a partition.
@Suite(.timeLimit(.minutes(5))) struct PlausibilityTests {
    /// A generic CSV pipeline into PostgreSQL: historic times (1750) load, year 0001 and 9999 do not.
    @Test func mappedRecordsAreCheckedAndCreateNoPartition() async throws {
        let dir = try Paths.temporaryDirectory()
        let longID = String(repeating: "L", count: 300)
        let csv = """
            Station;Lon;Lat;Zeit;Temp
            A;7.6;51.9;2024-01-15T12:00:00Z;10
            B;100000000;51.9;2024-01-15T12:00:00Z;10
            C;7.6;-95;2024-01-15T12:00:00Z;10
            D;7.6;51.9;0001-01-01T00:00:00Z;10
            E;7.6;51.9;9999-06-01T00:00:00Z;10
            F;7.6;51.9;1750-01-01T00:00:00Z;10
            \(longID);7.6;51.9;2024-01-15T12:00:00Z;10
            """
        try Data(csv.utf8).write(to: URL(fileURLWithPath: dir + "/in.csv"))
        let s = try spec("""
            version: 1
            name: plausible
            tenant: "05515000"
            source: { kind: file, path: in.csv, format: { kind: csv, delimiter: ";" } }
            observations:
              station: { id: Station, coordinates: { lon: Lon, lat: Lat } }
              time: { field: Zeit, format: iso8601 }
              values:
                - { field: Temp, property: air_temperature }
            """, in: dir)
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let report = try await runner.run(s, trigger: "test")
            #expect(report.succeeded, "\(String(describing: report.failure))")
            #expect(report.totals.quarantined == 5)
            let kept = try await db.client.query("SELECT line, field, reason FROM datenwerk.quarantine ORDER BY line", logger: db.logger)
                .decode((Int, String, String).self).collect()
            #expect(kept.map(\.0) == [3, 4, 5, 6, 8])
            #expect(kept.map(\.1) == ["Lon", "Lat", "Zeit", "Zeit", "Station"])
            #expect(kept[0].2 == "longitude 100000000 is outside WGS84 (−180…180)")
            #expect(kept[1].2 == "latitude -95 is outside WGS84 (−90…90)")
            #expect(kept[2].2 == "time 0001-01-01T00:00:00Z is before 1700, not plausible for this source")
            #expect(kept[3].2 == "time 9999-06-01T00:00:00Z is more than a day in the future")
            #expect(kept[4].2.hasPrefix("the station key is 310 bytes long; at most 256 are accepted"))
            let total = try await counts(db)
            // A, F and the stations of D and E (their position is fine; only their times are not).
            #expect(total == Counts(observations: 2, stations: 4, quarantine: 5), "\(total)")
            let partitions = try await db.client.query("""
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
                """, logger: db.logger).decode(String.self).collect()
            #expect(!partitions.contains("observations_y0001m01") && !partitions.contains("observations_y9999m06"))
            #expect(partitions.contains("observations_y1750m01") && partitions.contains("observations_y2024m01"))
        }
    }

    /// A connector's own output passes the same net in the runner: a station outside WGS84 is quarantined with its
    /// observations, a time far ahead and a non-finite result too; nothing implausible reaches the sink.
    @Test func connectorOutputIsCheckedByTheRunner() async throws {
        let registry = ConnectorRegistry([ImplausibleConnector()])
        let s = try PipelineSpec.parse(yaml: """
            version: 1
            name: implausible
            tenant: "05515000"
            source: { kind: implausible }
            """, file: "/tmp/implausible.yaml", connectors: registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: registry).run(s, trigger: "test")
        #expect(report.succeeded)
        #expect(sink.stations.map(\.key) == ["x:good"])
        #expect(sink.observations.map(\.stationKey) == ["x:good"])
        let reasons = sink.quarantined.map { "\($0.error.field ?? "-"): \($0.error.reason)" }
        #expect(reasons == [
            "station latitude: latitude 1e+308 is outside WGS84 (−90…90)",
            "station: its station was rejected: latitude 1e+308 is outside WGS84 (−90…90)",
            "phenomenon start: time 9999-01-01T00:00:00Z is more than a day in the future (station x:good)",
            "air_temperature: nan is not a finite number (air_temperature) (station x:good)",
        ])
    }
}

/// Emits one implausible station with an observation, and a plausible station with one good and two bad observations.
struct ImplausibleConnector: Connector {
    let kind = "implausible"
    let summary = "test connector"
    let keys: [ConfigKey] = []
    let sampleYAML = ""

    func start(_ config: ConnectorConfig, context: ConnectorContext) throws -> any ConnectorRun { Run() }

    struct Run: ConnectorRun {
        var done = false
        var bytesRead: Int { 0 }
        var origins: [String] { ["test"] }

        mutating func next() async throws -> ConnectorBatch? {
            guard !done else { return nil }
            done = true
            let t = utc("2024-01-15T12:00:00Z")
            return ConnectorBatch(items: [
                .station(Station(key: "x:far", location: GeoPoint(longitude: 8, latitude: 1e308))),
                .observation(Observation(stationKey: "x:far", property: "air_temperature", phenomenonStart: t, result: 10)),
                .station(Station(key: "x:good", location: GeoPoint(longitude: 8, latitude: 53))),
                .observation(Observation(stationKey: "x:good", property: "air_temperature", phenomenonStart: t, result: 10)),
                .observation(Observation(stationKey: "x:good", property: "air_temperature", phenomenonStart: utc("9999-01-01T00:00:00Z"), result: 10)),
                .observation(Observation(stationKey: "x:good", property: "air_temperature", phenomenonStart: t + 3_600_000_000, result: .nan)),
            ], recordsRead: 4)
        }
    }
}
