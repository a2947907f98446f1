@testable import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// Main XML documents are read record by record (memory bounded by records, not by the document), and the
/// XML limits come from the pipeline.
@Suite struct XMLStreamingTests {
    static func parkingFile(records: Int, nested: Int = 0) throws -> String {
        var bytes = Array("<Daten>\n<Zeitstempel>13.07.2021 14:46:00</Zeitstempel>\n".utf8)
        let deep = String(repeating: "<x>", count: nested) + String(repeating: "</x>", count: nested)
        for i in 0..<records {
            bytes += Array("<Parkhaus><ID>P\(i)</ID><Name>Parkhaus \(i)</Name><Gesamt>127</Gesamt><Aktuell>\(i % 127)</Aktuell>\(deep)</Parkhaus>\n".utf8)
        }
        bytes += Array("</Daten>\n".utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xml-stream-\(UUID().uuidString).xml").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aMainDocumentIsReadInPiecesWithItsHeaderFirst() async throws {
        let total = 60_000
        let path = try Self.parkingFile(records: total)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var stream = try await XMLRecordStream.open(path, fetcher: testFetcher, options: XMLDecoderOptions(recordElements: ["Parkhaus"]))
        var pieces: [Int] = []
        var header: String?
        var last: String?
        while let records = try await stream.next() {
            if header == nil { header = XMLDocument(origin: path, records: [], header: stream.header, bytes: 0).header(endingWith: "Zeitstempel") }
            pieces.append(records.count)
            last = records.last?.node.text("ID")
        }
        #expect(pieces.reduce(0, +) == total)
        #expect(pieces.count >= 10, "\(pieces.count) pieces")
        #expect((pieces.max() ?? 0) <= total / 5, "the largest piece held \(pieces.max() ?? 0) records")
        #expect(header == "13.07.2021 14:46:00")
        #expect(last == "P\(total - 1)")
    }

    static func pipeline(_ path: String, extra: String) throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: xml-limits
            tenant: "05315000"
            source:
              kind: parking
              format: xml
              url: \(path)
              id_field: ID
              name_field: Name
              free_field: Aktuell
              capacity_field: Gesamt
              time_field: Zeitstempel
              time_format: dd.MM.yyyy HH:mm:ss
            \(extra)
            """, file: FileManager.default.temporaryDirectory.path + "/xml-limits.yaml", connectors: BuiltinConnectors.registry)
    }

    @Test func limitsAreRangeCheckedPipelineKeys() throws {
        for (line, key, range) in [("  xml_max_depth: 0", "xml_max_depth", "between 1 and 4096"),
                                   ("  xml_max_record_bytes: 10", "xml_max_record_bytes", "between 1024 and"),
                                   ("  xml_max_document_bytes: 100", "xml_max_document_bytes", "between 1024 and")] {
            let error = #expect(throws: DiagnosticError.self) { _ = try Self.pipeline("/tmp/none.xml", extra: line) }
            let text = error?.diagnostics.map(\.description).joined(separator: "\n") ?? ""
            #expect(text.contains(key) && text.contains(range), "\(text)")
        }
    }

    @Test func aPipelineDepthLimitFailsADeeperDocument() async throws {
        let path = try Self.parkingFile(records: 3, nested: 6)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let shallow = try Self.pipeline(path, extra: "  xml_max_depth: 5")
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(shallow, trigger: "test")
        #expect(report.failure?.message.contains("nested deeper than 5 levels (maxDepth)") == true, "\(String(describing: report.failure))")
        let fine = try Self.pipeline(path, extra: "  xml_max_depth: 64")
        let ok = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(fine, trigger: "test")
        #expect(ok.succeeded, "\(String(describing: ok.failure))")
        #expect(ok.totals.recordsRead == 3)
    }
}
