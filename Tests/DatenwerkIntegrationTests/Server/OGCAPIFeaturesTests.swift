import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// OGC API – Features at `/ogcapi` on the example pipelines' data (klima: 1150 observations, energie: 143, and a
/// restricted copy of energie that is not served): the outside probe (GDAL's OAPIF driver, OWSLib, the HTTP checks
/// of OGC 17-069r4) finds no failure; hostile parameters get 400 and change nothing; paging reaches every row.
@Suite("OGC API – Features", .serialized)
struct OGCAPIFeaturesTests {
    static let ci = ProcessInfo.processInfo.environment["CI"] == "true"

    @Test("probe-ogcapi-features.sh (GDAL OAPIF, OWSLib, HTTP checks) against every collection: 0 FAIL")
    func probe() async throws {
        try await PublishingServer.with { server, _ in
            let url = server.baseURL + "/ogcapi"
            let run = try await Validators.ogcapiFeatures(url: url, arguments: ["--all-collections"])
            #expect(run.errors == 0, "\(run)")
            #expect(run.status == 0, "\(run)")
            // GDAL or OWSLib missing is a SKIP in the probe: a failure under CI, where they are installed.
            if Self.ci { #expect(run.skipped.isEmpty, "\(run.skipped)") }
            // Every collection was probed, restricted datasets were not listed.
            #expect(run.output.contains("-- Collection 'musterstadt-klima-observations'"))
            #expect(run.output.contains("-- Collection 'musterstadt-energie-stations'"))
            #expect(!run.output.contains("musterstadt-intern"))
            print("probe-ogcapi-features.sh: \(run.summaryLine ?? "no summary")")
        }
    }

    @Test("hostile bbox, datetime, limit, cursor and unknown parameters: 400 naming the parameter, the database unchanged")
    func hostileParameters() async throws {
        try await PublishingServer.with { server, db in
            let before = try await Self.tableCounts(db)
            let items = ["/ogcapi/collections/musterstadt-klima-observations/items", "/ogcapi/collections/musterstadt-klima-stations/items"]
            let hostile: [(String, String)] = [
                ("bbox", "1,2,3"), ("bbox", "1,2,3,4,5"), ("bbox", "7,51,8,52'; DROP TABLE datenwerk.observations; --"),
                ("bbox", "NaN,51,8,52"), ("bbox", "nan,51,8,52"), ("bbox", "inf,51,8,52"), ("bbox", "1e400,51,8,52"), ("bbox", "0x10,51,8,52"),
                ("bbox", "7,51,8,52)) OR 1=1 --"), ("bbox", String(repeating: "[", count: 5000)), ("bbox", "7,91,8,92"), ("bbox", "7,52,8,51"),
                ("bbox", "181,51,182,52"), ("bbox", String(repeating: "9", count: 400) + ",51,8,52"), ("bbox", ",,,"), ("bbox", "7,51,8,52,"),
                ("datetime", "not-a-date"), ("datetime", "2024-13-01T00:00:00Z"), ("datetime", "2024-02-30"), ("datetime", "2024-06-01T25:00:00Z"),
                ("datetime", "2024-06-01T00:00:00"), ("datetime", "../.."), ("datetime", "/"), ("datetime", "2024-06-02/2024-06-01"),
                ("datetime", "2024-06-01T00:00:00Z'; DELETE FROM datenwerk.stations; --"), ("datetime", "2024-06-01/2024-06-02/2024-06-03"),
                ("datetime", String(repeating: "(", count: 10000)), ("datetime", "99999-01-01T00:00:00Z"), ("datetime", "1e400"),
                ("limit", "0"), ("limit", "-1"), ("limit", "1.5"), ("limit", "1e400"), ("limit", "NaN"), ("limit", "10; DROP TABLE x"), ("limit", ""),
                ("cursor", "not a cursor"), ("cursor", "'; --"),
                ("f", "xml"), ("no-such-parameter", "1"), ("filter", "1=1"), ("limit=5&limit", "6"),
            ]
            // A well-formed token whose observation key holds a time beyond Int64 (a station key may be any text).
            let forged = [("cursor", "MSxuLDEsOTk5OTk5OTk5OTk5OTk5OTk5OTksYWlyX3RlbXBlcmF0dXJl")]
            for path in items {
                for (name, value) in hostile + (path == items[0] ? forged : []) {
                    let answer = try await server.get(path + "?" + name + "=" + Self.encode(value))
                    #expect(answer.status == 400, "\(path) \(name)=\(value.prefix(60)): \(answer.status) \(answer.text.prefix(200))")
                    #expect(answer.header("Content-Type")?.hasPrefix("application/problem+json") == true)
                }
            }
            // An unknown feature or collection: 404; a huge limit is read as the maximum (OGC 17-069r4 §7.15.2).
            #expect(try await server.get(items[0] + "/99999999.air_temperature.1").status == 404)
            #expect(try await server.get(items[0] + "/1;DROP TABLE x").status == 404)
            #expect(try await server.get("/ogcapi/collections/musterstadt-intern-stations").status == 404)
            #expect(try await server.get("/ogcapi/collections/nothing-stations/items").status == 404)
            let huge = try await server.get(items[1] + "?limit=" + String(repeating: "9", count: 60))
            #expect(huge.status == 200)
            #expect(try await Self.tableCounts(db) == before)
        }
    }

    @Test("paging with next links reaches every row once, numberMatched is exact, prev leads back")
    func paging() async throws {
        try await PublishingServer.with { server, db in
            for (collection, rows) in [("musterstadt-energie-observations", try await Self.observationRows(db, pipeline: "musterstadt-energie")),
                                       ("musterstadt-klima-stations", try await Self.stationRows(db, pipeline: "musterstadt-klima"))] {
                var path: String? = "/ogcapi/collections/\(collection)/items?limit=7"
                var ids: [String] = []
                var pages: [[String]] = []
                var matched: Int?
                while let p = path {
                    let answer = try await server.get(p)
                    #expect(answer.status == 200)
                    #expect(answer.header("Content-Type")?.hasPrefix("application/geo+json") == true)
                    let page = try Self.object(answer.body)
                    let features = try #require(page["features"] as? [[String: Any]])
                    #expect(features.count <= 7)
                    #expect(page["numberReturned"] as? Int == features.count)
                    matched = page["numberMatched"] as? Int ?? matched
                    let pageIDs = features.compactMap { $0["id"] as? String }
                    ids += pageIDs
                    pages.append(pageIDs)
                    path = Self.link(page, "next", server: server)
                    if pages.count == 2 {
                        // prev from page 2 gives page 1 again.
                        let prev = try #require(Self.link(page, "prev", server: server))
                        let back = try Self.object(try await server.get(prev).body)
                        #expect(((back["features"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String } == pages[0])
                    }
                    if pages.count > 1000 { break }
                }
                #expect(ids.count == rows, "\(collection)")
                #expect(Set(ids).count == ids.count, "\(collection): duplicate ids")
                #expect(matched == rows, "\(collection)")
            }
        }
    }

    @Test("bbox and datetime select exactly the rows SQL selects; a feature by its id")
    func filters() async throws {
        try await PublishingServer.with { server, db in
            let all = try Self.object(try await server.get("/ogcapi/collections/musterstadt-klima-stations/items?limit=100").body)
            let features = try #require(all["features"] as? [[String: Any]])
            let coordinates = features.compactMap { (($0["geometry"] as? [String: Any])?["coordinates"] as? [Double]) }
            try #require(coordinates.count >= 2)
            let (lon, lat) = (coordinates[0][0], coordinates[0][1])
            let bbox = "\(lon - 0.0001),\(lat - 0.0001),\(lon + 0.0001),\(lat + 0.0001)"
            let inBox = try Self.object(try await server.get("/ogcapi/collections/musterstadt-klima-stations/items?bbox=\(bbox)").body)
            let boxed = try #require(inBox["features"] as? [[String: Any]])
            #expect(boxed.count >= 1 && boxed.count < features.count)
            #expect(inBox["numberMatched"] as? Int == boxed.count)

            // Observations of that box in one day, against SQL.
            let meta = try Self.object(try await server.get("/ogcapi/collections/musterstadt-klima-observations").body)
            let interval = (((meta["extent"] as? [String: Any])?["temporal"] as? [String: Any])?["interval"] as? [[Any]])?.first
            let date = String(try #require(interval?.first as? String).prefix(10))
            let day = "\(date)T00:00:00Z/\(date)T23:59:59Z"
            let expected = try await scalar(db, """
                SELECT count(*) FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
                WHERE o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = 'musterstadt-klima')
                  AND ST_Intersects(s.geom, ST_MakeEnvelope(\(lon - 0.0001), \(lat - 0.0001), \(lon + 0.0001), \(lat + 0.0001), 4326))
                  AND o.phenomenon_start BETWEEN '\(date)T00:00:00Z' AND '\(date)T23:59:59Z'
                """)
            var count = 0
            var path: String? = "/ogcapi/collections/musterstadt-klima-observations/items?limit=1000&bbox=\(bbox)&datetime=\(Self.encode(day))"
            while let p = path {
                let page = try Self.object(try await server.get(p).body)
                for f in (page["features"] as? [[String: Any]]) ?? [] {
                    let start = ((f["properties"] as? [String: Any])?["phenomenon_start"] as? String) ?? ""
                    #expect(start.hasPrefix(date), "\(start)")
                    count += 1
                }
                path = Self.link(page, "next", server: server)
            }
            #expect(count == Int(expected))
            // One observation by its id, with its station's point.
            let first = try Self.object(try await server.get("/ogcapi/collections/musterstadt-klima-observations/items?limit=1").body)
            let id = try #require(((first["features"] as? [[String: Any]])?.first?["id"]) as? String)
            let one = try await server.get("/ogcapi/collections/musterstadt-klima-observations/items/\(id)")
            #expect(one.status == 200)
            #expect(one.header("Content-Type")?.hasPrefix("application/geo+json") == true)
            #expect(try Self.object(one.body)["id"] as? String == id)
        }
    }

    @Test("media types: JSON, GeoJSON, OpenAPI 3.0, HTML by Accept and by f=html")
    func mediaTypes() async throws {
        try await PublishingServer.with { server, _ in
            let landing = try await server.get("/ogcapi/", headers: [("Accept", "application/json")])
            #expect(landing.status == 200)
            #expect(landing.header("Content-Type")?.hasPrefix("application/json") == true)
            let rels = ((try Self.object(landing.body)["links"] as? [[String: Any]]) ?? []).compactMap { $0["rel"] as? String }
            #expect(Set(["self", "service-desc", "conformance", "data"]).isSubset(of: Set(rels)))
            let api = try await server.get("/ogcapi/api")
            #expect(api.header("Content-Type") == "application/vnd.oai.openapi+json;version=3.0")
            #expect((try Self.object(api.body)["openapi"] as? String)?.hasPrefix("3.0") == true)
            let browser = try await server.get("/ogcapi/collections", headers: [("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")])
            #expect(browser.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(browser.text.contains("<a href=\"\(server.baseURL)/ogcapi/collections/musterstadt-klima-stations/items\""))
            let html = try await server.get("/ogcapi/collections/musterstadt-klima-stations/items?f=html&limit=2")
            #expect(html.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(html.text.contains("rel=\"next\""))
            let conformance = try Self.object(try await server.get("/ogcapi/conformance").body)
            #expect((conformance["conformsTo"] as? [String])?.contains("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core") == true)
        }
    }

    @Test("the served catalog links /ogcapi (dcat:accessService, dcat:endpointURL) and validate-dcat.sh finds 0 violations")
    func catalogLinksTheEndpoint() async throws {
        try await PublishingServer.with { server, _ in
            let answer = try await server.get("/catalog.ttl")
            #expect(answer.status == 200)
            #expect(answer.text.contains("dcat:endpointURL <\(server.baseURL)/ogcapi>"))
            #expect(answer.text.contains("<\(server.baseURL)/ogcapi/collections/musterstadt-klima-observations>"))
            let file = try PublishingServer.save(answer.body, as: "catalog.ttl")
            let run = try await Judge.dcat(file)
            #expect(run.status == 0 && run.errors == 0, "\(run)")
            // The endpoint the catalog names answers.
            #expect(try await server.get("/ogcapi/collections/musterstadt-klima-observations").status == 200)
        }
    }

    // MARK: Helpers

    static func object(_ body: [UInt8]) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { throw TestFailure("not a JSON object") }
        return object
    }

    static func link(_ document: [String: Any], _ rel: String, server: ServerHarness) -> String? {
        guard let href = ((document["links"] as? [[String: Any]]) ?? []).first(where: { $0["rel"] as? String == rel })?["href"] as? String else { return nil }
        return href.hasPrefix(server.baseURL) ? String(href.dropFirst(server.baseURL.count)) : href
    }

    static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~,:"))) ?? value
    }

    static func observationRows(_ db: Database, pipeline: String) async throws -> Int {
        Int(try await scalar(db, "SELECT count(*) FROM datenwerk.observations WHERE run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = '\(pipeline)')"))
    }

    static func stationRows(_ db: Database, pipeline: String) async throws -> Int {
        Int(try await scalar(db, "SELECT count(DISTINCT station_id) FROM datenwerk.observations WHERE run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = '\(pipeline)')"))
    }

    /// Rows of every table a request could touch, and the tables themselves.
    static func tableCounts(_ db: Database) async throws -> [Int64] {
        [
            try await scalar(db, "SELECT count(*) FROM datenwerk.observations"),
            try await scalar(db, "SELECT count(*) FROM datenwerk.stations"),
            try await scalar(db, "SELECT count(*) FROM datenwerk.series"),
            try await scalar(db, "SELECT count(*) FROM datenwerk.runs"),
            try await scalar(db, "SELECT count(*) FROM datenwerk.observed_properties"),
            try await scalar(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'datenwerk'"),
        ]
    }
}
