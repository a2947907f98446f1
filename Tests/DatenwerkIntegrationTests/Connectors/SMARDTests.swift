import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

@Suite struct SMARDConnectorTests {
    /// Index first, then one series file per chosen block; `null` hours (not yet published) are skipped.
    @Test func indexThenBlocksOverLoopback() async throws {
        let index = Paths.reference("smard/spec_example_index_hour.json")
        let series = Paths.reference("smard/spec_example_chart_data_series.json")
        let server = try await LoopbackHTTPServer.start { request in
            switch request.path {
            case "/app/chart_data/4067/DE/index_hour.json":
                return .file(index)
            case "/app/chart_data/4067/DE/4067_DE_hour_1628460000000.json":
                return .file(series)
            case "/app/chart_data/4067/DE/4067_DE_hour_1629064800000.json":
                // The current week: published hours, then nulls up to the end of the block.
                return .text(#"{"meta_data":{"version":1,"created":1629100000000},"series":[[1629064800000,4211.5],[1629068400000,3990.25],[1629072000000,null],[1629075600000,null]]}"#,
                             contentType: "application/json")
            default:
                return .text("not found", status: 404)
            }
        }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: smard-http
            tenant: "00000000"
            source:
              kind: smard
              filter: "4067"
              property: electricity_generation
              url: "\(server.baseURL)/app/chart_data/"
              blocks: 2
            """, file: "/tmp/smard.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(report.totals.quarantined == 0)
        #expect(server.requests.map(\.path) == [
            "/app/chart_data/4067/DE/index_hour.json",
            "/app/chart_data/4067/DE/4067_DE_hour_1628460000000.json",
            "/app/chart_data/4067/DE/4067_DE_hour_1629064800000.json",
        ])
        try Golden.compareWithFixtureFile(sink.items, with: "smard/loopback-index.ndjson")
    }

    /// A wrong filter/region/resolution combination is a 404: the run fails at extract, naming the URL.
    @Test func missingIndexFailsTheRun() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .text("not found", status: 404) }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: smard-404
            tenant: "00000000"
            source: { kind: smard, filter: "4067", region: AT, resolution: quarterhour, property: electricity_generation, url: "\(server.baseURL)/app/chart_data" }
            """, file: "/tmp/smard.yaml", connectors: BuiltinConnectors.registry)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(spec)
        let failure = try #require(report.failure)
        #expect("\(failure)".contains("/app/chart_data/4067/AT/index_quarterhour.json"))
    }

    @Test func rejectsPriceFiltersAndBadIds() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: smard
                tenant: "00000000"
                source: { kind: smard, filter: "4169", property: electricity_generation, resolution: hourly }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("filter 4169 is a market price in €/MWh") })
        #expect(messages.contains { $0.contains("'hourly' is not one of quarterhour, hour, day, week, month, year; did you mean 'hour'?") })
    }
}
