import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import PostgresNIO
import Testing

/// Loads into a real PostgreSQL + PostGIS (a fresh database per test).
@Suite struct PostgresSinkTests {
    /// `full`: read the files even when they did not change since the last successful run (`--full`).
    static func run(_ spec: PipelineSpec, _ db: Database, full: Bool = false) async throws -> RunReport {
        try await PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db)).run(spec, context: RunContext(trigger: "test", full: full))
    }

    @Test func reRunningTheSameInputChangesNoRowCounts() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let energie = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-energie.yaml"))
            let first = try await Self.run(klima, db)
            #expect(first.succeeded)
            #expect(first.load.inserted == 1150)
            _ = try await Self.run(energie, db)
            let before = try await counts(db)
            #expect(before == Counts(observations: 1150 + 143, stations: 6, quarantine: 3))
            // Read again in full (the files did not change: a plain re-run skips them, see below).
            let again = try await Self.run(klima, db, full: true)
            #expect(again.totals.recordsRead == 289)
            #expect(again.load.inserted == 0)
            #expect(again.load.updated == 0)
            #expect(again.load.unchanged == 1150)
            _ = try await Self.run(energie, db, full: true)
            #expect(try await counts(db) == before)
            // The quarantine remembers how often it saw each bad record instead of duplicating it.
            let seen = try await db.client.query("SELECT seen_count FROM datenwerk.quarantine ORDER BY id", logger: db.logger).decode(Int.self).collect()
            #expect(seen == [2, 2, 2])
            // A plain re-run reads nothing: the files are the ones the last successful runs read.
            let skipped = try await Self.run(klima, db)
            #expect(skipped.succeeded)
            #expect(skipped.totals.recordsRead == 0)
            #expect(skipped.totals.events.count == 1)
            #expect(skipped.totals.events.first?.contains("klima-musterstadt.csv: unchanged since the last successful run") == true)
            #expect(try await counts(db) == before)
        }
    }

    @Test func storesUTCTimesWGS84PointsAndCanonicalUnits() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            _ = try await Self.run(klima, db)
            let rows = try await db.client.query("""
                SELECT to_char(phenomenon_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), unit
                FROM datenwerk.observations_view
                WHERE station_key = 'musterstadt-klima:MS-01' AND property = 'wind_speed'
                  AND phenomenon_start >= '2024-10-26T23:00Z' AND phenomenon_start <= '2024-10-27T02:00Z'
                ORDER BY phenomenon_start
                """, logger: db.logger).decode((String, String).self).collect()
            #expect(rows.map(\.0) == ["2024-10-26T23:00Z", "2024-10-27T00:00Z", "2024-10-27T01:00Z", "2024-10-27T02:00Z"])
            #expect(Set(rows.map(\.1)) == ["m/s"])
            // The database computes the stored point from the source's UTM coordinates with PostGIS.
            let points = try await db.client.query("""
                SELECT ST_SRID(geom), ST_X(geom), ST_Y(geom),
                       ST_Distance(geom::geography, ST_Transform(ST_SetSRID(ST_MakePoint(405328.42, 5757524.87), 25832), 4326)::geography)
                FROM datenwerk.stations WHERE key = 'musterstadt-klima:MS-01'
                """, logger: db.logger).decode((Int, Double, Double, Double).self).collect()
            let (srid, lon, lat, distance) = try #require(points.first)
            #expect(srid == 4326)
            #expect(distance < 0.001)
            // And it agrees with our own transform (used for dry runs) to well under a centimetre.
            let ours = try CoordinateTransform.toWGS84(x: 405328.42, y: 5757524.87, epsg: 25832)
            #expect(abs(ours.longitude - lon) < 1e-8 && abs(ours.latitude - lat) < 1e-8)
            // Monthly partitions were created for the data's months.
            let partitions = try await db.client.query("""
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
                """, logger: db.logger).decode(String.self).collect()
            #expect(partitions == ["observations_y2024m03", "observations_y2024m10"])
        }
    }

    @Test func quarantineKeepsRawPayloadOriginAndReason() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let report = try await Self.run(klima, db)
            let rows = try await db.client.query("""
                SELECT q.origin, q.line, q.field, q.reason, q.raw, q.run_id FROM datenwerk.quarantine q ORDER BY q.line
                """, logger: db.logger).decode((String, Int?, String?, String, String, Int64).self).collect()
            #expect(rows.count == 2)
            #expect(rows[0].0.hasSuffix("SampleData/klima-musterstadt.csv"))
            #expect(rows[0].1 == 145)
            #expect(rows[0].2 == "Datum+Uhrzeit")
            #expect(rows[0].3.contains("does not exist in Europe/Berlin"))
            #expect(rows[0].4 == "MS-01;Münster Domplatz;405328,42;5757524,87;31.03.2024;02:30;3,9;81;1009,4;7,2")
            #expect(rows[1].1 == 208)
            #expect(rows[1].2 == "Wind [km/h]")
            #expect(rows.allSatisfy { $0.5 == report.runID })
        }
    }

    @Test func rawPayloadsSurviveCOPYEscaping() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let nasty = "tab\there\\back\\\\slash \\N not null, \"quoted\nnewline\" ünï €"
            let lines = [
                "{\"id\":\"A\",\"t\":\"2024-05-01T00:00:00Z\",\"v\":1}",
                "{\"id\":\"A\",\"t\":\"2024-05-01T01:00:00Z\",\"v\":\(jsonString(nasty))}",
            ]
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/in.ndjson"))
            let s = try spec("""
                version: 1
                name: escaping
                tenant: "05515000"
                source: { kind: file, path: in.ndjson, format: { kind: ndjson } }
                observations:
                  station: { id: id, name: id }
                  time: { field: t, format: iso8601 }
                  values: [{ field: v, property: vehicle_count }]
                """, in: dir)
            let report = try await Self.run(s, db)
            #expect(report.succeeded)
            let raw = try await db.client.query("SELECT raw, reason FROM datenwerk.quarantine", logger: db.logger).decode((String, String).self).collect()
            #expect(raw.count == 1)
            #expect(raw.first?.0 == lines[1])
            #expect(raw.first?.1 == "'\(nasty)' is not a number")
        }
    }

    @Test func aFailedRunLoadsNothingAndKeepsTheCheckpoint() async throws {
        try await TestDatabase.with { db in
            var klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let ok = try await Self.run(klima, db)
            let checkpoint = try await db.client.query("SELECT cursor::text, run_id FROM datenwerk.checkpoints WHERE pipeline = 'musterstadt-klima'", logger: db.logger).decode((String, Int64).self).collect()
            #expect(checkpoint.first?.1 == ok.runID)
            #expect(checkpoint.first?.0.contains("\"max_phenomenon_start_us\"") == true)
            // Now a run over changed data that has too many bad records: it must not touch anything.
            klima.maxBadRecords = 0
            klima.observations!.values[0].scale = 2   // would change every temperature if it were loaded
            let failed = try await Self.run(klima, db)
            #expect(failed.failure?.step == .transform)
            let history = try await db.client.query("SELECT status, error_step, error FROM datenwerk.runs ORDER BY id", logger: db.logger).decode((String, String?, String?).self).collect()
            #expect(history.map(\.0) == ["succeeded", "failed"])
            #expect(history[1].1 == "transform")
            #expect(history[1].2?.hasPrefix("more than max_bad_records = 0 bad records (1 so far); first: ") == true)
            let after = try await db.client.query("SELECT cursor::text, run_id FROM datenwerk.checkpoints", logger: db.logger).decode((String, Int64).self).collect()
            #expect(after.map(\.1) == [ok.runID])
            let changed = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.observations WHERE run_id = \(failed.runID)", logger: db.logger).decode(Int64.self).collect()
            #expect(changed == [0])
        }
    }

    @Test func aBodyCutOffMidRunLoadsNothing() async throws {
        try await TestDatabase.with { db in
            let page = try Data(contentsOf: URL(fileURLWithPath: Paths.sample("energie-api/page-1.json")))
            let server = try await LoopbackHTTPServer.start { request in
                if request.path.hasSuffix("page-2.json") {
                    return LoopbackHTTPServer.Response(status: 200, body: Array(page), cutAfter: page.count - 200)
                }
                return .file(Paths.sample("energie-api" + request.path))
            }
            defer { Task { try await server.stop() } }
            let s = try spec("""
                version: 1
                name: cut
                tenant: "05515000"
                source:
                  kind: http
                  url: \(server.baseURL)/page-1.json
                  paging: { kind: next_link, next: links.next }
                  format: { kind: json, records: $.items }
                \(HTTPSourceTests.mapping)
                """)
            let report = try await Self.run(s, db)
            #expect(report.failure?.step == .extract)
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 0))
        }
    }
}

struct Counts: Equatable {
    var observations: Int64
    var stations: Int64
    var quarantine: Int64
}

func counts(_ db: Database) async throws -> Counts {
    let rows = try await db.client.query("""
        SELECT (SELECT count(*) FROM datenwerk.observations)::bigint, (SELECT count(*) FROM datenwerk.stations)::bigint,
               (SELECT count(*) FROM datenwerk.quarantine)::bigint
        """, logger: db.logger).decode((Int64, Int64, Int64).self).collect()
    return Counts(observations: rows[0].0, stations: rows[0].1, quarantine: rows[0].2)
}

func jsonString(_ s: String) -> String {
    var out = ""
    JSONValue.writeQuoted(s, to: &out)
    return out
}

extension AsyncSequence {
    func collect() async throws -> [Element] {
        var all: [Element] = []
        for try await element in self { all.append(element) }
        return all
    }
}
