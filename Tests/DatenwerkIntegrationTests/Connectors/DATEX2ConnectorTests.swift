import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

@Suite struct DATEX2ConnectorTests {
    @Test func throughALoopbackServer() async throws {
        let measurements = Paths.reference("datex2/NTIS_MIDAS_Loop_Traffic_Data_3793828281116175.trimmed.xml")
        let server = try await LoopbackHTTPServer.start { _ in .file(measurements, contentType: "application/xml") }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: datex2-http
            tenant: "00000000"
            source: { kind: datex2, url: "\(server.baseURL)/NTIS_MIDAS_Loop_Traffic_Data_3793828281116175.trimmed.xml", period_seconds: 60, station_prefix: datex2-midas }
            """, file: "/tmp/datex2.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        let expected = try String(contentsOfFile: Golden.fixtures + "/datex2/midas/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    /// NDW serves its files gzip-compressed as files (`measurement.xml.gz`), not as a Content-Encoding.
    @Test func gzipFilesAreUnpacked() async throws {
        let table = Paths.reference("datex2/NDW_MeasurementSiteTable.soap.xml")
        let gz = FileManager.default.temporaryDirectory.appendingPathComponent("datex2-sites-\(UUID().uuidString).xml.gz").path
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = ["-c", "gzip -c '\(table)' > '\(gz)'"]
        try gzip.run()
        gzip.waitUntilExit()
        defer { try? FileManager.default.removeItem(atPath: gz) }
        let server = try await LoopbackHTTPServer.start { request in
            request.path.hasSuffix(".gz") ? .file(gz, contentType: "application/gzip") : .file(Golden.fixtures + "/datex2/ndw-join/trafficflow-prefixed.xml")
        }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: datex2-gz
            tenant: "00000000"
            source: { kind: datex2, url: "\(server.baseURL)/trafficflow-prefixed.xml", sites: "\(server.baseURL)/measurement.xml.gz", languages: [nl, en], station_prefix: datex2-ndw }
            """, file: "/tmp/datex2.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        let expected = try String(contentsOfFile: Golden.fixtures + "/datex2/ndw-join/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(sink.items).joined(separator: "\n") + "\n" == expected)
    }

    @Test func brokenXMLFailsTheRunWithAPosition() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .text("<d2LogicalModel><siteMeasurements></d2LogicalModel>", contentType: "application/xml") }
        defer { Task { try await server.stop() } }
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: datex2-broken
            tenant: "00000000"
            source: { kind: datex2, url: "\(server.baseURL)/broken.xml" }
            """, file: "/tmp/datex2.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try? await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report?.succeeded != true)
        #expect(!sink.items.contains { if case .observation = $0 { return true } else { return false } })
    }

    @Test func rejectsUnknownKeysAndBadPeriods() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: d
                tenant: "00000000"
                source: { kind: datex2, url: x.xml, site: y.xml, period_seconds: 0 }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unknown key 'site' in 'source' (kind: datex2); did you mean 'sites'?"))
        #expect(messages.contains { $0.contains("period_seconds") && $0.contains("positive") })
    }
}
