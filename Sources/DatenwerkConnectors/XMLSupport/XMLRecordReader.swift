import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation
import ZIPFoundation

/// One XML element of a record (from `StreamingXMLDecoder`): local names, attributes by local name, text, children.
typealias XMLNode = XMLElementNode

/// One record element and where it was found.
typealias XMLRecord = XMLDecodedRecord

extension XMLElementNode {
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

/// Reads an XML document chunk by chunk through `StreamingXMLDecoder` (libxml2's push parser) and keeps only
/// the subtrees of the record elements.
///
/// The body is never held whole (a gzip file is, up to `maxDocumentBytes` unpacked); memory is bounded by the
/// record trees of the document. Elements are matched by LOCAL name, so any namespace prefix (`ns2:`, `SOAP:`)
/// and any wrapper (a SOAP envelope) are tolerated. Record elements nested in a record belong to the outer record.
/// Depth, size and entity limits are those of `XMLDecoderOptions`; breaking one fails the document.
enum XMLRecordReader {
    static let defaultMaxBytes = 256 << 20

    /// Opens `location` (URL through the shared fetcher, or a file) and parses it.
    static func read(_ location: String, fetcher: HTTPFetcher, headers: [(String, String)] = [], records: Set<String>, maxBytes: Int = defaultMaxBytes) async throws -> XMLDocument {
        var options = XMLDecoderOptions(recordElements: records)
        options.maxDocumentBytes = maxBytes
        return try await read(location, fetcher: fetcher, headers: headers, options: options)
    }

    /// Opens `location` and decodes it whole with `options` (their `maxDocumentBytes` also caps a gzip file):
    /// for reference documents, whose records are all needed at once.
    static func read(_ location: String, fetcher: HTTPFetcher, headers: [(String, String)] = [], options: XMLDecoderOptions) async throws -> XMLDocument {
        try await read(location, session: FetchSession(fetcher: fetcher), headers: headers, options: options)
    }

    /// `read` with the run's fetch session.
    static func read(_ location: String, session: FetchSession, headers: [(String, String)] = [], options: XMLDecoderOptions) async throws -> XMLDocument {
        var stream = try await XMLRecordStream.open(location, session: session, headers: headers, options: options)
        var found: [XMLRecord] = []
        while let records = try await stream.next() { found += records }
        return XMLDocument(origin: stream.origin, records: found, header: stream.header, bytes: stream.bytes)
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
}

/// One XML document read record by record through the run's `DocumentReader` (resume after a cut body, no record
/// twice): each `next()` feeds the decoder until it has records (or the document ends), so memory is bounded by one
/// chunk's records, not by the document. A gzip file is unpacked whole first (up to `maxDocumentBytes`), then fed in
/// pieces. Any error names the document and says that nothing of it was read (the run fails, so nothing of it is loaded).
struct XMLRecordStream {
    let origin: String
    private var reader: DocumentReader<XMLDocumentDecoder>

    /// Bytes read from the source so far.
    var bytes: Int { reader.bytesRead }

    /// Text outside the records seen so far (see `XMLDocument.header`): complete for everything before the
    /// first record once `next()` has returned records.
    var header: [String: String] { reader.decoder.header }

    static func open(_ location: String, session: FetchSession, headers: [(String, String)] = [], options: XMLDecoderOptions) async throws -> XMLRecordStream {
        let reader = DocumentReader(location, session: session, request: session.request(location, headers: headers)) {
            XMLDocumentDecoder(options: options, origin: $0)
        }
        return XMLRecordStream(reader: reader)
    }

    static func open(_ location: String, fetcher: HTTPFetcher, headers: [(String, String)] = [], options: XMLDecoderOptions) async throws -> XMLRecordStream {
        try await open(location, session: FetchSession(fetcher: fetcher), headers: headers, options: options)
    }

    private init(reader: DocumentReader<XMLDocumentDecoder>) {
        self.reader = reader
        self.origin = reader.origin
    }

    /// The next records (at least one), or nil at the end of the document.
    mutating func next() async throws -> [XMLRecord]? {
        do {
            return try await reader.next()
        } catch var error as FormatError {
            error.message += "; nothing of this document was read"
            throw error
        }
    }
}

/// `StreamingXMLDecoder` behind the reader's decoder interface; the first two bytes decide whether the document is a
/// gzip file (NDW serves `measurement.xml.gz` as a file, not as a Content-Encoding), which is then unpacked whole
/// (up to `maxDocumentBytes`) at its end and fed in pieces.
struct XMLDocumentDecoder: DocumentDecoder {
    let origin: String
    private let decoder: StreamingXMLDecoder
    private let options: XMLDecoderOptions
    private var head: [UInt8] = []
    private var decided = false
    private var gzip: [UInt8]?
    private var unpacked: [UInt8]?
    private var unpackedOffset = 0
    private var finished = false

    init(options: XMLDecoderOptions, origin: String) {
        self.origin = origin
        self.options = options
        self.decoder = StreamingXMLDecoder(options: options, origin: origin)
    }

    var header: [String: String] { decoder.header }

    mutating func decode(_ chunk: [UInt8]) throws -> [XMLRecord] {
        if decided {
            if gzip != nil {
                gzip! += chunk
                if gzip!.count > options.maxDocumentBytes { throw ExtractError("\(origin) is larger than \(options.maxDocumentBytes) bytes") }
                return []
            }
            return try decoder.feed(chunk)
        }
        head += chunk
        guard head.count >= 2 else { return [] }
        decided = true
        defer { head = [] }
        if head.starts(with: [0x1F, 0x8B]) {
            gzip = head
            return []
        }
        return try decoder.feed(head)
    }

    mutating func end() throws -> [XMLRecord] {
        if let compressed = gzip {
            unpacked = try XMLRecordReader.gunzip(compressed, origin: origin, limit: options.maxDocumentBytes)
            gzip = nil
            return []
        }
        var found: [XMLRecord] = []
        if !head.isEmpty { found += try decoder.feed(head) }
        head = []
        finished = true
        return found + (try decoder.finish())
    }

    mutating func drain() throws -> [XMLRecord]? {
        guard let bytes = unpacked, !finished else { return nil }
        guard unpackedOffset < bytes.count else {
            finished = true
            return try decoder.finish()
        }
        let end = min(bytes.count, unpackedOffset + (256 << 10))
        defer { unpackedOffset = end }
        return try decoder.feed(bytes[unpackedOffset..<end])
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
    /// The books of the batch in progress: values offered and skipped by rule (zero silent drops). The run takes
    /// them after each batch; a failed record stands for the values it offered that found no other end.
    var tally: ValueTally { get set }
}

extension XMLRecordMapping {
    var referenceElements: Set<String> { [] }
    mutating func reference(_ document: XMLDocument) throws {}
    mutating func begin(_ document: XMLDocument) {}
}

/// Reads the reference documents whole, then each main document record by record (`XMLRecordStream` on the one
/// `DocumentReader`, so a cut body is resumed): one batch per piece of the document the decoder completed, so memory
/// is bounded by records, not by the document.
struct XMLDocumentRun<Mapping: XMLRecordMapping>: ConnectorRun {
    private var references: [String]
    private var locations: [String]
    private let session: FetchSession
    private let headers: [(String, String)]
    private var mapping: Mapping
    /// Depth and size limits for every document (the record elements come from `mapping`).
    private let limits: XMLDecoderOptions
    private(set) var bytesRead = 0
    private(set) var origins: [String] = []
    /// The main document being read, record by record; its header went to `mapping.begin` once.
    private var current: XMLRecordStream?
    private var begun = false

    init(references: [String] = [], locations: [String], session: FetchSession, headers: [(String, String)] = [], mapping: Mapping,
         limits: XMLDecoderOptions = XMLDecoderOptions()) {
        self.references = references
        self.locations = locations
        self.session = session
        self.headers = headers
        self.mapping = mapping
        self.limits = limits
    }

    private func read(_ location: String, records: Set<String>) async throws -> XMLDocument {
        var options = limits
        options.recordElements = records
        return try await XMLRecordReader.read(location, session: session, headers: headers, options: options)
    }

    mutating func next() async throws -> ConnectorBatch? {
        while !references.isEmpty {
            let document = try await read(references.removeFirst(), records: mapping.referenceElements)
            bytesRead += document.bytes
            origins.append(document.origin)
            try mapping.reference(document)
        }
        while true {
            if current == nil {
                guard !locations.isEmpty else { return nil }
                var options = limits
                options.recordElements = mapping.recordElements
                current = try await XMLRecordStream.open(locations.removeFirst(), session: session, headers: headers, options: options)
                begun = false
            }
            let records = try await current!.next()
            if !begun {
                // The header (publicationTime, …) precedes the records: known once the first ones are read.
                mapping.begin(XMLDocument(origin: current!.origin, records: [], header: current!.header, bytes: current!.bytes))
                begun = true
            }
            guard let records else {
                bytesRead += current!.bytes
                origins.append(current!.origin)
                current = nil
                continue
            }
            var items: [StagedItem] = []
            for record in records {
                let before = mapping.tally
                let firstItem = items.count
                let problems = mapping.map(record, into: &items)
                if var first = problems.first {
                    if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                    let values = mapping.tally.unsettled(since: before, items: items, from: firstItem)
                    items.append(.quarantined(QuarantinedRecord(error: first, raw: record.node.xml, values: values)))
                }
            }
            let books = mapping.tally.take()
            return ConnectorBatch(items: items, recordsRead: records.count, valuesRead: books.valuesRead, skipped: books.skipped)
        }
    }
}
