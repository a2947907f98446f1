import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

@Suite("StreamingXMLDecoder")
struct StreamingXMLDecoderTests {
    /// Feeds `bytes` in chunks of `chunk` bytes, then finishes.
    static func decode(_ bytes: [UInt8], records: Set<String>, origin: String = "test.xml", chunk: Int = Int.max,
                       _ configure: (inout XMLDecoderOptions) -> Void = { _ in }) throws -> (records: [XMLDecodedRecord], header: [String: String]) {
        var options = XMLDecoderOptions(recordElements: records)
        configure(&options)
        let decoder = StreamingXMLDecoder(options: options, origin: origin)
        var out: [XMLDecodedRecord] = []
        var offset = 0
        while offset < bytes.count {
            let end = bytes.count - offset > chunk ? offset + chunk : bytes.count
            out += try decoder.feed(bytes[offset..<end])
            offset = end
        }
        out += try decoder.finish()
        return (out, decoder.header)
    }

    /// A deterministic one-line picture of an element tree.
    static func render(_ node: XMLElementNode) -> String {
        let attributes = node.attributes.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value.debugDescription)" }.joined()
        return "<\(node.name)\(attributes)>\(node.text.debugDescription)" + node.children.map(render).joined() + "</\(node.name)>"
    }

    static func render(_ record: XMLDecodedRecord) -> String {
        let l = record.location
        return "line=\(l.line ?? 0) n=\(l.record ?? 0) path=\(l.path ?? "-") " + render(record.node)
    }

    /// `origin:line:column:` at the start of a message, as numbers.
    static func position(_ error: FormatError, origin: String) -> (line: Int, column: Int)? {
        guard error.message.hasPrefix(origin + ":") else { return nil }
        let parts = error.message.dropFirst(origin.count + 1).split(separator: ":", maxSplits: 2)
        guard parts.count >= 2, let line = Int(parts[0]), let column = Int(parts[1]) else { return nil }
        return (line, column)
    }

    static let sample = """
        <?xml version="1.0" encoding="UTF-8"?>
        <d2:d2LogicalModel xmlns:d2="http://datex2.eu/schema/2/2_0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <d2:payloadPublication xsi:type="d2:MeasuredDataPublication">
            <d2:publicationTime>2024-10-27T01:00:00Z</d2:publicationTime>
            <d2:siteMeasurements>
              <d2:measurementSiteReference id="RWS01_MONIBAS_0021hrl0403ra" version="1"/>
              <d2:measuredValue index="1"><d2:basicData xsi:type="d2:TrafficFlow"><d2:vehicleFlowRate>420</d2:vehicleFlowRate></d2:basicData></d2:measuredValue>
              <d2:note>Stra&#223;e &amp; Br&#xFC;cke <![CDATA[<raw> & more]]></d2:note>
              <d2:siteMeasurements note="a &amp; b &lt; c"/>
            </d2:siteMeasurements>
            <siteMeasurements xmlns="http://datex2.eu/schema/2/2_0"><measurementSiteReference id="second"/></siteMeasurements>
          </d2:payloadPublication>
        </d2:d2LogicalModel>
        """

    static let sampleExpected = [
        #"line=5 n=1 path=/d2LogicalModel/payloadPublication/siteMeasurements[1] <siteMeasurements>"\n      \n      \n      \n      \n    "<measurementSiteReference id="RWS01_MONIBAS_0021hrl0403ra" version="1">""</measurementSiteReference><measuredValue index="1">""<basicData type="d2:TrafficFlow">""<vehicleFlowRate>"420"</vehicleFlowRate></basicData></measuredValue><note>"Straße & Brücke <raw> & more"</note><siteMeasurements note="a & b < c">""</siteMeasurements></siteMeasurements>"#,
        #"line=11 n=2 path=/d2LogicalModel/payloadPublication/siteMeasurements[2] <siteMeasurements>""<measurementSiteReference id="second">""</measurementSiteReference></siteMeasurements>"#,
    ]

    @Test("records by local name with attributes, entities, CDATA, nested record elements and the header around them")
    func recordsAndHeader() throws {
        let (records, header) = try Self.decode(Array(Self.sample.utf8), records: ["siteMeasurements"])
        #expect(records.map(Self.render) == Self.sampleExpected)
        #expect(header == [
            "d2LogicalModel/payloadPublication@type": "MeasuredDataPublication",
            "d2LogicalModel/payloadPublication/publicationTime": "2024-10-27T01:00:00Z",
        ])
    }

    @Test("a document fed one byte at a time decodes exactly as in one chunk")
    func byteWiseEqualsOneChunk() throws {
        let bytes = Array(Self.sample.utf8)
        let whole = try Self.decode(bytes, records: ["siteMeasurements"])
        let byteWise = try Self.decode(bytes, records: ["siteMeasurements"], chunk: 1)
        #expect(byteWise.records.map(Self.render) == Self.sampleExpected)
        #expect(byteWise.records.map(Self.render) == whole.records.map(Self.render))
        #expect(byteWise.header == whole.header)
        // Split inside a multi-byte character, a tag, an entity and the CDATA section.
        for cut in stride(from: 1, to: bytes.count, by: 7) {
            let split = try Self.decode(bytes, records: ["siteMeasurements"], chunk: cut)
            #expect(split.records.map(Self.render) == Self.sampleExpected, "chunks of \(cut) bytes")
        }
    }

    @Test("a byte that is not UTF-8 in an element name or in text is a FormatError with line and column, not a trap")
    func invalidUTF8() throws {
        var name = Array("<root>\n  <rec><na".utf8)
        name.append(0xFF)
        name += Array("me>1</na".utf8) + [0xFF] + Array("me></rec>\n</root>\n".utf8)
        for chunk in [Int.max, 1] {
            let error = try #require(throws: FormatError.self) { try Self.decode(name, records: ["rec"], origin: "bad.xml", chunk: chunk) }
            let at = try #require(Self.position(error, origin: "bad.xml"), "\(error)")
            #expect(at.line == 2 && at.column == 11, "\(error)")
            #expect(error.location.line == 2)
            #expect(error.message.contains("UTF-8"))
        }
        var text = Array("<root>\n<rec>\n<t>ab".utf8)
        text += [0xC3, 0x28] + Array("</t></rec></root>".utf8)
        let error = try #require(throws: FormatError.self) { try Self.decode(text, records: ["rec"], origin: "bad.xml") }
        #expect(Self.position(error, origin: "bad.xml")?.line == 3, "\(error)")
        #expect(error.message.contains("UTF-8"))
    }

    @Test("60,000 levels of nesting inside a record stop at maxDepth with a position")
    func deepNestingInsideARecord() throws {
        let depth = 60_000
        let xml = "<root><rec>" + String(repeating: "<x>", count: depth) + String(repeating: "</x>", count: depth) + "</rec></root>"
        let error = try #require(throws: FormatError.self) { try Self.decode(Array(xml.utf8), records: ["rec"], origin: "deep.xml") }
        #expect(error.message.contains("nested deeper than 256 levels (maxDepth)"), "\(error)")
        #expect(error.location.record == 1)
        #expect(Self.position(error, origin: "deep.xml")?.line == 1)
    }

    @Test("20,000 levels of nesting outside records stop at maxDepth, right after the limit")
    func deepNestingOutsideRecords() throws {
        let depth = 20_000
        let xml = String(repeating: "<x>", count: depth) + String(repeating: "</x>", count: depth)
        for chunk in [Int.max, 4096] {
            let error = try #require(throws: FormatError.self) { try Self.decode(Array(xml.utf8), records: ["rec"], origin: "deep.xml", chunk: chunk) }
            #expect(error.message.contains("(maxDepth)"), "\(error)")
            // Stopped at element 257, not after reading (or recursing through) all 20,000.
            let at = try #require(Self.position(error, origin: "deep.xml"), "\(error)")
            #expect(at.line == 1 && at.column <= 3 * 258, "\(error)")
        }
        // A lower configured limit is honoured.
        let error = try #require(throws: FormatError.self) {
            try Self.decode(Array(xml.utf8), records: ["rec"], origin: "deep.xml") { $0.maxDepth = 10 }
        }
        #expect(error.message.contains("deeper than 10 levels"), "\(error)")
    }

    @Test("a valid 20 MB document streams through, fed whole and in chunks")
    func twentyMegabytes() throws {
        var bytes = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Daten>\n<Zeitstempel>13.07.2021 14:46:00</Zeitstempel>\n".utf8)
        bytes.reserveCapacity(21 << 20)
        var count = 0
        while bytes.count < 20 << 20 {
            bytes += Array("<Parkhaus><ID>\(count)</ID><Name>PH Lutrinastra&#223;e \(count)</Name><Gesamt>127</Gesamt><Aktuell>104</Aktuell></Parkhaus>\n".utf8)
            count += 1
        }
        bytes += Array("</Daten>\n".utf8)
        for chunk in [Int.max, 256 << 10] {
            var options = XMLDecoderOptions(recordElements: ["Parkhaus"])
            options.maxDocumentBytes = 256 << 20
            let decoder = StreamingXMLDecoder(options: options, origin: "big.xml")
            var seen = 0
            var first: XMLDecodedRecord?
            var last: XMLDecodedRecord?
            var offset = 0
            func take(_ records: [XMLDecodedRecord]) {
                seen += records.count
                if first == nil { first = records.first }
                if let end = records.last { last = end }
            }
            while offset < bytes.count {
                let end = bytes.count - offset > chunk ? offset + chunk : bytes.count
                take(try decoder.feed(bytes[offset..<end]))
                offset = end
            }
            take(try decoder.finish())
            #expect(seen == count)
            #expect(first?.node.children.first { $0.name == "Name" }?.text == "PH Lutrinastraße 0")
            #expect(last?.node.children.first { $0.name == "ID" }?.text == "\(count - 1)")
            #expect(last?.location.line == 3 + count)
            #expect(decoder.header["Daten/Zeitstempel"] == "13.07.2021 14:46:00")
        }
        // The configured cap still holds.
        let error = try #require(throws: FormatError.self) {
            try Self.decode(Array(bytes.prefix(3 << 20)), records: ["Parkhaus"], origin: "big.xml", chunk: 1 << 20) { $0.maxDocumentBytes = 2 << 20 }
        }
        #expect(error.message.contains("(maxDocumentBytes)"), "\(error)")
    }

    @Test("billion laughs, external entities and undeclared entities are errors")
    func entities() throws {
        let laughs = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [
             <!ENTITY lol "lol">
             <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
             <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
             <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
             <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
             <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
             <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
             <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
             <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
             <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
            ]>
            <lolz><rec>&lol9;</rec></lolz>
            """
        let error = try #require(throws: FormatError.self) { try Self.decode(Array(laughs.utf8), records: ["rec"], origin: "lol.xml") }
        #expect(error.message.contains("<!ENTITY lol "), "\(error)")
        #expect(Self.position(error, origin: "lol.xml")?.line == 3, "\(error)")

        let external = #"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a><rec>&x;</rec></a>"#
        let xxe = try #require(throws: FormatError.self) { try Self.decode(Array(external.utf8), records: ["rec"], origin: "xxe.xml") }
        #expect(xxe.message.contains("<!ENTITY x "), "\(xxe)")

        let undeclared = try #require(throws: FormatError.self) {
            try Self.decode(Array("<a>\n<rec>&nbsp;</rec></a>".utf8), records: ["rec"], origin: "u.xml")
        }
        #expect(undeclared.message.hasPrefix("u.xml:2:"), "\(undeclared)")
        #expect(undeclared.message.contains("nbsp"), "\(undeclared)")
    }

    @Test("malformed and truncated XML, long texts and long tags are FormatErrors with a position")
    func malformedAndLimits() throws {
        let mismatch = try #require(throws: FormatError.self) {
            try Self.decode(Array("<d2LogicalModel>\n<siteMeasurements></d2LogicalModel>".utf8), records: ["siteMeasurements"], origin: "m.xml")
        }
        #expect(Self.position(mismatch, origin: "m.xml")?.line == 2, "\(mismatch)")
        #expect(mismatch.message.contains("mismatch"), "\(mismatch)")

        let truncated = try #require(throws: FormatError.self) {
            try Self.decode(Array("<a><rec>1</rec><rec><x>".utf8), records: ["rec"], origin: "t.xml")
        }
        #expect(truncated.message.hasPrefix("t.xml"), "\(truncated)")

        let empty = try #require(throws: FormatError.self) { try Self.decode([], records: ["rec"], origin: "e.xml") }
        #expect(empty.message.contains("empty"))

        let text = "<a><rec>" + String(repeating: "x", count: 5000) + "</rec></a>"
        let long = try #require(throws: FormatError.self) {
            try Self.decode(Array(text.utf8), records: ["rec"], origin: "l.xml", chunk: 100) { $0.maxTextBytes = 1000 }
        }
        #expect(long.message.contains("(maxTextBytes)"), "\(long)")

        let tag = "<a><rec v=\"" + String(repeating: "x", count: 50_000) + "\"/></a>"
        let huge = try #require(throws: FormatError.self) {
            try Self.decode(Array(tag.utf8), records: ["rec"], origin: "l.xml", chunk: 1000) { $0.maxRecordBytes = 10_000 }
        }
        #expect(huge.message.contains("(maxRecordBytes)"), "\(huge)")

        let big = "<a><rec>" + String(repeating: "<v>1</v>", count: 5000) + "</rec></a>"
        let record = try #require(throws: FormatError.self) {
            try Self.decode(Array(big.utf8), records: ["rec"], origin: "l.xml") { $0.maxRecordBytes = 10_000 }
        }
        #expect(record.message.contains("record <rec> is longer than 10000 bytes"), "\(record)")

        // After an error the decoder keeps throwing it.
        let decoder = StreamingXMLDecoder(options: XMLDecoderOptions(recordElements: ["rec"]), origin: "s.xml")
        #expect(throws: FormatError.self) { _ = try decoder.feed(Array("<a></b>".utf8)) }
        #expect(throws: FormatError.self) { _ = try decoder.feed(Array("<rec/>".utf8)) }
        #expect(throws: FormatError.self) { _ = try decoder.finish() }
    }

    @Test("other encodings are converted: an ISO-8859-1 declaration and UTF-16 with a byte order mark")
    func encodings() throws {
        let latin1 = Array("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a><rec>Stra".utf8) + [0xDF] + Array("e</rec></a>".utf8)
        #expect(try Self.decode(latin1, records: ["rec"], chunk: 3).records.map { $0.node.text } == ["Straße"])
        let utf16 = "\u{FEFF}<a><rec>Straße</rec></a>".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        #expect(try Self.decode(utf16, records: ["rec"], chunk: 1).records.map { $0.node.text } == ["Straße"])
    }

    /// The outcome of decoding `bytes` in one chunk and in chunks of 1, 2, 3, 5, 7, 64 bytes: "ok <n> records" or the error.
    static func outcomes(_ bytes: [UInt8], records: Set<String>, origin: String = "l.xml", _ configure: @escaping (inout XMLDecoderOptions) -> Void) -> [String] {
        [Int.max, 1, 2, 3, 5, 7, 64].map { chunk in
            do {
                return "ok \(try decode(bytes, records: records, origin: origin, chunk: chunk, configure).records.count) records"
            } catch {
                return "\(error)"
            }
        }
    }

    @Test("maxRecordBytes bounds one tag, comment, declaration or reference in one chunk as in many (found by the fuzzer)")
    func markupLimitIgnoresChunking() throws {
        let limit: (inout XMLDecoderOptions) -> Void = { $0.maxRecordBytes = 64 }
        // The fuzzer's input: a 67-byte start tag after a processing instruction passed whole and failed when cut.
        let envelope = "<?x rilsmveon=\"1.0\"?>\n<SOAP:Envelope\n        xmlns:SOAP=\"http://schemas.xmlso.org/soap/enveloe\"/>\n"
        let cases: [(String, String)] = [
            (envelope, "l.xml:2:1: the start tag <SOAP:Envelope… is longer than 64 bytes (maxRecordBytes)"),
            ("<a><b>x</b" + String(repeating: " ", count: 70) + "></a>", "l.xml:1:8: the end tag </b… is longer than 64 bytes (maxRecordBytes)"),
            ("<a><!--" + String(repeating: "c", count: 70) + "--></a>", "l.xml:1:4: a comment is longer than 64 bytes (maxRecordBytes)"),
            ("<?xml version=\"1.0\"" + String(repeating: " ", count: 60) + "?><a/>", "l.xml:1:1: a processing instruction (or the XML declaration) is longer than 64 bytes (maxRecordBytes)"),
            ("<!DOCTYPE a [" + String(repeating: "<!-- > ' -->", count: 6) + "]><a/>", "l.xml:1:1: a DOCTYPE or <!…> declaration is longer than 64 bytes (maxRecordBytes)"),
            ("<a>&#" + String(repeating: "0", count: 70) + "65;</a>", "l.xml:1:4: an entity or character reference is longer than 64 bytes (maxRecordBytes)"),
        ]
        for (document, message) in cases {
            let outcomes = Self.outcomes(Array(document.utf8), records: ["rec"], limit)
            #expect(outcomes == Array(repeating: message, count: outcomes.count), "\(document)")
        }
        // UTF-16: a tag of 36 characters is 72 bytes; one of 30 characters (60 bytes) passes.
        func utf16(_ text: String) -> [UInt8] { "\u{FEFF}\(text)".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
        let long = Self.outcomes(utf16("<a><rec v=\"" + String(repeating: "x", count: 23) + "\"/></a>"), records: ["rec"], limit)
        #expect(long == Array(repeating: "l.xml:1:5: the start tag <rec… is longer than 64 bytes (maxRecordBytes)", count: long.count))
        let short = Self.outcomes(utf16("<a><rec v=\"" + String(repeating: "x", count: 17) + "\"/></a>"), records: ["rec"], limit)
        #expect(short == Array(repeating: "ok 1 records", count: short.count))
        // Character data and CDATA are text, not markup: maxTextBytes governs them, in any chunking.
        let text = "<a>" + String(repeating: "t", count: 200) + "<![CDATA[" + String(repeating: "d", count: 200) + "]]><rec/></a>"
        let texts = Self.outcomes(Array(text.utf8), records: ["rec"], limit)
        #expect(texts == Array(repeating: "ok 1 records", count: texts.count))
        // Markup within the limit, with '>' inside quotes and a DOCTYPE without a subset, passes at any split.
        let fine = "<!DOCTYPE a><a><rec v=\"a>b\" w='>'/><!-- > --><?p x?>&amp;</a>"
        let fines = Self.outcomes(Array(fine.utf8), records: ["rec"], limit)
        #expect(fines == Array(repeating: "ok 1 records", count: fines.count))
    }

    @Test("EBCDIC is refused with a clear error")
    func ebcdic() throws {
        let error = try #require(throws: FormatError.self) { try Self.decode([0x4C, 0x6F, 0xA7, 0x94, 0x40], records: ["rec"], origin: "e.xml") }
        #expect(error.message == "e.xml:1:1: the document is in EBCDIC or an unusual UCS-4 byte order, which is not read; convert it to UTF-8")
    }
}
