import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation
import ZIPFoundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One XML element of a record: names are LOCAL names (a namespace prefix such as `ns2:` or `SOAP:` is
/// dropped), so `ns2:parkingRecord`, `d2:parkingRecord` and a default-namespace `parkingRecord` read alike.
struct XMLNode: Sendable, Hashable {
    var name: String
    /// Attributes by local name (`xsi:type` → `type`).
    var attributes: [String: String]
    /// The element's own character data (entity and character references resolved), untrimmed.
    var text: String = ""
    var children: [XMLNode] = []

    /// The first child with this local name.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }

    /// All children with this local name.
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }

    /// The first element at a `/`-separated path of local names below this one (`parkingOccupancy/parkingNumberOfVacantSpaces`).
    func at(_ path: String) -> XMLNode? {
        var node = self
        for part in path.split(separator: "/") {
            guard let next = node.child(String(part)) else { return nil }
            node = next
        }
        return node
    }

    /// The trimmed text at `path`, nil when absent or empty.
    func text(_ path: String) -> String? {
        guard let node = at(path) else { return nil }
        let trimmed = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The first descendant (depth first) with this local name.
    func descendant(_ name: String) -> XMLNode? {
        for child in children {
            if child.name == name { return child }
            if let found = child.descendant(name) { return found }
        }
        return nil
    }

    /// The `xsi:type` without its prefix (`ns2:ParkingSiteStatus` → `ParkingSiteStatus`).
    var typeName: String? { attributes["type"].map(XMLNode.localName) }

    /// A DATEX II style multilingual text (`<values><value lang="de">…</value></values>`): the first language
    /// of `languages` that is present, else the first value.
    func localizedText(_ languages: [String]) -> String? {
        let values = (child("values") ?? self).children("value")
        for language in languages {
            if let hit = values.first(where: { $0.attributes["lang"] == language }) {
                let text = hit.text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { return text }
            }
        }
        return values.lazy.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }.first { !$0.isEmpty }
    }

    static func localName(_ qualified: String) -> String {
        guard let colon = qualified.lastIndex(of: ":") else { return qualified }
        return String(qualified[qualified.index(after: colon)...])
    }

    /// The element as compact XML (local names), kept as the raw payload of a quarantined record.
    var xml: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        out += "<" + name
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { out += " \(key)=\"\(XMLNode.escape(value))\"" }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if children.isEmpty && trimmed.isEmpty {
            out += "/>"
            return
        }
        out += ">" + XMLNode.escape(trimmed)
        for child in children { child.write(to: &out) }
        out += "</\(name)>"
    }

    static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" || $0 == "\"" }) else { return s }
        return s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// One record element and where it was found.
struct XMLRecord: Sendable {
    var node: XMLNode
    var location: SourceLocation
}

/// One XML document, reduced to its record elements plus the short texts around them.
struct XMLDocument: Sendable {
    var origin: String
    var records: [XMLRecord]
    /// Text of leaf elements OUTSIDE the records, by their path of local names from the root
    /// (`d2LogicalModel/payloadPublication/publicationTime`); the first occurrence wins. Also the `xsi:type`
    /// of such elements as `<path>@type`.
    var header: [String: String]
    var bytes: Int

    /// The header text whose path ends with `suffix` (`payloadPublication/publicationTime`), whatever wraps it (a SOAP envelope).
    func header(endingWith suffix: String) -> String? {
        if let exact = header[suffix] { return exact }
        return header.first { $0.key.hasSuffix("/" + suffix) }?.value
    }
}

/// Reads an XML document with Foundation's SAX `XMLParser` and keeps only the subtrees of the record elements.
///
/// `XMLParser` on Linux cannot be fed chunk by chunk from an async body, so a document is read whole
/// (up to `maxBytes`) and parsed at once; memory is bounded by the document plus its record trees.
/// Elements are matched by LOCAL name, so any namespace prefix (`ns2:`, `SOAP:`) and any wrapper
/// (a SOAP envelope) are tolerated. Record elements nested in a record belong to the outer record.
enum XMLRecordReader {
    static let defaultMaxBytes = 256 << 20

    /// Opens `location` (URL through the shared fetcher, or a file) and parses it.
    static func read(_ location: String, fetcher: HTTPFetcher, headers: [(String, String)] = [], records: Set<String>, maxBytes: Int = defaultMaxBytes) async throws -> XMLDocument {
        let reader = try await ChunkReader.open(location, fetcher: fetcher, headers: headers)
        var bytes = try await reader.readAll(limit: maxBytes)
        let size = bytes.count
        if bytes.starts(with: [0x1F, 0x8B]) { bytes = try gunzip(bytes, origin: reader.origin, limit: maxBytes) }
        var document = try parse(bytes, origin: reader.origin, records: records)
        document.bytes = size
        return document
    }

    /// A gzip file (NDW serves `measurement.xml.gz` as a file, not as a Content-Encoding): RFC 1952 header, raw deflate.
    static func gunzip(_ bytes: [UInt8], origin: String, limit: Int) throws -> [UInt8] {
        func bad(_ why: String) -> FormatError { FormatError(location: SourceLocation(origin: origin), message: "\(origin): not a readable gzip file (\(why))") }
        guard bytes.count >= 18, bytes[2] == 8 else { throw bad("unknown compression method") }
        let flags = bytes[3]
        var offset = 10
        if flags & 4 != 0 {
            guard bytes.count > offset + 2 else { throw bad("truncated header") }
            offset += 2 + Int(bytes[offset]) + Int(bytes[offset + 1]) << 8
        }
        for flag in [UInt8(8), 16] where flags & flag != 0 {
            while offset < bytes.count, bytes[offset] != 0 { offset += 1 }
            offset += 1
        }
        if flags & 2 != 0 { offset += 2 }
        guard offset < bytes.count - 8 else { throw bad("truncated header") }
        let deflated = Data(bytes[offset..<(bytes.count - 8)])
        var out: [UInt8] = []
        do {
            _ = try Data.decompress(size: Int64(deflated.count), bufferSize: 64 * 1024, skipCRC32: true, provider: { position, size in
                deflated.subdata(in: Int(position)..<min(deflated.count, Int(position) + size))
            }, consumer: { chunk in
                out.append(contentsOf: chunk)
                if out.count > limit { throw bad("more than \(limit) bytes uncompressed") }
            })
        } catch let error as FormatError {
            throw error
        } catch {
            throw bad("\(error)")
        }
        return out
    }

    /// Parses a whole document held in memory.
    static func parse(_ bytes: [UInt8], origin: String, records: Set<String>) throws -> XMLDocument {
        let collector = Collector(origin: origin, recordNames: records)
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = collector
        // On Linux `parse()` can return true after a well-formedness error, so the first reported error counts.
        let finished = parser.parse()
        if !finished || collector.error != nil || parser.parserError != nil {
            let (line, column, code) = collector.error ?? (parser.lineNumber, parser.columnNumber, (parser.parserError as NSError?)?.code ?? 0)
            throw FormatError(
                location: SourceLocation(origin: origin, line: line),
                message: "\(origin):\(line):\(column): invalid XML (libxml2 error \(code)); nothing of this document was read")
        }
        return XMLDocument(origin: origin, records: collector.records, header: collector.header, bytes: bytes.count)
    }

    /// The SAX delegate: a stack of open elements; inside a record it builds the tree.
    private final class Collector: NSObject, XMLParserDelegate {
        let origin: String
        let recordNames: Set<String>
        var records: [XMLRecord] = []
        var header: [String: String] = [:]
        /// Local names from the root to the current element.
        var path: [String] = []
        /// Count of each record name seen, for `[n]` in locations.
        var counts: [String: Int] = [:]
        /// The open elements of the record being built (first = the record element).
        var open: [XMLNode] = []
        var recordLine = 0
        var headerText = ""
        /// Line, column and code of the first error.
        var error: (Int, Int, Int)?

        init(origin: String, recordNames: Set<String>) {
            self.origin = origin
            self.recordNames = recordNames
        }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let name = XMLNode.localName(elementName)
            var locals: [String: String] = [:]
            for (key, value) in attributes where !key.hasPrefix("xmlns") { locals[XMLNode.localName(key)] = value }
            path.append(name)
            headerText = ""
            if !open.isEmpty || recordNames.contains(name) {
                if open.isEmpty { recordLine = parser.lineNumber }
                open.append(XMLNode(name: name, attributes: locals))
            } else if let type = locals["type"] {
                header[path.joined(separator: "/") + "@type"] = header[path.joined(separator: "/") + "@type"] ?? XMLNode.localName(type)
            }
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            if error == nil { error = (parser.lineNumber, parser.columnNumber, (parseError as NSError).code) }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if open.isEmpty { headerText += string } else { open[open.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            self.parser(parser, foundCharacters: String(decoding: CDATABlock, as: UTF8.self))
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            defer { path.removeLast() }
            if open.isEmpty {
                let text = headerText.trimmingCharacters(in: .whitespacesAndNewlines)
                let key = path.joined(separator: "/")
                if !text.isEmpty, header[key] == nil { header[key] = text }
                headerText = ""
                return
            }
            let done = open.removeLast()
            if open.isEmpty {
                let number = (counts[done.name] ?? 0) + 1
                counts[done.name] = number
                let where_ = "/" + path.joined(separator: "/") + "[\(number)]"
                records.append(XMLRecord(node: done, location: SourceLocation(origin: origin, line: recordLine, record: records.count + 1, path: where_)))
            } else {
                open[open.count - 1].children.append(done)
            }
        }
    }
}

/// How a connector turns XML record elements into stations and observations.
protocol XMLRecordMapping {
    /// Local names of the record elements in the main documents.
    var recordElements: Set<String> { get }
    /// Local names of the record elements in the reference documents (site table, static parking table).
    var referenceElements: Set<String> { get }
    /// Takes in a reference document (read before the main documents).
    mutating func reference(_ document: XMLDocument) throws
    /// Called once per main document before its records (header values such as `publicationTime`).
    mutating func begin(_ document: XMLDocument)
    /// Appends items for `record`; returns problems (the record is then quarantined with its XML).
    mutating func map(_ record: XMLRecord, into items: inout [StagedItem]) -> [RecordError]
}

extension XMLRecordMapping {
    var referenceElements: Set<String> { [] }
    mutating func reference(_ document: XMLDocument) throws {}
    mutating func begin(_ document: XMLDocument) {}
}

/// Reads the reference documents, then each main document; one batch per main document.
struct XMLDocumentRun<Mapping: XMLRecordMapping>: ConnectorRun {
    private var references: [String]
    private var locations: [String]
    private let fetcher: HTTPFetcher
    private let headers: [(String, String)]
    private var mapping: Mapping
    private(set) var bytesRead = 0
    private(set) var origins: [String] = []

    init(references: [String] = [], locations: [String], fetcher: HTTPFetcher, headers: [(String, String)] = [], mapping: Mapping) {
        self.references = references
        self.locations = locations
        self.fetcher = fetcher
        self.headers = headers
        self.mapping = mapping
    }

    mutating func next() async throws -> ConnectorBatch? {
        while !references.isEmpty {
            let document = try await XMLRecordReader.read(references.removeFirst(), fetcher: fetcher, headers: headers, records: mapping.referenceElements)
            bytesRead += document.bytes
            origins.append(document.origin)
            try mapping.reference(document)
        }
        guard !locations.isEmpty else { return nil }
        let document = try await XMLRecordReader.read(locations.removeFirst(), fetcher: fetcher, headers: headers, records: mapping.recordElements)
        bytesRead += document.bytes
        origins.append(document.origin)
        mapping.begin(document)
        var items: [StagedItem] = []
        for record in document.records {
            let problems = mapping.map(record, into: &items)
            if var first = problems.first {
                if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                items.append(.quarantined(QuarantinedRecord(error: first, raw: record.node.xml)))
            }
        }
        return ConnectorBatch(items: items, recordsRead: document.records.count)
    }
}
