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

/// Downloads read their rows straight from binary arrays, one per column and series in a page (`DownloadRowReader`), without
/// postgres-nio's generic decoding: the pages of real statements, and whole downloads of loaded data written out.
@Suite(.serialized) struct DownloadDecodingTests {
    @Test func readsThePageColumnsFromTheirBinaryArrays() async throws {
        try await TestDatabase.with { db in
            let connections = ServerConnections(database: db, limit: 1, acquireTimeout: .seconds(30))
            let rows = try await connections.rows(PostgresQuery(unsafeSQL: """
                \(DownloadRowReader.pageSQL(from: """
                SELECT * FROM (VALUES
                  (-3::int8, 'relative_humidity'::text, '1999-12-31 23:59:59.5+00'::timestamptz, '2000-01-01 00:00:00+00'::timestamptz, 1e-300::float8, 'Prüfung 東京 🌡'::text),
                  (1, 'air_temperature', '2024-10-27 01:30:00+02', NULL, '-Infinity', 'x'),
                  (7, 'air_temperature', '1969-12-31 23:59:59.999999+00', NULL, -0.5, NULL),
                  (7, 'air_temperature', '1970-01-01 00:00:00+00', NULL, 0.25, 'y'),
                  (7, 'relative_humidity', '1750-06-01 12:00:00.000001+00', '1750-06-01 13:00:00+00', 'NaN', ''),
                  (9223372036854775807, 'air_temperature', '1750-06-01 12:00:00.000001+00', NULL, 0, NULL)
                ) AS t(station_id, property, phenomenon_start, phenomenon_end, result, quality) ORDER BY 1, 2, 3
                """))
                """))
            let empty = try await connections.rows(PostgresQuery(unsafeSQL: """
                \(DownloadRowReader.pageSQL(from: "SELECT * FROM datenwerk.observations WHERE false"))
                """))
            await connections.shutdown()
            var reader = DownloadRowReader()
            var read: [DownloadRowReader.Cells] = []
            try reader.read(page: rows, into: &read)
            #expect(reader.propertyKeys == ["relative_humidity", "air_temperature"])
            #expect(read.map(\.property) == [0, 1, 1, 1, 0, 1])
            #expect(read.map(\.stationID) == [-3, 1, 7, 7, 7, Int64.max])
            #expect(read.map(\.startMicros) == [946_684_799_500_000, 1_729_985_400_000_000, -1, 0, -6_929_409_599_999_999, -6_929_409_599_999_999])
            #expect(read.map(\.endMicros) == [946_684_800_000_000, nil, nil, nil, -6_929_406_000_000_000, nil])
            #expect(read.map(\.value).dropLast(3) == [1e-300, -.infinity, -0.5] && read[3].value == 0.25 && read[4].value.isNaN && read[5].value == 0)
            #expect(read.map(\.quality) == ["Prüfung 東京 🌡", "x", nil, "y", "", nil])
            #expect(ByteWriting.timestamp(micros: read[4].startMicros) == "1750-06-01T12:00:00.000001Z")
            // The next page starts empty and knows the properties already; an empty page is no rows.
            try reader.read(page: rows, into: &read)
            #expect(read.count == 6 && reader.propertyKeys.count == 2)
            try reader.read(page: empty, into: &read)
            #expect(read.isEmpty)
            try reader.read(page: [], into: &read)
            #expect(read.isEmpty)
        }
    }

    @Test func pagesOfAnotherShapeOrOrderAreAnErrorNotGarbage() async throws {
        try await TestDatabase.with { db in
            let connections = ServerConnections(database: db, limit: 1, acquireTimeout: .seconds(30))
            let good = ["7::int8", "'p'::text", "ARRAY[now()]", "ARRAY[NULL::timestamptz]", "ARRAY[1::float8]", "ARRAY[NULL::text]"]
            func row(_ replace: [Int: String]) -> String {
                good.indices.map { replace[$0] ?? good[$0] }.joined(separator: ", ")
            }
            let shapes: [(String, Int)] = [
                ("SELECT \(row([0: "7::int4"]))", 0),
                ("SELECT \(row([0: "NULL::int8"]))", 0),
                ("SELECT \(row([1: "NULL::text"]))", 1),
                ("SELECT \(row([1: "'p'::varchar"]))", 1),
                ("SELECT \(row([2: "now()"]))", 2),
                ("SELECT \(row([2: "ARRAY['infinity'::timestamptz]"]))", 2),
                ("SELECT \(row([2: "ARRAY[NULL::timestamptz]"]))", 2),
                ("SELECT \(row([2: "ARRAY[]::timestamptz[]", 3: "ARRAY[]::timestamptz[]", 4: "ARRAY[]::float8[]", 5: "ARRAY[]::text[]"]))", 2),
                ("SELECT \(row([2: "ARRAY[ARRAY[now()]]"]))", 2),
                ("SELECT \(row([3: "ARRAY['-infinity'::timestamptz]"]))", 3),
                ("SELECT \(row([3: "ARRAY[NULL::timestamptz, NULL]"]))", 3),
                ("SELECT \(row([4: "ARRAY[1::float4]"]))", 4),
                ("SELECT \(row([4: "ARRAY[NULL::float8]"]))", 4),
                ("SELECT \(row([5: "ARRAY[1::int8]"]))", 5),
                ("SELECT \(row([5: "NULL::text[]"]))", 5),
                ("SELECT \(row([:])), 1", 6),
                ("SELECT \(good.dropLast().joined(separator: ", "))", 5),
                ("SELECT ARRAY[ROW(\(good.joined(separator: ", ")))]", 0),
            ]
            for (sql, column) in shapes {
                let rows = try await connections.rows(PostgresQuery(unsafeSQL: sql))
                var reader = DownloadRowReader()
                var cells: [DownloadRowReader.Cells] = []
                #expect(throws: DownloadRowShape(column: column), "\(sql)") { try reader.read(page: rows, into: &cells) }
            }
            // Rows out of key order: the next page would start after the wrong key.
            let disorder: [String] = [
                "SELECT \(row([:])) UNION ALL SELECT \(row([0: "3::int8"]))",
                "SELECT \(row([1: "'q'"])) UNION ALL SELECT \(row([:]))",
                "SELECT \(row([:])) UNION ALL SELECT \(row([:]))",
                "SELECT \(row([2: "ARRAY[now(), now()]", 3: "ARRAY[NULL::timestamptz, NULL]", 4: "ARRAY[1::float8, 2]", 5: "ARRAY[NULL::text, NULL]"]))",
                "SELECT \(row([2: "ARRAY[now(), now() - interval '1 microsecond']", 3: "ARRAY[NULL::timestamptz, NULL]", 4: "ARRAY[1::float8, 2]", 5: "ARRAY[NULL::text, NULL]"]))",
            ]
            for sql in disorder {
                let rows = try await connections.rows(PostgresQuery(unsafeSQL: sql))
                var reader = DownloadRowReader()
                var cells: [DownloadRowReader.Cells] = []
                #expect(throws: DownloadPageOrder(), "\(sql)") { try reader.read(page: rows, into: &cells) }
            }
            // In order across stations and properties (bytes: 'P' < 'p' < 'pa'), and in time within a series: read.
            let ordered = """
                SELECT \(row([0: "3::int8", 1: "'q'"])) UNION ALL SELECT \(row([1: "'P'", 4: "ARRAY[2::float8]"]))
                UNION ALL SELECT \(row([2: "ARRAY[now(), now() + interval '1 microsecond']", 3: "ARRAY[NULL::timestamptz, NULL]", 4: "ARRAY[3::float8, 4]", 5: "ARRAY[NULL::text, NULL]"]))
                UNION ALL SELECT \(row([1: "'pa'", 4: "ARRAY[5::float8]"]))
                """
            let rows = try await connections.rows(PostgresQuery(unsafeSQL: ordered))
            var reader = DownloadRowReader()
            var cells: [DownloadRowReader.Cells] = []
            try reader.read(page: rows, into: &cells)
            #expect(cells.map(\.value) == [1, 2, 3, 4, 5])
            #expect(reader.propertyKeys == ["q", "P", "p", "pa"])
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

    /// Pages of any size give the same download: rows of three stations and two properties in pages of 1, 3
    /// and 4000, whole, limited and from a cursor up to a page end; the rows in key order, each once. Then random
    /// filters in random page sizes, whole and paged through as the server pages.
    @Test func pagesOfAnySizeGiveTheSameDownload() async throws {
        let dir = try Paths.temporaryDirectory()
        var csv = "station,name,lon,lat,time,t,h\n"
        for (station, lon) in [("S3", "7.1"), ("S1", "7.2"), ("S2", "7.3")] {
            for hour in [5, 0, 3, 1, 4, 2, 6] {
                csv += "\(station),\(station),\(lon),51.0,2024-03-01T0\(hour):00:00Z,\(hour).5,\(hour == 3 ? "" : "4\(hour)")\n"
            }
        }
        let file = try PublishingSamples.write(csv, "pages.csv", in: dir)
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: pages
            tenant: "05515000"
            dataset: { title: Pages, description: Rows in pages of any size., theme: ENVI }
            source: { kind: file, path: \(file), format: { kind: csv } }
            observations:
              station: { id: station, prefix: pages, name: name, coordinates: { lon: lon, lat: lat } }
              time: { field: time, format: iso8601 }
              values:
                - { field: t, property: air_temperature, unit: Cel }
                - { field: h, property: relative_humidity, unit: "%" }
            """, file: file + ".yaml", connectors: BuiltinConnectors.registry)
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            #expect(try await runner.run(spec, trigger: "test").succeeded)
            let connections = ServerConnections(database: db, limit: 2, acquireTimeout: .seconds(30))
            let keys = try await connections.rows("""
                SELECT s.key || '/' || o.property || '/' || to_char(o.phenomenon_start AT TIME ZONE 'UTC', 'HH24')
                FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
                ORDER BY o.station_id, o.property, o.phenomenon_start
                """).map { try $0.decode(String.self) }
            #expect(keys.count == 3 * 13)
            let dataset = try #require(spec.datasetMetadata)
            var cut = ObservationFilter()
            cut.limit = 12
            var bodies: [Int: [String]] = [:]
            for pageRows in [1, 3, 4000] {
                let store = ObservationStore(connections: connections, pageRows: pageRows)
                let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: spec.name))
                func download(_ filter: ObservationFilter, through: ObservationCursor? = nil) async throws -> [String] {
                    var out: [UInt8] = []
                    let count = try await store.writeObservations(dataset, snapshot: snapshot, filter: filter, through: through,
                                                                  encoder: ObservationEncoder(format: .csv)) { out += Array($0.readableBytesView) }
                    let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").dropFirst().map { line in
                        let f = line.split(separator: ",", omittingEmptySubsequences: false)
                        return "\(f[0])/\(f[2])/\(f[4].dropFirst(11).prefix(2))"
                    }
                    #expect(lines.count == count)
                    return lines
                }
                let whole = try await download(ObservationFilter())
                #expect(whole == keys, "pageRows \(pageRows)")
                let first = try await download(cut)
                #expect(first == Array(keys.prefix(12)), "pageRows \(pageRows)")
                // The second page of 12, as the server serves it: after the first page's end, through its own.
                let firstEnd = try #require(try await store.pageEnd(pipeline: spec.name, filter: cut))
                var second = cut
                second.cursor = firstEnd
                let secondEnd = try await store.pageEnd(pipeline: spec.name, filter: second)
                let middle = try await download(second, through: secondEnd)
                #expect(middle == Array(keys[12..<24]), "pageRows \(pageRows)")
                bodies[pageRows] = whole + first + middle
            }
            #expect(bodies[1] == bodies[4000] && bodies[3] == bodies[4000])

            // Random filters (stations, properties, a time window, a bbox) in random page sizes, whole and paged
            // through with `limit` as the server pages: exactly the whole download's rows that pass, in its order.
            let longitudes = ["pages:S3": 7.1, "pages:S1": 7.2, "pages:S2": 7.3]
            let base: Int64 = 1_709_251_200_000_000   // 2024-03-01T00:00Z
            var random = SplitMix(seed: 0x5EED_D0_0D)
            for round in 0..<40 {
                var filter = ObservationFilter()
                filter.stations = longitudes.keys.sorted().filter { _ in Bool.random(using: &random) }
                filter.properties = ["air_temperature", "relative_humidity"].filter { _ in Bool.random(using: &random) }
                if Bool.random(using: &random) {
                    let from = Int64.random(in: 0...6, using: &random)
                    filter.from = base + from * 3_600_000_000
                    filter.to = base + Int64.random(in: (from + 1)...7, using: &random) * 3_600_000_000
                }
                if Bool.random(using: &random) {
                    filter.bbox = BoundingBox(minLongitude: 7.15, minLatitude: 50, maxLongitude: 7.35, maxLatitude: 52)
                }
                let expected = keys.filter { key in
                    let parts = key.split(separator: "/").map(String.init)
                    let micros = base + Int64(parts[2])! * 3_600_000_000
                    return (filter.stations.isEmpty || filter.stations.contains(parts[0]))
                        && (filter.properties.isEmpty || filter.properties.contains(parts[1]))
                        && filter.from.map { micros >= $0 } ?? true && filter.to.map { micros < $0 } ?? true
                        && filter.bbox.map { (7.15...7.35).contains(longitudes[parts[0]]!) && $0.minLatitude <= 51 } ?? true
                }
                let pageRows = Int.random(in: 1...5, using: &random)
                let store = ObservationStore(connections: connections, pageRows: pageRows)
                let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: spec.name))
                func download(_ filter: ObservationFilter, through: ObservationCursor? = nil) async throws -> [String] {
                    var out: [UInt8] = []
                    _ = try await store.writeObservations(dataset, snapshot: snapshot, filter: filter, through: through,
                                                          encoder: ObservationEncoder(format: .csv)) { out += Array($0.readableBytesView) }
                    return String(decoding: out, as: UTF8.self).split(separator: "\n").dropFirst().map { line in
                        let f = line.split(separator: ",", omittingEmptySubsequences: false)
                        return "\(f[0])/\(f[2])/\(f[4].dropFirst(11).prefix(2))"
                    }
                }
                #expect(try await download(filter) == expected, "round \(round), pages of \(pageRows): \(filter)")
                var paged = filter
                paged.limit = Int.random(in: 1...10, using: &random)
                var joined: [String] = []
                var pages = 0
                repeat {
                    let end = try await store.pageEnd(pipeline: spec.name, filter: paged)
                    joined += try await download(paged, through: end)
                    paged.cursor = end
                    pages += 1
                } while paged.cursor != nil && pages < 100
                #expect(joined == expected, "round \(round), pages of \(pageRows), limit \(paged.limit!): \(filter)")
            }
            await connections.shutdown()
        }
    }
}
