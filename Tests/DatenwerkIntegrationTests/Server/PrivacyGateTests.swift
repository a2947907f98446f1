import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// The privacy gate (`min_count`, docs/privacy.md) against a real database and the real server: a counts
/// dataset with `min_count: 5` and values 0, 1, 3, 4, 5, 6, 12 across hours (an hourly station, and a
/// 10-minute station whose hours hold mixed values), next to a dataset without a gate. Every expectation is
/// computed here from the input: a value is suppressed when it is not 0 and below 5; an hour or day when any
/// value it is computed from is.
@Suite(.serialized) struct PrivacyGateTests {
    static let minCount = 5
    static let hour: Int64 = 3_600_000_000
    static let minute: Int64 = 60_000_000
    /// 2024-01-01T00:00Z (01:00 in Berlin).
    static let t0: Int64 = 1_704_067_200_000_000

    static func spec(_ name: String, minCount: Int?) throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: \(name)
            tenant: "05515000"
            dataset:
              title: Zählstellen \(name)
              description: Testdaten.
            \(minCount.map { "  min_count: \($0)" } ?? "")
            source: { kind: file, path: unused.csv, format: { kind: csv } }
            observations:
              station: { id: id }
              time: { field: t, format: iso8601 }
              values: [{ field: v, property: pedestrian_count }]
            """, file: "/tmp/\(name).yaml", connectors: BuiltinConnectors.registry)
    }

    struct Value: Hashable {
        var station: String
        var start: Int64
        var value: Double
    }

    static let counts: [Double] = [0, 1, 3, 4, 5, 6, 12]

    /// The gated dataset's input: `privacy:A` hourly over two Berlin days, cycling through `counts`;
    /// `privacy:B` every 10 minutes for 6 hours, whose hours are: all ≥ 5; 0 and ≥ 5 (published); 0 and a
    /// value below 5 (minimum 0: only the rows tell); a minimum below 5; all 0; 0 and 12 with a 4.
    static let gated: [Value] = {
        var values = (0..<48).map { Value(station: "privacy:A", start: t0 + Int64($0) * hour, value: counts[$0 % counts.count]) }
        let hours: [[Double]] = [[5, 6, 12, 5, 7, 9], [0, 6, 0, 12, 0, 5], [0, 3, 0, 7, 0, 0], [2, 9, 6, 5, 5, 8], [0, 0, 0, 0, 0, 0], [0, 12, 4, 12, 0, 6]]
        for (h, six) in hours.enumerated() {
            for (i, v) in six.enumerated() {
                values.append(Value(station: "privacy:B", start: t0 + Int64(h) * hour + Int64(i) * 10 * minute, value: v))
            }
        }
        // `privacy:D` ends with a value below the gate (its latest value is suppressed).
        values += [Value(station: "privacy:D", start: t0, value: 12), Value(station: "privacy:D", start: t0 + hour, value: 3)]
        return values
    }()

    /// The open dataset's input: the same counts, no gate.
    static let open: [Value] = (0..<14).map { Value(station: "open:C", start: t0 + Int64($0) * hour, value: counts[$0 % counts.count]) }

    static func suppressed(_ v: Double) -> Bool { v != 0 && v < Double(minCount) }

    static func load(_ db: Database, _ spec: PipelineSpec, _ values: [Value]) async throws {
        let sink = PostgresObservationSink(database: db)
        let runID = try await sink.beginRun(pipeline: spec, context: RunContext(trigger: "test"))
        let items: [StagedItem] = Set(values.map(\.station)).sorted().map { .station(Station(key: $0)) }
            + values.map { .observation(Observation(stationKey: $0.station, property: "pedestrian_count", phenomenonStart: $0.start, result: $0.value)) }
        var totals = RunTotals()
        totals.observations = values.count
        let t = totals
        let feed = LoadPathTests.Feed([items])
        _ = try await sink.load(runID: runID, pipeline: spec, context: RunContext(trigger: "test"), next: { feed.next()?.1 }, totals: { t })
    }

    /// An aggregate as the views must publish it: nil values when any input is suppressed.
    struct Bucket: Equatable, CustomStringConvertible {
        var n: Int
        var avg, min, max, sum: Double?
        var suppressed: Bool

        init(_ values: [Double], gated: Bool) {
            n = values.count
            suppressed = gated && values.contains(where: PrivacyGateTests.suppressed)
            if !suppressed {
                let total = values.reduce(0, +)
                avg = total / Double(values.count)
                min = values.min()
                max = values.max()
                sum = total
            }
        }

        init(n: Int, avg: Double?, min: Double?, max: Double?, sum: Double?, suppressed: Bool) {
            (self.n, self.avg, self.min, self.max, self.sum, self.suppressed) = (n, avg, min, max, sum, suppressed)
        }

        static func == (a: Bucket, b: Bucket) -> Bool {
            func close(_ x: Double?, _ y: Double?) -> Bool {
                switch (x, y) {
                case (nil, nil): return true
                case (let x?, let y?): return abs(x - y) <= 1e-9 * Swift.max(1, abs(y))
                default: return false
                }
            }
            return a.n == b.n && a.suppressed == b.suppressed && close(a.avg, b.avg) && close(a.min, b.min) && close(a.max, b.max) && close(a.sum, b.sum)
        }

        var description: String {
            func text(_ x: Double?) -> String { x.map { "\($0)" } ?? "nil" }
            return "n=\(n) avg=\(text(avg)) min=\(text(min)) max=\(text(max)) sum=\(text(sum)) suppressed=\(suppressed)"
        }
    }

    static func berlinDay(_ micros: Int64) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        let c = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(micros) / 1e6))
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    /// Expected buckets keyed by "station|bucket".
    static func expected(_ values: [Value], gated: Bool, key: (Value) -> String) -> [String: Bucket] {
        Dictionary(grouping: values, by: { "\($0.station)|\(key($0))" }).mapValues { Bucket($0.map(\.value), gated: gated) }
    }

    static func viewBuckets(_ db: Database, _ sql: String) async throws -> [String: Bucket] {
        var out: [String: Bucket] = [:]
        let rows = try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger)
        for try await row in rows {
            let cells = try row.decode((String, String, Int64, Double?, Double?, Double?, Double?, Bool).self)
            out["\(cells.0)|\(cells.1)"] = Bucket(n: Int(cells.2), avg: cells.3, min: cells.4, max: cells.5, sum: cells.6, suppressed: cells.7)
        }
        return out
    }

    static func differences(_ actual: [String: Bucket], _ expected: [String: Bucket]) -> [String] {
        Set(actual.keys).union(expected.keys).sorted().compactMap { key in
            actual[key] == expected[key] ? nil : "\(key): got \(actual[key].map(String.init(describing:)) ?? "none"), expected \(expected[key].map(String.init(describing:)) ?? "none")"
        }
    }

    @Test func theGateSuppressesExactlyTheValuesBelowMinCountInDownloadsAndAggregates() async throws {
        try await TestDatabase.with { db in
            let gatedSpec = try Self.spec("privacy", minCount: Self.minCount)
            let openSpec = try Self.spec("open", minCount: nil)
            #expect(gatedSpec.datasetMetadata?.minCount == Self.minCount)
            #expect(openSpec.datasetMetadata?.minCount == nil)
            try await Self.load(db, gatedSpec, Self.gated)
            try await Self.load(db, openSpec, Self.open)
            let all = Self.gated.map { ($0, true) } + Self.open.map { ($0, false) }

            // The input has every kind of value and of hour the rule distinguishes.
            #expect(Set(Self.gated.map(\.value)).isSuperset(of: Self.counts))
            let hourKey: (Value) -> String = { "\(($0.start - Self.t0) / Self.hour)" }
            let expectedHourly = Self.expected(Self.gated, gated: true, key: hourKey).merging(Self.expected(Self.open, gated: false, key: hourKey)) { a, _ in a }
            #expect(expectedHourly.values.contains { $0.suppressed } && expectedHourly.values.contains { !$0.suppressed && $0.min == 0 && $0.max ?? 0 > 0 })

            // datenwerk_api.hourly
            let hourly = try await Self.viewBuckets(db, """
                SELECT station_key, ((extract(epoch FROM hour) * 1000000)::int8 - \(Self.t0)) / \(Self.hour) || '', n::int8, avg, min, max, sum, suppressed
                FROM datenwerk_api.hourly
                """)
            #expect(Self.differences(hourly, expectedHourly) == [])

            // datenwerk_api.daily (Europe/Berlin days)
            let dayKey: (Value) -> String = { Self.berlinDay($0.start) }
            let expectedDaily = Self.expected(Self.gated, gated: true, key: dayKey).merging(Self.expected(Self.open, gated: false, key: dayKey)) { a, _ in a }
            let daily = try await Self.viewBuckets(db, "SELECT station_key, day::text, n::int8, avg, min, max, sum, suppressed FROM datenwerk_api.daily")
            #expect(Self.differences(daily, expectedDaily) == [])

            // datenwerk_api.latest and datenwerk_api.observations
            for station in ["privacy:A", "privacy:B", "open:C", "privacy:D"] {
                let last = all.filter { $0.0.station == station }.max { $0.0.start < $1.0.start }!
                let rows = try await db.client.query("SELECT result, suppressed FROM datenwerk_api.latest WHERE station_key = \(station)", logger: db.logger)
                    .decode((Double?, Bool).self).collect()
                let hidden = last.1 && Self.suppressed(last.0.value)
                #expect(rows.count == 1 && rows[0].1 == hidden && rows[0].0 == (hidden ? nil : last.0.value), "latest of \(station): \(rows)")
            }
            var observed: [String: (Double?, Bool)] = [:]
            for try await (station, start, result, hidden) in try await db.client.query("""
                SELECT station_key, (extract(epoch FROM phenomenon_start) * 1000000)::int8, result, suppressed FROM datenwerk_api.observations
                """, logger: db.logger).decode((String, Int64, Double?, Bool).self) {
                observed["\(station)|\(start)"] = (result, hidden)
            }
            #expect(observed.count == all.count)
            for (value, gated) in all {
                let hidden = gated && Self.suppressed(value.value)
                let row = observed["\(value.station)|\(value.start)"]
                #expect(row?.1 == hidden && row?.0 == (hidden ? nil : value.value), "observations \(value): \(String(describing: row))")
            }

            // The downloads, in every format, through the real server.
            let server = try await PublishingServer.start(database: db, pipelines: [gatedSpec, openSpec])
            do {
                for (dataset, values, gated) in [("privacy", Self.gated, true), ("open", Self.open, false)] {
                    let expectedCells = values.map { v in (v.station, (gated && Self.suppressed(v.value)) ? nil : v.value) }

                    let csv = try await server.get("/datasets/\(dataset)/observations.csv")
                    #expect(csv.status == 200, "\(csv.text)")
                    guard csv.status == 200 else { continue }
                    let lines = csv.text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                    #expect(lines.first?[6] == "value" && lines.first?[7] == "quality")
                    let csvCells = lines.dropFirst().map { $0.count == 10 ? ($0[0], Double($0[6]), $0[7]) : ("bad line", nil, "") }
                    #expect(csvCells.count == values.count, "\(dataset).csv rows")
                    #expect(csvCells.map(\.0) == expectedCells.map(\.0) && csvCells.map(\.1) == expectedCells.map(\.1), "\(dataset).csv values")
                    #expect(csvCells.allSatisfy { ($0.1 == nil) == ($0.2 == DatasetMetadata.suppressedQuality) }, "\(dataset).csv marker")
                    #expect(csvCells.allSatisfy { $0.1 != nil || $0.2 == "suppressed" })

                    let geojson = try await server.get("/datasets/\(dataset)/observations.geojson")
                    #expect(geojson.status == 200)
                    let collection = try JSONSerialization.jsonObject(with: Data(geojson.body)) as? [String: Any]
                    let features = (collection?["features"] as? [[String: Any]] ?? []).map { $0["properties"] as? [String: Any] ?? [:] }
                    let geoCells = features.map { ($0["station_id"] as? String ?? "", $0["value"] as? Double, $0["quality"] as? String) }
                    #expect(geoCells.count == values.count, "\(dataset).geojson rows")
                    #expect(geoCells.map(\.0) == expectedCells.map(\.0) && geoCells.map(\.1) == expectedCells.map(\.1), "\(dataset).geojson values")
                    #expect(features.allSatisfy { ($0["value"] is NSNull) == ($0["quality"] as? String == "suppressed") }, "\(dataset).geojson null + marker")

                    let ndjson = try await server.get("/datasets/\(dataset)/observations.ndjson")
                    let objects = try PublishingServer.objects(ndjson.body)
                    #expect(objects.map { $0["value"] as? Double } == expectedCells.map(\.1), "\(dataset).ndjson values")

                    // OGC API – Features: the same cells.
                    let items = try await server.get("/ogcapi/collections/\(dataset)-observations/items?limit=1000")
                    let ogc = ((try JSONSerialization.jsonObject(with: Data(items.body)) as? [String: Any])?["features"] as? [[String: Any]] ?? [])
                        .map { ($0["properties"] as? [String: Any])?["result"] as? Double }
                    #expect(ogc == expectedCells.map(\.1), "\(dataset) OGC API observations")
                }

                // OGC API – Features: the stations' latest values (D's is suppressed), and no "nan" in the HTML view.
                let stations = try await server.get("/ogcapi/collections/privacy-stations/items")
                let latest = ((try JSONSerialization.jsonObject(with: Data(stations.body)) as? [String: Any])?["features"] as? [[String: Any]] ?? [])
                    .compactMap { $0["properties"] as? [String: Any] }
                #expect(latest.count == 3)
                for properties in latest {
                    let key = properties["key"] as? String ?? ""
                    let last = Self.gated.filter { $0.station == key }.max { $0.start < $1.start }!
                    #expect((properties["pedestrian_count"] is NSNull) == Self.suppressed(last.value), "\(properties)")
                    if !Self.suppressed(last.value) { #expect(properties["pedestrian_count"] as? Double == last.value) }
                }
                let html = try await server.get("/ogcapi/collections/privacy-observations/items?f=html&limit=1000").text
                #expect(html.contains("suppressed") && !html.lowercased().contains("nan<"), "\(html.prefix(300))")

                // The rule is stated in the DCAT record (judged by the DCAT-AP.de validator, all three formats) and on the page.
                let note = try #require(gatedSpec.datasetMetadata?.privacyNote(german: true))
                #expect(note.contains("unter 5"))
                for ext in ["ttl", "rdf", "jsonld"] {
                    let run = try await Judge.dcat(server.baseURL + "/datasets/privacy/dcat.\(ext)")
                    #expect(run.passed, "dcat.\(ext): \(run)")
                }
                let turtle = try await server.get("/datasets/privacy/dcat.ttl").text
                #expect(turtle.contains("Datenschutz: Zählwerte unter 5") && turtle.contains("dct:rights") && turtle.contains("dct:RightsStatement"))
                let openTurtle = try await server.get("/datasets/open/dcat.ttl").text
                #expect(!openTurtle.contains("Datenschutz") && !openTurtle.contains("dct:rights"))
                let page = try await server.get("/datasets/privacy", headers: [("Accept", "text/html")]).text
                #expect(page.contains("Zählwerte unter 5 (außer 0) werden nicht veröffentlicht"), "\(page.prefix(300))")
                let openPage = try await server.get("/datasets/open", headers: [("Accept", "text/html")]).text
                #expect(openPage.contains("<html") && !openPage.contains("Datenschutz:"))
                // The CSV with empty cells still passes the CSV validator against its Table Schema.
                let served = try await server.get("/datasets/privacy/datapackage.json")
                let json = try #require(try JSONSerialization.jsonObject(with: Data(served.body)) as? [String: Any])
                let resources = try #require(json["resources"] as? [[String: Any]])
                let schema = try #require(resources.first { $0["name"] as? String == "observations" }?["schema"])
                let schemaFile = try PublishingServer.save(Array(try JSONSerialization.data(withJSONObject: schema)), as: "schema.json")
                let csvRun = try await Judge.csv(server.baseURL + "/datasets/privacy/observations.csv", schema: schemaFile)
                #expect(csvRun.passed, "\(csvRun)")

                // SensorThings: no result below the gate, not even through a $filter on it.
                let sta = try await server.get("/sta/v1.1/Observations?$filter=result%20gt%200%20and%20result%20lt%205&$top=1000")
                #expect(sta.status == 200)
                let results = ((try JSONSerialization.jsonObject(with: Data(sta.body)) as? [String: Any])?["value"] as? [[String: Any]] ?? [])
                    .map { $0["result"] as? Double }
                #expect(results.count == Self.open.filter { Self.suppressed($0.value) }.count, "STA \(results)")
                let everything = try await server.get("/sta/v1.1/Observations?$top=1000")
                let staAll = ((try JSONSerialization.jsonObject(with: Data(everything.body)) as? [String: Any])?["value"] as? [[String: Any]] ?? [])
                #expect(staAll.count == all.count)
                #expect(staAll.filter { $0["result"] is NSNull }.count == Self.gated.filter { Self.suppressed($0.value) }.count)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()

            // Removing `min_count` from the spec lifts the gate at the next load.
            try await Self.load(db, try Self.spec("privacy", minCount: nil), [])
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk_api.hourly WHERE suppressed") == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.private_series") == 0)
            // Adding it to a pipeline that loaded before gates its stored rows from its next load on (a load without rows).
            try await Self.load(db, try Self.spec("open", minCount: Self.minCount), [])
            let openSuppressed = Int64(Self.open.filter { Self.suppressed($0.value) }.count)
            #expect(openSuppressed > 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk_api.hourly WHERE suppressed AND station_key = 'open:C' AND avg IS NULL") == openSuppressed)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk_api.hourly WHERE suppressed") == openSuppressed)
        }
    }

    @Test func minCountIsAPositiveWholeNumber() throws {
        for (text, message) in [("0", "'min_count' must be between 1 and 1000000, found 0"), ("many", "expected a whole number")] {
            let yaml = """
                version: 1
                name: bad
                tenant: "05515000"
                dataset: { title: T, description: D, min_count: \(text) }
                source: { kind: file, path: unused.csv, format: { kind: csv } }
                observations:
                  station: { id: id }
                  time: { field: t, format: iso8601 }
                  values: [{ field: v, property: pedestrian_count }]
                """
            #expect(throws: (any Error).self) { try PipelineSpec.parse(yaml: yaml, file: "/tmp/bad.yaml", connectors: BuiltinConnectors.registry) }
            do {
                _ = try PipelineSpec.parse(yaml: yaml, file: "/tmp/bad.yaml", connectors: BuiltinConnectors.registry)
            } catch {
                #expect(String(describing: error).contains(message), "\(error)")
            }
        }
    }
}
