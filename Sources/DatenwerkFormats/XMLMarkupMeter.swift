/// Measures each markup construct of an XML byte stream — a start or end tag, a comment, a processing
/// instruction (the XML declaration included), a DOCTYPE with its internal subset, an entity or character
/// reference — so that `maxRecordBytes` bounds one construct whatever the chunking.
///
/// libxml2's push parser parses a construct that arrives whole within one call and holds one that arrives cut
/// until its end comes, so the bytes it holds are no measure that chunking cannot change (the fuzzer found a
/// tag that passed in one chunk and failed in two). This meter is a small state machine over the input itself:
/// the same bytes give the same verdict at any split. Character data and CDATA content are not markup; their
/// size is `maxTextBytes`' business, checked on the text itself.
///
/// Lengths are counted in input bytes. The code units are read in the encoding libxml2 detects from the first
/// four bytes (UTF-8 and 8-bit encodings, UTF-16 and UCS-4 in either byte order); EBCDIC and the unusual UCS-4
/// byte orders are refused, since their markup characters cannot be recognised here.
struct XMLMarkupMeter {
    struct Failure: Error {
        var line: Int
        var column: Int
        var message: String
    }

    private enum State {
        case text, open, tag, pi, bang, comment, cdata, declaration, reference
    }

    let limit: Int
    private var state = State.text
    /// Bytes of the construct so far (from its `<` or `&`).
    private var length = 0
    private var width = 0
    private var bigEndian = false
    private var detect: [UInt8] = []
    private var unit: UInt32 = 0
    private var unitBytes = 0

    // Sub-state of the construct.
    private var quote: UInt32 = 0
    private var run = 0
    private var bang: [UInt32] = []
    private var inSubset = false
    private var subsetComment = false
    private var recent: UInt32 = 0
    private var name: [UInt8] = []
    private var nameDone = false

    private var line = 1
    private var column = 0
    private var startLine = 1
    private var startColumn = 1

    init(limit: Int) {
        self.limit = limit
    }

    /// Scans the next bytes; throws when a construct grows past the limit or the encoding cannot be read.
    mutating func scan(_ bytes: some Collection<UInt8>) throws(Failure) {
        if width == 0 {
            detect.append(contentsOf: bytes)
            guard detect.count >= 4 else { return }
            try chooseEncoding()
            let held = detect
            detect = []
            try scanUnits(held)
        } else {
            try scanUnits(bytes)
        }
    }

    /// End of input: scans what waited for the encoding to be known (a document shorter than four bytes).
    mutating func finish() throws(Failure) {
        if width == 0 {
            width = 1
            let held = detect
            detect = []
            try scanUnits(held)
        }
    }

    private mutating func chooseEncoding() throws(Failure) {
        let b = detect
        switch (b[0], b[1], b[2], b[3]) {
        case (0, 0, 0, 0x3C): (width, bigEndian) = (4, true)
        case (0x3C, 0, 0, 0): (width, bigEndian) = (4, false)
        case (0, 0, 0x3C, 0), (0, 0x3C, 0, 0), (0x4C, 0x6F, 0xA7, 0x94):
            throw Failure(line: 1, column: 1, message: "the document is in EBCDIC or an unusual UCS-4 byte order, which is not read; convert it to UTF-8")
        case (0x3C, 0, 0x3F, 0), (0xFF, 0xFE, _, _): (width, bigEndian) = (2, false)
        case (0, 0x3C, 0, 0x3F), (0xFE, 0xFF, _, _): (width, bigEndian) = (2, true)
        default: width = 1
        }
    }

    private mutating func scanUnits(_ bytes: some Collection<UInt8>) throws(Failure) {
        if width == 1 {
            for byte in bytes {
                // A UTF-8 continuation byte is not a new column.
                if byte & 0xC0 != 0x80 { column += 1 }
                try step(UInt32(byte))
            }
            return
        }
        for byte in bytes {
            unit = bigEndian ? unit << 8 | UInt32(byte) : unit | UInt32(byte) << (8 * UInt32(unitBytes))
            unitBytes += 1
            guard unitBytes == width else { continue }
            let u = unit
            unit = 0
            unitBytes = 0
            column += 1
            try step(u)
        }
    }

    private static let lt: UInt32 = 0x3C, gt: UInt32 = 0x3E, amp: UInt32 = 0x26, semicolon: UInt32 = 0x3B
    private static let bangChar: UInt32 = 0x21, question: UInt32 = 0x3F, dash: UInt32 = 0x2D, slash: UInt32 = 0x2F
    private static let openBracket: UInt32 = 0x5B, closeBracket: UInt32 = 0x5D
    private static let doubleQuote: UInt32 = 0x22, singleQuote: UInt32 = 0x27
    private static let commentOpen = Array("--".unicodeScalars.map(\.value))
    private static let cdataOpen = Array("[CDATA[".unicodeScalars.map(\.value))

    private static func isSpace(_ u: UInt32) -> Bool { u == 0x20 || u == 0x0A || u == 0x0D || u == 0x09 }

    private mutating func step(_ u: UInt32) throws(Failure) {
        if u == 0x0A {
            line += 1
            column = 0
        }
        switch state {
        case .text:
            if u == Self.lt {
                begin(.open)
            } else if u == Self.amp {
                begin(.reference)
            }
            return
        case .open:
            if u == Self.bangChar {
                state = .bang
                bang = []
            } else if u == Self.question {
                state = .pi
                run = 0
            } else {
                state = .tag
                quote = 0
                tag(u)
            }
        case .tag:
            tag(u)
        case .pi:
            if u == Self.gt && run > 0 { return end() }
            run = u == Self.question ? 1 : 0
        case .bang:
            bang.append(u)
            if bang == Self.commentOpen {
                state = .comment
                run = 0
            } else if bang == Self.cdataOpen {
                state = .cdata
                run = 0
            } else if !Self.commentOpen.starts(with: bang) && !Self.cdataOpen.starts(with: bang) {
                state = .declaration
                quote = 0
                inSubset = false
                subsetComment = false
                recent = 0
                declaration(u)
            }
        case .comment:
            if u == Self.gt && run >= 2 { return end() }
            run = u == Self.dash ? run + 1 : 0
        case .cdata:
            // The content is text: not counted.
            if u == Self.gt && run >= 2 { return end() }
            run = u == Self.closeBracket ? run + 1 : 0
            return
        case .declaration:
            declaration(u)
        case .reference:
            if u == Self.semicolon {
                state = .text
                return
            }
            if u == Self.lt {
                begin(.open)
                return
            }
            if Self.isSpace(u) {
                state = .text
                return
            }
        }
        guard state != .text else { return }
        length += width
        if length > limit { throw overlong() }
    }

    private mutating func begin(_ next: State) {
        state = next
        length = width
        startLine = line
        startColumn = column
        name = []
        nameDone = false
    }

    private mutating func end() {
        state = .text
        length = 0
    }

    private mutating func tag(_ u: UInt32) {
        if quote != 0 {
            if u == quote { quote = 0 }
        } else if u == Self.doubleQuote || u == Self.singleQuote {
            quote = u
        } else if u == Self.gt {
            end()
            return
        }
        if !nameDone {
            if Self.isSpace(u) || u == Self.gt || (u == Self.slash && !name.isEmpty) {
                nameDone = true
            } else if name.count < 60 {
                name.append(u < 0x80 ? UInt8(u) : UInt8(ascii: "?"))
            }
        }
    }

    /// A DOCTYPE (or another `<!…>` declaration): quotes, the internal subset in `[…]` and comments inside it.
    private mutating func declaration(_ u: UInt32) {
        recent = recent << 8 | (u < 0x80 ? u : 0)
        if subsetComment {
            if recent & 0xFF_FFFF == 0x2D_2D3E { subsetComment = false }  // "-->"
            return
        }
        if quote != 0 {
            if u == quote { quote = 0 }
            return
        }
        if inSubset && recent == 0x3C21_2D2D {  // "<!--"
            subsetComment = true
        } else if u == Self.doubleQuote || u == Self.singleQuote {
            quote = u
        } else if u == Self.openBracket {
            inSubset = true
        } else if u == Self.closeBracket {
            inSubset = false
        } else if u == Self.gt && !inSubset {
            end()
        }
    }

    private func overlong() -> Failure {
        let what: String
        switch state {
        case .tag, .open:
            let text = String(decoding: name, as: UTF8.self)
            what = text.hasPrefix("/") ? "the end tag <\(text)…" : "the start tag <\(text)…"
        case .pi: what = "a processing instruction (or the XML declaration)"
        case .bang, .comment: what = "a comment"
        case .cdata: what = "a CDATA section's opening"
        case .declaration: what = "a DOCTYPE or <!…> declaration"
        case .reference: what = "an entity or character reference"
        case .text: what = "markup"
        }
        return Failure(line: startLine, column: startColumn, message: "\(what) is longer than \(limit) bytes (maxRecordBytes)")
    }
}
