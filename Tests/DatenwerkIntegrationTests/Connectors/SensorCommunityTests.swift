import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkTesting
import DatenwerkCore
import Foundation
import Testing

@Suite struct SensorCommunityTests {
    @Test func throughALoopbackServer() async throws {
        let file = Paths.reference("sensor-community/data.sensor.community_static_v1_data.excerpt.json")
        let server = try await LoopbackHTTPServer.start { _ in .file(file) }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: sc-http
            tenant: "11000000"
            source: { kind: sensor-community, url: "\(server.baseURL)/static/v2/data.json" }
            """, file: "/tmp/sc.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        // Same normalised output as from the file.
        let expected = try String(contentsOfFile: Golden.fixtures + "/sensor-community/api-json/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    @Test func rejectsUnknownKeysAndBadChoices() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: sc
                tenant: "11000000"
                source: { kind: sensor-community, urll: x, format: json }
                observations: { station: { id: a } }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unknown key 'urll' in 'source' (kind: sensor-community); did you mean 'url'?"))
        #expect(messages.contains("'json' is not one of api-json, archive-csv (at 'source.format')"))
        #expect(messages.contains("source kind 'sensor-community' maps its records to observations itself; remove 'observations' (at 'observations')"))
    }
}

extension SensorCommunityTests {
    /// Connector output is held to the vocabulary's plausible ranges like mapped records are.
    @Test func implausibleValuesAreQuarantined() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data("""
            [{"id":1,"timestamp":"2024-05-01 10:00:00","location":{"id":7,"latitude":"51.9","longitude":"7.6","altitude":""},
              "sensor":{"id":99,"sensor_type":{"name":"DHT22"}},
              "sensordatavalues":[{"value":"150.0","value_type":"humidity"},{"value":"21.5","value_type":"temperature"}]}]
            """.utf8).write(to: URL(fileURLWithPath: dir + "/data.json"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: sc-range
            tenant: "05515000"
            source: { kind: sensor-community, url: data.json }
            """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        #expect(sink.observations.map(\.property) == ["air_temperature"])
        let bad = try #require(sink.quarantined.first)
        #expect(bad.error.reason == "150 is outside the plausible range 0…100 for relative_humidity (station sensor-community:99)")
        #expect(bad.error.location.origin.hasSuffix("data.json"))
        #expect(bad.raw.contains(#""result":150"#))
        // The station still has no altitude: "" is not a number.
        #expect(sink.stations.first?.location?.altitude == nil)
    }
}
