import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
@testable import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkTesting
import Foundation
import NIOCore
import PostgresNIO
import Testing

/// Downloads read their rows straight from one binary record cell per row (`DownloadRowReader`), without
/// postgres-nio's generic decoding: the records of real statements, and whole downloads of loaded data written out.
@Suite(.serialized) struct DownloadDecodingTests {
    @Test func readsTheCursorColumnsFromTheirBinaryCells() async throws {
        try await TestDatabase.with { db in
            let connections = ServerConnections(database: db, limit: 1, acquireTimeout: .seconds(30))
            let rows = try await connections.rows("""
                SELECT ROW(station_id, property, phenomenon_start, phenomenon_end, result, quality) FROM (VALUES
                  (7::int8, 'air_temperature'::text, '1969-12-31 23:59:59.999999+00'::timestamptz, NULL::timestamptz, -0.5::float8, NULL::text),
                  (-3, 'relative_humidity', '1999-12-31 23:59:59.5+00', '2000-01-01 00:00:00+00', 1e-300, 'Prüfung 東京 🌡'),
                  (9223372036854775807, 'air_temperature', '1750-06-01 12:00:00.000001+00', '1750-06-01 13:00:00+00', 'NaN', ''),
                  (1, 'air_temperature', '2024-10-27 01:30:00+02', NULL, '-Infinity', 'x')
                ) AS t(station_id, property, phenomenon_start, phenomenon_end, result, quality)
                """)
            await connections.shutdown()
            var reader = DownloadRowReader()
            var read: [DownloadRowReader.Cells] = []
            var newKeys: [String] = []
            for row in rows {
                var cells = try reader.read(row)
                if cells.property < 0 {
                    newKeys.append(reader.newPropertyKey)
                    reader.addProperty(ObservationEncoder(format: .csv).property(key: reader.newPropertyKey, unit: "1"))
                    cells = try reader.read(row)
                }
                read.append(cells)
            }
            #expect(newKeys == ["air_temperature", "relative_humidity"])
            #expect(read.map(\.property) == [0, 1, 0, 0])
            #expect(read.map(\.stationID) == [7, -3, Int64.max, 1])
            #expect(read.map(\.startMicros) == [-1, 946_684_799_500_000, -6_929_409_599_999_999, 1_729_985_400_000_000])
            #expect(read.map(\.endMicros) == [nil, 946_684_800_000_000, -6_929_406_000_000_000, nil])
            #expect(read[0].value == -0.5 && read[1].value == 1e-300 && read[2].value.isNaN && read[3].value == -.infinity)
            #expect(read.map(\.quality) == [nil, "Prüfung 東京 🌡", "", "x"])
            #expect(ByteWriting.timestamp(micros: read[2].startMicros) == "1750-06-01T12:00:00.000001Z")
        }
    }

    @Test func rowsOfAnotherShapeAreAnErrorNotGarbage() async throws {
        try await TestDatabase.with { db in
            let connections = ServerConnections(database: db, limit: 1, acquireTimeout: .seconds(30))
            let shapes: [(PostgresQuery, Int)] = [
                ("SELECT ROW(7::int4, 'p'::text, now(), NULL::timestamptz, 1::float8, NULL::text)", 0),
                ("SELECT ROW(7::int8, 'p'::text, now(), NULL::timestamptz, 1::float4, NULL::text)", 4),
                ("SELECT ROW(7::int8, 'p'::text, 'infinity'::timestamptz, NULL::timestamptz, 1::float8, NULL::text)", 2),
                ("SELECT ROW(7::int8, 'p'::text, now(), '-infinity'::timestamptz, 1::float8, NULL::text)", 3),
                ("SELECT ROW(NULL::int8, 'p'::text, now(), NULL::timestamptz, 1::float8, NULL::text)", 0),
                ("SELECT ROW(7::int8, NULL::text, now(), NULL::timestamptz, 1::float8, NULL::text)", 1),
                ("SELECT ROW(7::int8, 'p'::text, now(), NULL::timestamptz, NULL::float8, NULL::text)", 4),
                ("SELECT ROW(7::int8, 'p'::text, now(), NULL::timestamptz, 1::float8)", 5),
                ("SELECT 7::int8, 'p'::text, now(), NULL::timestamptz, 1::float8, NULL::text", 0),
                ("SELECT NULL::record", 0),
            ]
            for (query, column) in shapes {
                let rows = try await connections.rows(query)
                var reader = DownloadRowReader()
                #expect(throws: DownloadRowShape(column: column)) { _ = try reader.read(rows[0]) }
            }
            await connections.shutdown()
        }
    }

    static let csv = """
        station,name,lon,lat,time,t,status
        A1,"Straße ""Süd"", 東京 🌡",7.5,51.25,1969-12-31T23:59:59.999999Z,-0.5,geprüft
        A1,"Straße ""Süd"", 東京 🌡",7.5,51.25,1999-12-31T23:59:59.5Z,12.3,
        B2,=Rathaus,7.625,51.125,1999-12-31T23:59:59.5Z,0.1,vorläufig
        B2,=Rathaus,7.625,51.125,1850-03-01T00:00:00.000001Z,1e-5,
        B2,=Rathaus,7.625,51.125,2024-06-30T22:00:00Z,17,

        """

    static func pipeline(_ name: String, file: String, interval: String?) throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: \(name)
            tenant: "05515000"
            dataset:
              title: Decoding \(name)
              description: Rows at the edges of the binary decoding.
              theme: ENVI
            source:
              kind: file
              path: \(file)
              format: { kind: csv }
            observations:
              station:
                id: station
                prefix: \(name)
                name: name
                coordinates: { lon: lon, lat: lat }
              time: { field: time, format: iso8601\(interval.map { ", interval: \($0)" } ?? "") }
              quality_field: status
              values:
                - { field: t, property: air_temperature, unit: Cel }
            """, file: file + ".yaml", connectors: BuiltinConnectors.registry)
    }

    /// A loaded dataset downloaded in every format, with the snapshot's stations and units and with none (every
    /// station and property looked up during the download), in pages of 2 rows: the same bytes, spelled out for CSV.
    @Test func loadedRowsDownloadAsWrittenWithAndWithoutTheSnapshot() async throws {
        let dir = try Paths.temporaryDirectory()
        let file = try PublishingSamples.write(Self.csv, "edges.csv", in: dir)
        let specs = [try Self.pipeline("edges", file: file, interval: nil), try Self.pipeline("edges-span", file: file, interval: "PT10M")]
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            for spec in specs {
                let report = try await runner.run(spec, trigger: "test")
                #expect(report.succeeded)
            }
            let connections = ServerConnections(database: db, limit: 2, acquireTimeout: .seconds(30))
            let store = ObservationStore(connections: connections, pageRows: 2)
            var bodies: [String: String] = [:]
            for spec in specs {
                let dataset = try #require(spec.datasetMetadata)
                let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: spec.name))
                #expect(snapshot.stations.count == 2)
                let bare = DatasetSnapshot(state: snapshot.state, facts: DatasetFacts(), stations: [])
                for format in ObservationFormat.allCases {
                    var outputs: [[UInt8]] = []
                    for known in [snapshot, bare] {
                        var out: [UInt8] = []
                        let count = try await store.writeObservations(dataset, snapshot: known, filter: ObservationFilter(),
                                                                      encoder: ObservationEncoder(format: format, bbox: snapshot.facts.bbox),
                                                                      chunkBytes: 100) { out += Array($0.readableBytesView) }
                        #expect(count == 5)
                        outputs.append(out)
                    }
                    #expect(outputs[0] == outputs[1], "\(spec.name) \(format)")
                    bodies["\(spec.name).\(format)"] = String(decoding: outputs[0], as: UTF8.self)
                }
            }
            await connections.shutdown()
            #expect(bodies["edges.csv"] == """
                station_id,station_name,property,unit,phenomenon_time_start,phenomenon_time_end,value,quality,longitude,latitude
                edges:A1,"Straße ""Süd"", 東京 🌡",air_temperature,Cel,1969-12-31T23:59:59.999999Z,,-0.5,geprüft,7.5,51.25
                edges:A1,"Straße ""Süd"", 東京 🌡",air_temperature,Cel,1999-12-31T23:59:59.500Z,,12.3,,7.5,51.25
                edges:B2,"'=Rathaus",air_temperature,Cel,1850-03-01T00:00:00.000001Z,,1e-05,,7.625,51.125
                edges:B2,"'=Rathaus",air_temperature,Cel,1999-12-31T23:59:59.500Z,,0.1,vorläufig,7.625,51.125
                edges:B2,"'=Rathaus",air_temperature,Cel,2024-06-30T22:00:00Z,,17,,7.625,51.125

                """)
            let span = try #require(bodies["edges-span.csv"]).split(separator: "\n")
            #expect(span[2] == "edges-span:A1,\"Straße \"\"Süd\"\", 東京 🌡\",air_temperature,Cel,1999-12-31T23:59:59.500Z,2000-01-01T00:09:59.500Z,12.3,,7.5,51.25")
            let line = try #require(bodies["edges.ndjson"]).split(separator: "\n")[0]
            #expect(line == #"{"station_id":"edges:A1","station_name":"Straße \"Süd\", 東京 🌡","property":"air_temperature","unit":"Cel","phenomenon_time_start":"1969-12-31T23:59:59.999999Z","phenomenon_time_end":null,"value":-0.5,"quality":"geprüft","longitude":7.5,"latitude":51.25}"#)
            let geojsonText = try #require(bodies["edges-span.geojson"])
            let geojson = try #require(JSONSerialization.jsonObject(with: Data(geojsonText.utf8)) as? [String: Any])
            let features = try #require(geojson["features"] as? [[String: Any]])
            #expect(features.map { $0["id"] as? String } == [
                "edges-span:A1/air_temperature/1969-12-31T23:59:59.999999Z", "edges-span:A1/air_temperature/1999-12-31T23:59:59.500Z",
                "edges-span:B2/air_temperature/1850-03-01T00:00:00.000001Z", "edges-span:B2/air_temperature/1999-12-31T23:59:59.500Z",
                "edges-span:B2/air_temperature/2024-06-30T22:00:00Z",
            ])
        }
    }
}
