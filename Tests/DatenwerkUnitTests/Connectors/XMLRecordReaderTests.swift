@testable import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import Foundation
import Testing
import DatenwerkTesting

/// The connectors' XML path (parking `format: xml`, `datex2`): files read chunk by chunk through `StreamingXMLDecoder`.
@Suite struct XMLRecordReaderTests {
    static func file(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xml-reader-\(UUID().uuidString).xml").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// FoundationXML trapped (SIGILL) on this; now the document fails with its position.
    @Test func aNonUTF8ElementNameFailsTheDocumentWithLineAndColumn() async throws {
        var bytes = Array("<d2LogicalModel>\n  <siteMeasurements><na".utf8)
        bytes += [0xFF] + Array("me>1</na".utf8) + [0xFF] + Array("me></siteMeasurements>\n</d2LogicalModel>\n".utf8)
        let path = try Self.file(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try await #require(throws: FormatError.self) {
            _ = try await XMLRecordReader.read(path, fetcher: testFetcher, records: ["siteMeasurements"])
        }
        #expect(error.message.hasPrefix(path + ":2:24: invalid XML: Input is not proper UTF-8"), "\(error)")
        #expect(error.message.hasSuffix("; nothing of this document was read"), "\(error)")
    }

    /// Stack overflow before (the record tree was as deep as the input).
    @Test func nestingDeeperThanTheLimitFailsTheDocument() async throws {
        let xml = "<d2LogicalModel><siteMeasurements>" + String(repeating: "<x>", count: 60_000) + String(repeating: "</x>", count: 60_000) + "</siteMeasurements></d2LogicalModel>"
        let path = try Self.file(Array(xml.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try await #require(throws: FormatError.self) {
            _ = try await XMLRecordReader.read(path, fetcher: testFetcher, records: ["siteMeasurements"])
        }
        #expect(error.message.contains("nested deeper than 256 levels (maxDepth)"), "\(error)")
    }

    /// libxml2 refused this above 10 MB when Foundation handed it the whole document; the cap is 256 MB.
    @Test func aTwelveMegabyteDocumentIsRead() async throws {
        var bytes = Array("<Daten>\n<Zeitstempel>13.07.2021 14:46:00</Zeitstempel>\n".utf8)
        var count = 0
        while bytes.count < 12 << 20 {
            bytes += Array("<Parkhaus><ID>\(count)</ID><Gesamt>127</Gesamt><Aktuell>104</Aktuell></Parkhaus>\n".utf8)
            count += 1
        }
        bytes += Array("</Daten>\n".utf8)
        let path = try Self.file(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let document = try await XMLRecordReader.read(path, fetcher: testFetcher, records: ["Parkhaus"])
        #expect(document.records.count == count)
        #expect(document.records.last?.node.text("ID") == "\(count - 1)")
        #expect(document.header(endingWith: "Zeitstempel") == "13.07.2021 14:46:00")
        #expect(document.bytes == bytes.count)
    }
}
