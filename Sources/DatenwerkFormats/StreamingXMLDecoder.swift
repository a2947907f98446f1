import CLibXML2
import DatenwerkCore

/// One XML element of a record. Names are LOCAL names (a namespace prefix such as `ns2:` or `SOAP:` is dropped),
/// so `ns2:parkingRecord`, `d2:parkingRecord` and a default-namespace `parkingRecord` read alike.
package struct XMLElementNode: Sendable, Hashable {
    package var name: String
    /// Attributes by local name (`xsi:type` → `type`); namespace declarations are not attributes.
    package var attributes: [String: String]
    /// The element's own character data (entity and character references resolved, CDATA included), untrimmed.
    package var text: String
    package var children: [XMLElementNode]

    package init(name: String, attributes: [String: String] = [:], text: String = "", children: [XMLElementNode] = []) {
        self.name = name
        self.attributes = attributes
        self.text = text
        self.children = children
    }
}

/// One record element and where it starts (line of its start tag, `/root/…/name[n]`).
package struct XMLDecodedRecord: Sendable {
    package var node: XMLElementNode
    package var location: SourceLocation

    package init(node: XMLElementNode, location: SourceLocation) {
        self.node = node
        self.location = location
    }
}

package struct XMLDecoderOptions: Sendable {
    /// Local names of the record elements. A record element inside a record belongs to the outer record.
    package var recordElements: Set<String> = []
    /// Elements nested deeper than this (counted from the root) stop decoding. At most `depthCeiling`.
    package var maxDepth = 256
    /// A record whose XML is longer than this, or one tag / comment / DOCTYPE longer than this, stops decoding.
    package var maxRecordBytes = 8 << 20
    /// A record with more elements than this stops decoding (bounds the tree a small input can make).
    package var maxRecordElements = 1 << 18
    /// The character data of one element longer than this stops decoding.
    package var maxTextBytes = 8 << 20
    /// A document longer than this (bytes fed) stops decoding.
    package var maxDocumentBytes = 256 << 20
    /// Header entries (texts outside the records) beyond this many bytes in total are dropped.
    package var maxHeaderBytes = 1 << 20

    /// The trees of records are freed recursively, so depth is capped whatever `maxDepth` says.
    package static let depthCeiling = 4096

    package init(recordElements: Set<String> = []) {
        self.recordElements = recordElements
    }
}

/// Streaming XML on libxml2's SAX2 push parser: bytes in (any split point), record elements out as small trees.
///
/// Only the record in progress, the open element path and libxml2's unparsed tail (one unfinished tag at most)
/// are held, so memory is bounded per record, not per document. Everything outside the records is reduced to
/// `header`: the text of leaf elements by their path of local names from the root
/// (`d2LogicalModel/payloadPublication/publicationTime`, first occurrence wins) and the `xsi:type` of such
/// elements as `<path>@type`.
///
/// Hardening: no DTD is loaded and no network is used; any entity declaration (`<!ENTITY …>`, the way to
/// billion laughs and external entities) stops decoding, as does a reference to an undeclared entity; DTD
/// attribute defaults are not applied. Invalid UTF-8, malformed XML and every limit in `XMLDecoderOptions`
/// are thrown as `FormatError` with line and column, never a trap.
///
/// After an error, `feed` and `finish` throw the same error again. Not thread-safe; one decoder per document.
package final class StreamingXMLDecoder {
    package let options: XMLDecoderOptions
    package let origin: String
    /// Bytes fed so far.
    package private(set) var bytesFed = 0

    private let state: SAXState
    private var context: xmlParserCtxtPtr?
    /// The first bytes, held until there are four (libxml2 detects the encoding from them).
    private var pending: [UInt8] = []
    private var finished = false
    /// `maxRecordBytes` per tag, comment, DOCTYPE, …, measured on the input so that chunking cannot change it.
    private var meter: XMLMarkupMeter
    /// What libxml2 may hold of one unfinished construct (in UTF-8, after conversion from up to 3 bytes per
    /// input byte, plus the character data it holds back): past this the meter has missed something.
    private let heldLimit: Int

    /// Bytes handed to `xmlParseChunk` at once, so that limits are checked at least this often.
    static let slice = 64 << 10

    package init(options: XMLDecoderOptions, origin: String) {
        var options = options
        options.maxDepth = max(1, min(options.maxDepth, XMLDecoderOptions.depthCeiling))
        self.options = options
        self.origin = origin
        state = SAXState(options: options, origin: origin)
        meter = XMLMarkupMeter(limit: options.maxRecordBytes)
        let (tripled, overflow) = options.maxRecordBytes.multipliedReportingOverflow(by: 3)
        heldLimit = overflow ? Int.max : tripled.addingReportingOverflow(4096).overflow ? Int.max : tripled + 4096
    }

    deinit {
        if let context { xmlFreeParserCtxt(context) }
    }

    /// Texts outside the records read so far (complete after `finish()`).
    package var header: [String: String] { state.header }

    /// Feeds the next chunk; returns the records completed by it.
    package func feed(_ bytes: some Collection<UInt8>) throws -> [XMLDecodedRecord] {
        if let failure = state.failure { throw failure }
        if finished { throw FormatError(location: SourceLocation(origin: origin), message: "\(origin): XML fed after its end") }
        bytesFed += bytes.count
        if bytesFed > options.maxDocumentBytes {
            try fail("document is longer than \(options.maxDocumentBytes) bytes (maxDocumentBytes)")
        }
        do { try meter.scan(bytes) } catch { try fail(error) }
        if context == nil {
            pending.append(contentsOf: bytes)
            guard pending.count >= 4 else { return [] }
            try start()
        } else {
            try push(Array(bytes), terminate: false)
        }
        return state.take()
    }

    /// End of input: returns the last records; throws when the document is empty, incomplete or invalid.
    package func finish() throws -> [XMLDecodedRecord] {
        if let failure = state.failure { throw failure }
        if finished { return [] }
        finished = true
        do { try meter.finish() } catch { try fail(error) }
        if context == nil {
            if pending.isEmpty { throw FormatError(location: SourceLocation(origin: origin), message: "\(origin) is empty; expected an XML document") }
            try start()
        }
        try push([], terminate: true)
        if !state.path.isEmpty {
            try fail("unexpected end of XML: <\(state.path.last ?? "")> is not closed; body cut off?")
        }
        return state.take()
    }

    // MARK: - libxml2

    private func start() throws {
        _ = libxml2Initialized
        var handler = xmlSAXHandler()
        handler.initialized = UInt32(XML_SAX2_MAGIC)
        handler.startElementNs = { ctx, localname, _, _, _, _, attributeCount, defaultedCount, attributes in
            guard let ctx, let localname else { return }
            SAXState.from(ctx).startElement(localname, Int(attributeCount - defaultedCount), attributes)
        }
        handler.endElementNs = { ctx, _, _, _ in
            guard let ctx else { return }
            SAXState.from(ctx).endElement()
        }
        handler.characters = { ctx, bytes, count in
            guard let ctx, let bytes, count > 0 else { return }
            SAXState.from(ctx).characters(UnsafeBufferPointer(start: bytes, count: Int(count)))
        }
        handler.ignorableWhitespace = handler.characters
        handler.cdataBlock = { ctx, bytes, count in
            guard let ctx, let bytes, count > 0 else { return }
            SAXState.from(ctx).characters(UnsafeBufferPointer(start: bytes, count: Int(count)))
        }
        handler.entityDecl = { ctx, name, _, _, _, _ in
            guard let ctx else { return }
            let entity = name.map { String(cString: $0) } ?? ""
            SAXState.from(ctx).fail("entity declaration <!ENTITY \(entity) …> is not accepted (entities could expand without bound or read other files)")
        }
        handler.serror = { _, error in
            guard let error, let raw = error.pointee.ctxt, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
            let ctxt = raw.assumingMemoryBound(to: xmlParserCtxt.self)
            guard let owner = ctxt.pointee._private else { return }
            SAXState.from(owner).libxml2Error(error.pointee)
        }
        let user = Unmanaged.passUnretained(state).toOpaque()
        let first = Array(pending.prefix(4))
        let rest = Array(pending.dropFirst(4))
        pending = []
        let created = routingErrors {
            first.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { c in xmlCreatePushParserCtxt(&handler, user, c.baseAddress, Int32(c.count), nil) }
            }
        }
        guard let created else {
            throw FormatError(location: SourceLocation(origin: origin), message: "\(origin): libxml2 could not create a parser (out of memory?)")
        }
        context = created
        created.pointee._private = user
        let flags = XML_PARSE_NONET.rawValue | XML_PARSE_HUGE.rawValue | XML_PARSE_NOCDATA.rawValue
        xmlCtxtUseOptions(created, Int32(flags))
        state.context = created
        if !rest.isEmpty { try push(rest, terminate: false) }
    }

    private func push(_ bytes: [UInt8], terminate: Bool) throws {
        guard let context else { return }
        try bytes.withUnsafeBufferPointer { p in
            var offset = 0
            repeat {
                let n = min(p.count - offset, Self.slice)
                let last = terminate && offset + n == p.count
                let code = routingErrors {
                    if let base = p.baseAddress, n > 0 {
                        return (base + offset).withMemoryRebound(to: CChar.self, capacity: n) { xmlParseChunk(context, $0, Int32(n), last ? 1 : 0) }
                    }
                    return xmlParseChunk(context, nil, 0, last ? 1 : 0)
                }
                offset += n
                try check(code)
            } while offset < p.count
        }
    }

    /// After each `xmlParseChunk`: our own failure, libxml2's error, or a tail that grew past the limit.
    private func check(_ code: Int32) throws {
        guard let context else { return }
        if state.failure == nil && (code != 0 || context.pointee.wellFormed == 0) {
            if let last = xmlCtxtGetLastError(context), last.pointee.code != 0 {
                state.libxml2Error(last.pointee)
            } else {
                state.fail("invalid XML (libxml2 error \(code))")
            }
        }
        if state.failure == nil, let input = context.pointee.input, let cur = input.pointee.cur, let end = input.pointee.end,
           end - cur > heldLimit
        {
            state.fail("libxml2 holds more than \(heldLimit) bytes of one unfinished construct (3 × maxRecordBytes + 4096)")
        }
        if let failure = state.failure {
            xmlStopParser(context)
            throw failure
        }
    }

    /// Errors that libxml2 raises without a parser context (encoding conversion, I/O) go to the thread's
    /// structured error handler, by default printed on stderr. During our calls they go to this document instead.
    private func routingErrors<T>(_ body: () -> T) -> T {
        let previous = __xmlStructuredError()?.pointee
        let previousContext = __xmlStructuredErrorContext()?.pointee
        xmlSetStructuredErrorFunc(Unmanaged.passUnretained(state).toOpaque()) { data, error in
            guard let data, let error, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
            SAXState.from(data).libxml2Error(error.pointee)
        }
        defer { xmlSetStructuredErrorFunc(previousContext, previous) }
        return body()
    }

    private func fail(_ failure: XMLMarkupMeter.Failure) throws {
        state.fail(line: failure.line, column: failure.column, failure.message)
        if let context { xmlStopParser(context) }
        throw state.failure!
    }

    private func fail(_ message: String) throws {
        state.fail(message)
        if let context { xmlStopParser(context) }
        throw state.failure!
    }
}

private let libxml2Initialized: Void = xmlInitParser()

/// What the SAX callbacks see: the open element path, the record being built, the header, the first failure.
private final class SAXState {
    let options: XMLDecoderOptions
    let origin: String
    var context: xmlParserCtxtPtr?
    private(set) var failure: FormatError?

    private var records: [XMLDecodedRecord] = []
    private(set) var header: [String: String] = [:]
    private var headerBytes = 0
    /// Local names from the root to the current element.
    private(set) var path: [String] = []
    /// Count of each record name seen, for `[n]` in locations.
    private var counts: [String: Int] = [:]
    private var recordCount = 0
    /// The open elements of the record being built (first = the record element) and their text so far.
    private var open: [XMLElementNode] = []
    private var openText: [[UInt8]] = []
    private var recordLine = 0
    private var recordStart = 0
    private var recordElements = 0
    private var headerText: [UInt8] = []

    init(options: XMLDecoderOptions, origin: String) {
        self.options = options
        self.origin = origin
    }

    static func from(_ pointer: UnsafeMutableRawPointer) -> SAXState {
        Unmanaged<SAXState>.fromOpaque(pointer).takeUnretainedValue()
    }

    func take() -> [XMLDecodedRecord] {
        defer { records = [] }
        return records
    }

    // MARK: Callbacks

    func startElement(_ localname: UnsafePointer<xmlChar>, _ attributeCount: Int, _ attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?) {
        guard failure == nil else { return }
        if path.count >= options.maxDepth {
            fail("elements are nested deeper than \(options.maxDepth) levels (maxDepth)")
            return
        }
        let name = String(cString: localname)
        var locals: [String: String] = [:]
        if attributeCount > 0, let attributes {
            for i in 0..<attributeCount {
                guard let key = attributes[5 * i], let value = attributes[5 * i + 3], let end = attributes[5 * i + 4] else { continue }
                var text = String(decoding: UnsafeBufferPointer(start: value, count: max(0, end - value)), as: UTF8.self)
                // Without entity substitution libxml2 hands an '&' in an attribute value on as "&#38;".
                if text.contains("&#38;") { text = text.replacing("&#38;", with: "&") }
                locals[String(cString: key)] = text
            }
        }
        path.append(name)
        headerText.removeAll(keepingCapacity: true)
        if !open.isEmpty || options.recordElements.contains(name) {
            if open.isEmpty {
                recordLine = line
                recordStart = position
                recordElements = 0
            }
            recordElements += 1
            if recordElements > options.maxRecordElements {
                fail("record <\(open.first?.name ?? name)> has more than \(options.maxRecordElements) elements (maxRecordElements)")
                return
            }
            open.append(XMLElementNode(name: name, attributes: locals))
            openText.append([])
            checkRecordSize()
        } else if let type = locals["type"] {
            addHeader(path.joined(separator: "/") + "@type", localName(type))
        }
    }

    func characters(_ bytes: UnsafeBufferPointer<xmlChar>) {
        guard failure == nil else { return }
        if open.isEmpty {
            headerText.append(contentsOf: bytes)
            if headerText.count > options.maxTextBytes { textTooLong(path.last) }
        } else {
            openText[openText.count - 1].append(contentsOf: bytes)
            if openText[openText.count - 1].count > options.maxTextBytes { textTooLong(open.last?.name) }
            checkRecordSize()
        }
    }

    func endElement() {
        guard failure == nil, !path.isEmpty else { return }
        defer { path.removeLast() }
        if open.isEmpty {
            let text = trimmed(String(decoding: headerText, as: UTF8.self))
            if !text.isEmpty { addHeader(path.joined(separator: "/"), text) }
            headerText.removeAll(keepingCapacity: true)
            return
        }
        var done = open.removeLast()
        done.text = String(decoding: openText.removeLast(), as: UTF8.self)
        if open.isEmpty {
            let number = (counts[done.name] ?? 0) + 1
            counts[done.name] = number
            recordCount += 1
            let where_ = "/" + path.joined(separator: "/") + "[\(number)]"
            records.append(XMLDecodedRecord(node: done, location: SourceLocation(origin: origin, line: recordLine, record: recordCount, path: where_)))
        } else {
            open[open.count - 1].children.append(done)
        }
    }

    func libxml2Error(_ error: xmlError) {
        guard failure == nil else { return }
        var message = error.message.map { String(cString: $0) } ?? "error \(error.code)"
        message = message.split(whereSeparator: \.isNewline).map { trimmed(String($0)) }.filter { !$0.isEmpty }.joined(separator: "; ")
        // Encoding errors come without a position: the parser's is close (libxml2 converts ahead of parsing).
        let (at, column) = error.line > 0 ? (Int(error.line), Int(error.int2)) : (line, self.column)
        record(line: at, column: column, "invalid XML: \(message) (libxml2 error \(error.code))")
    }

    /// Records our own failure at the parser's position and stops the callbacks (the caller stops the parser).
    func fail(_ message: String) {
        guard failure == nil else { return }
        record(line: line, column: column, message)
    }

    /// A failure found ahead of the parser (by the markup meter), at the place it names.
    func fail(line: Int, column: Int, _ message: String) {
        guard failure == nil else { return }
        record(line: line, column: column, message)
    }

    // MARK: Helpers

    private func record(line: Int, column: Int, _ message: String) {
        let place = line > 0 ? ":\(line)" + (column > 0 ? ":\(column)" : "") : ""
        failure = FormatError(
            location: SourceLocation(origin: origin, line: line > 0 ? line : nil, record: open.isEmpty ? nil : recordCount + 1),
            message: "\(origin)\(place): \(message)")
        // No more callbacks from this parser; `check` stops it once `xmlParseChunk` has returned.
        context?.pointee.disableSAX = 1
    }

    private var line: Int { context.flatMap { $0.pointee.input }.map { Int($0.pointee.line) } ?? 0 }
    private var column: Int { context.flatMap { $0.pointee.input }.map { Int($0.pointee.col) } ?? 0 }

    /// Bytes of the (UTF-8) input consumed so far.
    private var position: Int {
        guard let input = context?.pointee.input, let cur = input.pointee.cur, let base = input.pointee.base else { return 0 }
        return Int(input.pointee.consumed) + (cur - base)
    }

    private func checkRecordSize() {
        if position - recordStart > options.maxRecordBytes {
            fail("record <\(open.first?.name ?? "")> is longer than \(options.maxRecordBytes) bytes (maxRecordBytes)")
        }
    }

    private func textTooLong(_ element: String?) {
        fail("the text of <\(element ?? "")> is longer than \(options.maxTextBytes) bytes (maxTextBytes)")
    }

    private func addHeader(_ key: String, _ value: String) {
        guard header[key] == nil else { return }
        let size = key.utf8.count + value.utf8.count
        guard headerBytes + size <= options.maxHeaderBytes else { return }
        headerBytes += size
        header[key] = value
    }

    private func localName(_ qualified: String) -> String {
        guard let colon = qualified.lastIndex(of: ":") else { return qualified }
        return String(qualified[qualified.index(after: colon)...])
    }

    private func trimmed(_ s: String) -> String {
        guard let first = s.firstIndex(where: { !$0.isWhitespace }), let last = s.lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(s[first...last])
    }
}
