import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

@Suite struct ParkingConnectorTests {
    /// Jena: the WGS84 geometry and the EPSG:25832 `the_geom` (own crs member) give the same places.
    @Test func jenaTwoGeometriesAgree() async throws {
        func stations(_ name: String) throws -> [String: (Double, Double)] {
            let text = try String(contentsOfFile: Golden.fixtures + "/parking/\(name)/expected.ndjson", encoding: .utf8)
            var out: [String: (Double, Double)] = [:]
            for line in text.split(separator: "\n") {
                let v = try JSONParser.parse(Array(line.utf8))
                if let key = v["station"]?.stringValue, let lon = v["lon"]?.numberValue, let lat = v["lat"]?.numberValue { out[key] = (lon, lat) }
            }
            return out
        }
        let wgs = try stations("jena-geojson"), utm = try stations("jena-utm-geometry")
        #expect(wgs.count == 8 && utm.count == 8)
        for (key, (lon, lat)) in wgs {
            let (lon2, lat2) = try #require(utm[key])
            // Within ~1 m (1e-5 degrees).
            #expect(abs(lon - lon2) < 1.5e-5 && abs(lat - lat2) < 1e-5, "\(key): \(lon),\(lat) vs \(lon2),\(lat2)")
        }
    }

    @Test func geoJSONThroughALoopbackServer() async throws {
        let file = Paths.reference("parking/freiburg_pls_live_wfs_epsg25832.geojson")
        let server = try await LoopbackHTTPServer.start { _ in .file(file, contentType: "application/geo+json") }
        defer { Task { try await server.stop() } }
        let sink = try await run("""
            source: { kind: parking, format: wfs-geojson, url: "\(server.baseURL)/wfs?request=getfeature&typename=pls", station_prefix: parking-freiburg }
            """)
        let expected = try String(contentsOfFile: Golden.fixtures + "/parking/freiburg-wfs/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
        // The UTM coordinates are kept as given (easting, northing; not swapped) for PostGIS.
        let p5 = sink.items.compactMap { item -> Station? in if case .station(let s) = item, s.key == "parking-freiburg:P5" { return s } else { return nil } }.first
        #expect(p5?.sourceCoordinates == SourceCoordinates(x: 413824.91185447818134, y: 5317088.866013216786087, epsg: 25832))
    }

    /// NGSI v2 paged with limit/offset: three entities, page size 2 → two requests, the second one short.
    @Test func ngsiV2PagedThroughALoopbackServer() async throws {
        let file = Paths.reference("parking/heidelberg_offstreetparking_ngsiv2.trimmed.json")
        let entities = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        guard case .array(let all) = entities else { Issue.record("not an array"); return }
        let server = try await LoopbackHTTPServer.start { request in
            let offset = Int(request.query["offset"] ?? "0") ?? 0, limit = Int(request.query["limit"] ?? "20") ?? 20
            let page = Array(all.dropFirst(offset).prefix(limit))
            return .text(JSONValue.array(page).serialized, contentType: "application/json")
        }
        defer { Task { try await server.stop() } }
        let sink = try await run("""
            source: { kind: parking, format: ngsi-v2, page_size: 2, url: "\(server.baseURL)/v2/entities?type=OffStreetParking", station_prefix: parking-heidelberg }
            """)
        #expect(server.requests.map { $0.query["offset"] } == ["0", "2"])
        #expect(server.requests.allSatisfy { $0.query["type"] == "OffStreetParking" && $0.query["limit"] == "2" })
        let expected = try String(contentsOfFile: Golden.fixtures + "/parking/heidelberg-ngsi/expected.ndjson", encoding: .utf8)
        // Same items; only the origin (URL instead of file) would differ, and this feed has no quarantine.
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    @Test func badValuesAreQuarantinedNamingTheField() async throws {
        let server = try await LoopbackHTTPServer.start { _ in
            .text("""
                {"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"features":[
                {"type":"Feature","properties":{"park_id":"A","obs_free":"n/a","obs_max":"10","obs_ts":"2024-01-10 08:00:00","obs_state":"1"},"geometry":{"type":"Point","coordinates":[413824.9,5317088.8]}},
                {"type":"Feature","properties":{"park_id":"B","obs_free":"3","obs_max":"10","obs_ts":"10.01.2024","obs_state":"1"},"geometry":{"type":"Point","coordinates":[413824.9,5317088.8]}},
                {"type":"Feature","properties":{"park_id":"C","obs_free":"3","obs_max":"10","obs_ts":"2024-01-10 08:00:00","obs_state":"1"},"geometry":{"type":"Point","coordinates":[413824.9,5317088.8]}}]}
                """, contentType: "application/json")
        }
        defer { Task { try await server.stop() } }
        let sink = try await run("""
            source: { kind: parking, format: wfs-geojson, url: "\(server.baseURL)/x" }
            """)
        let lines = Golden.lines(sink.items)
        #expect(lines.contains { $0.contains(#""quarantined":"'n/a' is not a number""#) && $0.contains(#""field":"obs_free""#) })
        #expect(lines.contains { $0.contains(#""field":"obs_ts""#) })
        // C in winter: 08:00 CET = 07:00Z.
        #expect(lines.contains(#"{"station":"parking-http:C","property":"parking_free_spaces","unit":"1","start":"2024-01-10T07:00:00Z","value":3}"#))
    }

    @Test func rejectsKeysThatDoNotFitTheFormat() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: p
                tenant: "00000000"
                source: { kind: parking, format: csv, url: x.csv, static_url: y.xml, free_feld: a, time_zone: Europe/Berln }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unknown key 'free_feld' in 'source' (kind: parking); did you mean 'free_field'?"))
        #expect(messages.contains { $0.contains("static_url") && $0.contains("datex2") })
        #expect(messages.contains { $0.contains("Europe/Berln") })
    }

    private func run(_ source: String) async throws -> RecordingSink {
        let spec = try PipelineSpec.parse(yaml: "version: 1\nname: parking-http\ntenant: \"00000000\"\n" + source, file: "/tmp/parking.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        return sink
    }
}
