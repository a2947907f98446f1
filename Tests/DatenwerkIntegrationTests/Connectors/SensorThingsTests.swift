import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

@Suite struct SensorThingsConnectorTests {
    /// A small service on the loopback interface, built from the reference files: Datastreams with expanded
    /// Thing/Locations, ObservedProperty and Observations, a relative `@iot.nextLink` for the second page of
    /// Datastreams, and a nested `Observations@iot.nextLink` (absolute, with the encoded `$filter`) to the
    /// real FROST page, whose own nextLink is rewritten to point at the loopback server.
    @Test func pagedServiceOverLoopback() async throws {
        let reference = Paths.reference("sensorthings")
        func load(_ name: String) throws -> JSONValue {
            try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(reference)/\(name)"))))
        }
        let thing = replacingMembers(try load("spec_example_18-088_Thing.json"), [.init("Locations", .array([try load("spec_example_18-088_Location.json")]))])
        let datastream = try load("spec_example_18-088_Datastream.json")
        let observation = try load("spec_example_18-088_Observation.json")
        let frost = try load("bgs_frost_v1.1_Datastreams_1_Observations_page1.excerpt.json")
        let box = LoopbackAddressBox()
        let server = try await LoopbackHTTPServer.start { request in
            let base = box.base
            switch request.path {
            case "/v1.1/Datastreams":
                if request.query["$skip"] == "1" {
                    // Page 2: a Thing with a string id, a Kelvin Datastream, untyped results.
                    let second = replacingMembers(datastream, [
                        .init("@iot.id", .string("ds-b")), .init("name", .string("shed air")),
                        .init("unitOfMeasurement", .object([.init("name", .string("kelvin")), .init("symbol", .string("K")), .init("definition", .string("http://unitsofmeasure.org/ucum.html#para-30"))])),
                        .init("Thing", replacingMembers(thing, [.init("@iot.id", .string("5d1c-shed")), .init("name", .string("Shed")),
                                                    .init("Locations", .array([.object([.init("encodingType", .string("application/vnd.geo+json")),
                                                        .init("location", .object([.init("type", .string("Point")), .init("coordinates", .array([.number(9.9937), .number(53.5511)]))]))])]))])),
                        .init("ObservedProperty", .object([.init("name", .string("Air temperature")), .init("definition", .string("http://vocab.example/air_temperature"))])),
                        .init("Observations", .array([
                            .object([.init("@iot.id", .string("o1")), .init("phenomenonTime", .string("2024-03-31T00:00:00Z/2024-03-31T01:00:00Z")), .init("result", .string("281.15")), .init("resultTime", .null)]),
                            .object([.init("@iot.id", .string("o2")), .init("phenomenonTime", .string("2024-03-31T01:00:00Z")), .init("result", .string("n/a"))]),
                            .object([.init("@iot.id", .string("o3")), .init("phenomenonTime", .string("2024-03-31T02:00:00+02:00")), .init("result", .bool(true))]),
                        ])),
                    ])
                    return .text(JSONValue.object([.init("value", .array([second]))]).serialized, contentType: "application/json")
                }
                let first = replacingMembers(datastream, [
                    .init("Thing", thing),
                    .init("ObservedProperty", .object([.init("name", .string("Temperature")), .init("definition", .string("http://vocab.example/temperature"))])),
                    .init("Observations", .array([observation])),
                    .init("Observations@iot.nextLink", .string("\(base)/v1.1/Datastreams(1)/Observations?$top=500&$skip=500&$filter=%28year%28phenomenonTime%29+eq+2023%29&$count=true")),
                ])
                return .text(JSONValue.object([
                    .init("@iot.count", .number(2)), .init("value", .array([first])),
                    .init("@iot.nextLink", .string("Datastreams?$skip=1&$expand=Thing")),
                ]).serialized, contentType: "application/json")
            case "/v1.1/Datastreams(1)/Observations":
                if request.query["$skip"] == "500" {
                    // The real page, its nextLink now pointing here (relative this time, keeping the filter).
                    return .text(replacingMembers(frost, [.init("@iot.nextLink", .string("Observations?$top=500&$skip=1000&$filter=%28year%28phenomenonTime%29+eq+2023%29"))]).serialized,
                                 contentType: "application/json")
                }
                return .text(#"{"value":[]}"#, contentType: "application/json")
            default:
                return .text("no such resource: \(request.uri)", status: 404)
            }
        }
        box.base = server.baseURL
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: sensorthings-http
            tenant: "11000000"
            source:
              kind: sensorthings
              url: "\(server.baseURL)/v1.1/"
              page_size: 500
              properties:
                Temperature: temperature
                "http://vocab.example/air_temperature": temperature
            """, file: "/tmp/sta.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        try Golden.compareWithFixtureFile(sink.items, with: "sensorthings/loopback-paged.ndjson")
        let uris = server.requests.map(\.uri)
        #expect(uris.count == 4)
        #expect(uris.first == "/v1.1/Datastreams?$expand=Thing($expand=Locations),ObservedProperty,Observations($orderby=phenomenonTime;$top=500)")
        // Next links are followed verbatim: the encoded $filter survives, the relative ones resolve against their page.
        #expect(uris.contains("/v1.1/Datastreams(1)/Observations?$top=500&$skip=500&$filter=%28year%28phenomenonTime%29+eq+2023%29&$count=true"))
        #expect(uris.contains("/v1.1/Datastreams(1)/Observations?$top=500&$skip=1000&$filter=%28year%28phenomenonTime%29+eq+2023%29"))
        #expect(uris.contains("/v1.1/Datastreams?$skip=1&$expand=Thing"))
    }

    @Test func selectedDatastreamsAndSinceGoIntoTheQuery() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .text(#"{"value":[]}"#, contentType: "application/json") }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: sensorthings-ids
            tenant: "11000000"
            source:
              kind: sensorthings
              url: "\(server.baseURL)/FROST-Server/v1.1"
              datastreams: ["7", "ab'c"]
              since: 2025-01-01T00:00:00+01:00
              page_size: 100
              properties: { Temperature: air_temperature }
            """, file: "/tmp/sta.yaml", connectors: BuiltinConnectors.registry)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        #expect(server.requests.map(\.uri) == [
            "/FROST-Server/v1.1/Datastreams(7)?$expand=Thing($expand=Locations),ObservedProperty,Observations($filter=phenomenonTime%20gt%202024-12-31T23:00:00Z;$orderby=phenomenonTime;$top=100)",
            "/FROST-Server/v1.1/Datastreams('ab''c')?$expand=Thing($expand=Locations),ObservedProperty,Observations($filter=phenomenonTime%20gt%202024-12-31T23:00:00Z;$orderby=phenomenonTime;$top=100)",
        ])
    }

    @Test func rejectsUnknownPropertiesAndBadSince() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: sta
                tenant: "11000000"
                source: { kind: sensorthings, url: "https://example.org/v1.1", since: yesterday, properties: { Temperature: air_temprature } }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("'Temperature' maps to 'air_temprature', which is not in the vocabulary; did you mean 'air_temperature'?") })
        #expect(messages.contains { $0.contains("'yesterday' is not an ISO 8601 instant") })
    }
}

/// The loopback server's own address, known only after it started.
final class LoopbackAddressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    var base: String {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// `value` with `extra` members replacing or added to its own.
func replacingMembers(_ value: JSONValue, _ extra: [JSONValue.Member]) -> JSONValue {
    guard case .object(var members) = value else { return value }
    let names = Set(extra.map(\.key))
    members.removeAll { names.contains($0.key) }
    return .object(members + extra)
}

extension Golden {
    /// Compares items with an expected file under Fixtures (rewritten with DATENWERK_UPDATE_GOLDEN=1).
    static func compareWithFixtureFile(_ items: [StagedItem], with name: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let path = fixtures + "/" + name
        let actual = lines(items)
        if ProcessInfo.processInfo.environment["DATENWERK_UPDATE_GOLDEN"] == "1" {
            try Data((actual.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(actual.count == expected.count, "\(name): \(actual.count) items, expected \(expected.count)", sourceLocation: sourceLocation)
        for (index, (a, e)) in zip(actual, expected).enumerated() where a != e {
            Issue.record("\(name) line \(index + 1):\n  actual:   \(a)\n  expected: \(e)", sourceLocation: sourceLocation)
            break
        }
    }
}
