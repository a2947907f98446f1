import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

@Suite struct NGSIConnectorTests {
    /// A broker answering `limit`/`offset` pages with `NGSILD-Results-Count`: 2 + 1 entities, the short page ends it.
    @Test func brokerPagesOverLoopback() async throws {
        let folder = Paths.reference("ngsi-ld")
        func load(_ name: String) throws -> JSONValue {
            try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)"))))
        }
        let entities = [try load("AirQualityObserved.example-normalized.jsonld"), try load("WeatherObserved.example-normalized.jsonld"),
                        try load("TrafficFlowObserved.example-normalized.jsonld")]
        let server = try await LoopbackHTTPServer.start { request in
            guard request.path == "/ngsi-ld/v1/entities", let limit = Int(request.query["limit"] ?? ""), let offset = Int(request.query["offset"] ?? "") else {
                return .text("bad request", status: 400)
            }
            let page = Array(entities.dropFirst(offset).prefix(limit))
            return .init(status: 200, headers: [("Content-Type", "application/ld+json"), ("NGSILD-Results-Count", "3")],
                         body: Array(JSONValue.array(page).serialized.utf8))
        }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ngsi-http
            tenant: "11000000"
            source: { kind: ngsi-ld, url: "\(server.baseURL)", type: "AirQualityObserved,WeatherObserved,TrafficFlowObserved", page_size: 2, service: stadt, station_prefix: ngsi-ld-normalized }
            """, file: "/tmp/ngsi.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(server.requests.map(\.uri) == [
            "/ngsi-ld/v1/entities?type=AirQualityObserved,WeatherObserved,TrafficFlowObserved&limit=2&offset=0&count=true",
            "/ngsi-ld/v1/entities?type=AirQualityObserved,WeatherObserved,TrafficFlowObserved&limit=2&offset=2&count=true",
        ])
        #expect(server.requests.allSatisfy { $0.header("NGSILD-Tenant") == "stadt" })
        // The same entities as the saved files give the same observations.
        let fromFiles = try String(contentsOfFile: Golden.fixtures + "/ngsi-ld/ld-normalized/expected.ndjson", encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"property\"") }.sorted()
        #expect(Golden.lines(sink.items).filter { $0.contains("\"property\"") }.sorted() == fromFiles.map(String.init))
    }

    /// NGSI v2 (Orion): `/v2/entities` with `options=keyValues,count`; a full page that reaches `Fiware-Total-Count` ends it.
    @Test func ngsiV2KeyValuesStopsAtTheCount() async throws {
        let kv = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Paths.reference("ngsi-ld/WeatherObserved.example.jsonld")))))
        let server = try await LoopbackHTTPServer.start { _ in
            .init(status: 200, headers: [("Content-Type", "application/json"), ("Fiware-Total-Count", "1")], body: Array(JSONValue.array([kv]).serialized.utf8))
        }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ngsi-v2
            tenant: "11000000"
            source: { kind: ngsi-ld, flavor: ngsi-v2, key_values: true, url: "\(server.baseURL)/", type: WeatherObserved, page_size: 1, service: wetter }
            """, file: "/tmp/ngsi.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(server.requests.map(\.uri) == ["/v2/entities?type=WeatherObserved&limit=1&offset=0&options=keyValues,count"])
        #expect(server.requests.first?.header("Fiware-Service") == "wetter")
        try Golden.compareWithFixtureFile(sink.items, with: "ngsi-ld/loopback-v2-keyvalues.ndjson")
    }

    /// keyValues TrafficFlowObserved without dateObservedFrom/To: `dateObserved` is an interval `start/end`.
    @Test func dateObservedIntervalAlone() async throws {
        var traffic = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Paths.reference("ngsi-ld/TrafficFlowObserved.example.jsonld")))))
        if case .object(let members) = traffic { traffic = .object(members.filter { !$0.key.hasPrefix("dateObserved") || $0.key == "dateObserved" }) }
        let body = JSONValue.array([traffic]).serialized
        let server = try await LoopbackHTTPServer.start { _ in .text(body, contentType: "application/ld+json") }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ngsi-interval
            tenant: "11000000"
            source: { kind: ngsi-ld, url: "\(server.baseURL)", type: TrafficFlowObserved, key_values: true, time_zone: Europe/Madrid }
            """, file: "/tmp/ngsi.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(server.requests.map(\.uri) == ["/ngsi-ld/v1/entities?type=TrafficFlowObserved&limit=100&offset=0&count=true&options=keyValues"])
        let observations = sink.items.compactMap { item -> Observation? in if case .observation(let o) = item { return o } else { return nil } }
        // 11:10/11:15 without an offset, read in Europe/Madrid (CET in December): 10:10Z to 10:15Z.
        // intensity, averageVehicleSpeed, averageHeadwayTime, occupancy.
        #expect(observations.count == 4)
        #expect(observations.allSatisfy { $0.phenomenonStart == utc("2016-12-07T10:10:00Z") && $0.phenomenonEnd == utc("2016-12-07T10:15:00Z") })
    }

    @Test func aBrokerNeedsAType() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: ngsi
                tenant: "11000000"
                source: { kind: ngsi-ld, url: "https://broker.example.org", flavor: ngsi-v3, page_size: 5000 }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("'ngsi-v3' is not one of ngsi-ld, ngsi-v2") })
        #expect(messages.contains { $0.contains("must be between 1 and 1000, not 5000") })
        #expect(messages.contains { $0.contains("a broker needs an entity type") })
    }
}
