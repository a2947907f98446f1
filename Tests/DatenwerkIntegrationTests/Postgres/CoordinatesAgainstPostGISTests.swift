import DatenwerkCore
import DatenwerkPipeline
import Foundation
import DatenwerkPostgres
import DatenwerkTesting
import DatenwerkTransforms
import PostgresNIO
import Testing

/// Our transverse Mercator (used for dry runs and golden files) against PostGIS `ST_Transform` (what the
/// database stores): they must agree to 1 cm on reference points across Germany.
@Suite struct CoordinatesAgainstPostGISTests {
    // Easting/northing in ETRS89 / UTM 32N (EPSG:25832) and 33N (EPSG:25833).
    static let utm32: [(String, Double, Double)] = [
        ("Münster Dom", 405_328.42, 5_757_524.87),
        ("Freiburg Münster", 414_280.0, 5_317_880.0),
        ("Kiel Rathaus", 574_370.0, 6_020_150.0),
        ("München Marienplatz", 691_600.0, 5_334_760.0),
        ("Aachen (west edge)", 294_500.0, 5_628_100.0),
        ("Görlitz (far east of zone 32)", 1_000_500.0, 5_680_000.0),
    ]
    static let utm33: [(String, Double, Double)] = [
        ("Berlin Alexanderplatz", 392_000.0, 5_820_500.0),
        ("Dresden Frauenkirche", 411_600.0, 5_656_800.0),
    ]

    @Test(arguments: [25832, 25833])
    func agreesWithPostGISToACentimetre(epsg: Int) async throws {
        let points = epsg == 25832 ? Self.utm32 : Self.utm33
        try await TestDatabase.with { db in
            for (name, x, y) in points {
                let ours = try CoordinateTransform.toWGS84(x: x, y: y, epsg: epsg)
                let rows = try await db.client.query("""
                    SELECT ST_Distance(ST_SetSRID(ST_MakePoint(\(ours.longitude)::float8, \(ours.latitude)::float8), 4326)::geography,
                                       ST_Transform(ST_SetSRID(ST_MakePoint(\(x)::float8, \(y)::float8), \(epsg)::int), 4326)::geography)
                    """, logger: db.logger).decode(Double.self).collect()
                let metres = try #require(rows.first)
                #expect(metres < 0.01, "\(name): \(metres) m from PostGIS")
            }
        }
    }

    /// Gauss-Krüger (DHDN) goes through a grid shift in PostGIS (BETA2007): the stored geometry comes from PostGIS
    /// itself, and our Helmert transform (for dry runs) stays within its documented ~3 m of it.
    @Test func gaussKruegerIsStoredAsPostGISComputesIt() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            try Data("id;x;y;t;v\nGK;3405380;5759260;2024-05-01T00:00:00Z;1\n".utf8).write(to: URL(fileURLWithPath: dir + "/gk.csv"))
            let s = try spec("""
                version: 1
                name: gk
                tenant: "05515000"
                source: { kind: file, path: gk.csv, format: { kind: csv, delimiter: ";" } }
                observations:
                  station: { id: id, coordinates: { x: x, y: y, crs: "EPSG:31467" } }
                  time: { field: t, format: iso8601 }
                  values: [{ field: v, property: vehicle_count }]
                """, in: dir)
            let report = try await PostgresSinkTests.run(s, db)
            #expect(report.succeeded)
            let rows = try await db.client.query("""
                SELECT ST_Distance(geom::geography, ST_Transform(ST_SetSRID(ST_MakePoint(3405380, 5759260), 31467), 4326)::geography),
                       ST_X(geom), ST_Y(geom)
                FROM datenwerk.stations WHERE key = 'gk:GK'
                """, logger: db.logger).decode((Double, Double, Double).self).collect()
            let (stored, lon, lat) = try #require(rows.first)
            #expect(stored < 0.001)
            let ours = try CoordinateTransform.toWGS84(x: 3_405_380, y: 5_759_260, epsg: 31467)
            let dx = (ours.longitude - lon) * 111_320 * 0.616, dy = (ours.latitude - lat) * 111_320
            #expect((dx * dx + dy * dy).squareRoot() < 3.5)
        }
    }
}
