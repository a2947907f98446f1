import DatenwerkCore

/// How a delimited text file is laid out. The defaults read RFC 4180 CSV in UTF-8 with a header row.
package struct CSVOptions: Sendable {
    /// The field separator, an ASCII byte (`,` `;` tab `|`).
    package var delimiter: UInt8 = UInt8(ascii: ",")
    /// The quote byte; nil reads quotes as ordinary characters.
    package var quote: UInt8? = UInt8(ascii: "\"")
    /// The file's encoding; cells come out as UTF-8 either way. A UTF-8 BOM is always dropped.
    package var encoding: TextEncoding = .utf8
    /// Physical lines to skip before the header (or the first data row).
    package var skipRows: Int = 0
    /// Whether the first row (after `skipRows`) names the columns.
    package var header: Bool = true
    /// Column names when `header` is false, or names that replace those of the header row.
    package var columns: [String]? = nil
    /// Lines starting with one of these are skipped wherever they appear (`#`, footers like `Gesamt;` or `Quelle:`).
    package var commentPrefixes: [String] = []
    /// Strip spaces and tabs around unquoted fields (DWD pads its fields).
    package var trimFields: Bool = false
    /// Skip lines with no characters at all; otherwise they are records with one empty field.
    package var skipEmptyLines: Bool = true
    /// A record longer than this (in UTF-8 bytes) stops decoding with a `FormatError`; it protects memory from an unbalanced quote.
    package var maxRecordBytes: Int = 1 << 20

    package init() {}
}

/// Streaming CSV: RFC 4180 quoting, CR/LF/CRLF line ends, Latin-1 and Windows-1252 input, header normalisation.
///
/// Every cell is a `.string`; cells missing from a short row are `.null`. All rows of one file share one `FieldIndex`.
/// A row with more non-empty fields than the header, or with invalid UTF-8, is rejected; decoding goes on.
package struct CSVDecoder: IngestingRecordDecoder, Sendable {
    package let options: CSVOptions
    package let origin: String

    private enum Mode: UInt8 {
        case lineStart, skipLine, fieldStart, unquoted, quoted, quotedQuote, afterQuoted
    }

    private struct FieldSpan {
        var start: Int
        var end: Int
        var quoted: Bool
    }

    private let delimiter: UInt8
    private let quote: UInt8
    private let quoting: Bool
    private let trim: Bool
    private let comments: [[UInt8]]
    private let longestComment: Int

    private var bom = ByteOrderMarkFilter()
    /// Unconsumed UTF-8 bytes: the record in progress and anything after it.
    private var buffer: [UInt8] = []
    private var pos = 0
    private var recordStart = 0
    private var fieldStart = 0
    private var mode = Mode.lineStart
    private var spans: [FieldSpan] = []
    /// Physical line of the byte at `pos`.
    private var line = 1
    private var recordLine = 1
    /// The last line ended with CR: an LF right after it belongs to the same line end.
    private var lastWasCR = false
    private var linesToSkip: Int
    private var headerPending: Bool
    private var fieldIndex: FieldIndex?
    private var dataRecords = 0
    private var scratch: [UInt8] = []

    package init(options: CSVOptions, origin: String) {
        self.options = options
        self.origin = origin
        delimiter = options.delimiter
        quote = options.quote ?? 0
        quoting = options.quote != nil
        trim = options.trimFields
        comments = options.commentPrefixes.filter { !$0.isEmpty }.map { Array($0.utf8) }
        longestComment = comments.map(\.count).max() ?? 0
        linesToSkip = max(0, options.skipRows)
        headerPending = options.header
        if !options.header, let columns = options.columns {
            fieldIndex = FieldIndex(CSVDecoder.normalizedNames(columns))
        }
    }

    /// The column names, once the header row has been read (or from `columns`).
    package var fields: FieldIndex? { fieldIndex }

    // MARK: - Input

    package mutating func ingest(_ bytes: some Collection<UInt8>, final: Bool) throws -> [DecodedRecord] {
        if bom.decided {
            append(bytes)
        } else {
            guard let first = bom.filter(bytes, final: final) else { return [] }
            append(first)
        }
        var out: [DecodedRecord] = []
        do {
            let bytes = buffer
            try bytes.withUnsafeBufferPointer { p in try scan(p, final: final, into: &out) }
        }
        compact()
        return out
    }

    private mutating func append(_ bytes: some Collection<UInt8>) {
        guard options.encoding != .utf8 else {
            buffer.append(contentsOf: bytes)
            return
        }
        let encoding = options.encoding
        let done: Void? = bytes.withContiguousStorageIfAvailable { encoding.appendTranscodingToUTF8($0, to: &buffer) }
        if done == nil {
            Array(bytes).withUnsafeBufferPointer { encoding.appendTranscodingToUTF8($0, to: &buffer) }
        }
    }

    /// Drops consumed bytes so that only the record in progress stays in memory.
    private mutating func compact() {
        let keep: Int
        switch mode {
        case .lineStart, .skipLine: keep = pos
        default: keep = recordStart
        }
        guard keep > 0 else { return }
        if keep >= buffer.count {
            buffer.removeAll(keepingCapacity: true)
        } else {
            buffer.removeSubrange(0..<keep)
        }
        pos -= keep
        recordStart -= keep
        fieldStart -= keep
        for k in spans.indices {
            spans[k].start -= keep
            spans[k].end -= keep
        }
    }

    // MARK: - Scanner

    private mutating func scan(_ p: UnsafeBufferPointer<UInt8>, final: Bool, into out: inout [DecodedRecord]) throws {
        let end = p.count
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        let delimiter = self.delimiter, quote = self.quote
        var i = pos
        var mode = self.mode
        defer {
            pos = i
            self.mode = mode
        }

        /// Consumes the line end at `i` (CR, LF or CRLF).
        @inline(__always) func consumeLineEnd() {
            let b = p[i]
            i += 1
            line += 1
            if b == cr {
                if i < end {
                    if p[i] == lf { i += 1 }
                } else {
                    lastWasCR = true
                }
            }
        }

        scanning: while i < end {
            switch mode {
            case .lineStart:
                let b = p[i]
                if lastWasCR {
                    lastWasCR = false
                    if b == lf { i += 1; continue }
                }
                if linesToSkip > 0 {
                    mode = .skipLine
                    continue
                }
                if longestComment > 0 {
                    switch commentMatch(p, at: i, final: final) {
                    case .yes: mode = .skipLine; continue
                    case .needMore: break scanning
                    case .no: break
                    }
                }
                if b == cr || b == lf {
                    if options.skipEmptyLines {
                        consumeLineEnd()
                        continue
                    }
                    recordStart = i
                    recordLine = line
                    spans.removeAll(keepingCapacity: true)
                    spans.append(FieldSpan(start: i, end: i, quoted: false))
                    try endRecord(p, end: i, into: &out)
                    consumeLineEnd()
                    continue
                }
                recordStart = i
                recordLine = line
                fieldStart = i
                spans.removeAll(keepingCapacity: true)
                mode = .fieldStart

            case .skipLine:
                while i < end && p[i] != cr && p[i] != lf { i += 1 }
                if i == end { break scanning }
                consumeLineEnd()
                if linesToSkip > 0 { linesToSkip -= 1 }
                mode = .lineStart

            case .fieldStart:
                let b = p[i]
                if quoting && b == quote {
                    mode = .quoted
                    i += 1
                } else if trim && (b == space || b == tab) {
                    i += 1
                } else {
                    mode = .unquoted
                }

            case .unquoted, .afterQuoted:
                var b: UInt8 = 0
                while i < end {
                    b = p[i]
                    if b == delimiter || b == cr || b == lf { break }
                    i += 1
                }
                if i == end { break scanning }
                try endField(at: i, quoted: mode == .afterQuoted)
                if b == delimiter {
                    i += 1
                    fieldStart = i
                    mode = .fieldStart
                } else {
                    try endRecord(p, end: i, into: &out)
                    consumeLineEnd()
                    mode = .lineStart
                }

            case .quoted:
                while i < end {
                    let b = p[i]
                    if b == quote { break }
                    if b == lf {
                        if p[i - 1] != cr { line += 1 }  // p[i - 1] is at least the opening quote
                    } else if b == cr {
                        line += 1
                    }
                    i += 1
                }
                if i == end { break scanning }
                i += 1
                mode = .quotedQuote

            case .quotedQuote:
                let b = p[i]
                if b == quote {
                    i += 1
                    mode = .quoted
                } else if b == delimiter {
                    try endField(at: i, quoted: true)
                    i += 1
                    fieldStart = i
                    mode = .fieldStart
                } else if b == cr || b == lf {
                    try endField(at: i, quoted: true)
                    try endRecord(p, end: i, into: &out)
                    consumeLineEnd()
                    mode = .lineStart
                } else {
                    mode = .afterQuoted
                }
            }
        }

        if !final {
            if mode != .lineStart && mode != .skipLine && end - recordStart > options.maxRecordBytes {
                throw tooLong()
            }
            return
        }
        switch mode {
        case .lineStart, .skipLine:
            break
        case .quoted:
            throw FormatError(
                location: SourceLocation(origin: origin, line: recordLine, record: dataRecords + 1),
                message: "\(origin):\(recordLine): quoted field is not closed before the end of the file; is a quote unbalanced or the file cut off?"
            )
        case .fieldStart, .unquoted, .afterQuoted, .quotedQuote:
            try endField(at: end, quoted: mode == .afterQuoted || mode == .quotedQuote)
            try endRecord(p, end: end, into: &out)
            mode = .lineStart
        }
    }

    private enum CommentMatch { case yes, no, needMore }

    private func commentMatch(_ p: UnsafeBufferPointer<UInt8>, at i: Int, final: Bool) -> CommentMatch {
        let available = p.count - i
        var couldMatch = false
        for prefix in comments {
            let n = min(prefix.count, available)
            var equal = true
            for k in 0..<n where p[i + k] != prefix[k] {
                equal = false
                break
            }
            guard equal else { continue }
            if n == prefix.count { return .yes }
            couldMatch = true
        }
        return couldMatch && !final ? .needMore : .no
    }

    @inline(__always) private mutating func endField(at i: Int, quoted: Bool) throws {
        if i - recordStart > options.maxRecordBytes { throw tooLong() }
        spans.append(FieldSpan(start: fieldStart, end: i, quoted: quoted))
    }

    private func tooLong() -> FormatError {
        FormatError(
            location: SourceLocation(origin: origin, line: recordLine, record: dataRecords + 1),
            message: "\(origin):\(recordLine): record is longer than \(options.maxRecordBytes) bytes (maxRecordBytes); is a quote unbalanced?"
        )
    }

    // MARK: - Records

    private mutating func endRecord(_ p: UnsafeBufferPointer<UInt8>, end: Int, into out: inout [DecodedRecord]) throws {
        if headerPending {
            headerPending = false
            let names = options.columns ?? spans.map { span in
                let text = fieldText(p, span)
                return String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
            }
            fieldIndex = FieldIndex(CSVDecoder.normalizedNames(names))
            return
        }
        dataRecords += 1
        let location = SourceLocation(origin: origin, line: recordLine, record: dataRecords)
        let rawBytes = UnsafeBufferPointer(rebasing: p[recordStart..<end])
        let raw = String(decoding: rawBytes, as: UTF8.self)
        if options.encoding == .utf8, let bad = firstInvalidUTF8(rawBytes) {
            let badLine = recordLine + lineBreaks(in: UnsafeBufferPointer(rebasing: rawBytes[0..<bad]))
            let reason = "invalid UTF-8 (\(describeByte(rawBytes[bad]))) in line \(badLine); is the file encoded as windows-1252 or iso-8859-1?"
            out.append(.rejected(QuarantinedRecord(error: RecordError(location, reason), raw: raw)))
            return
        }
        let index: FieldIndex
        if let fieldIndex {
            index = fieldIndex
        } else {
            index = FieldIndex((1...max(1, spans.count)).map { "column_\($0)" })
            fieldIndex = index
        }
        let width = index.count
        var used = spans.count
        if used > width {
            for k in width..<used where !isEmpty(p, spans[k]) {
                let reason = "row has \(used) fields, header has \(width)"
                out.append(.rejected(QuarantinedRecord(error: RecordError(location, reason), raw: raw)))
                return
            }
            used = width
        }
        var values: [JSONValue] = []
        values.reserveCapacity(width)
        for k in 0..<used { values.append(.string(fieldText(p, spans[k]))) }
        while values.count < width { values.append(.null) }
        out.append(.record(Record(fields: index, values: values, location: location, raw: raw)))
    }

    private func lineBreaks(in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0
        for (k, b) in bytes.enumerated() {
            if b == UInt8(ascii: "\r") || (b == UInt8(ascii: "\n") && (k == 0 || bytes[k - 1] != UInt8(ascii: "\r"))) { count += 1 }
        }
        return count
    }

    @inline(__always) private func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    private func isEmpty(_ p: UnsafeBufferPointer<UInt8>, _ span: FieldSpan) -> Bool {
        if span.quoted { return fieldText(p, span).isEmpty }
        if span.start == span.end { return true }
        return trim && p[span.start..<span.end].allSatisfy(isBlank)
    }

    /// The cell text of a field: unquoted and unescaped, trimmed when asked to.
    private func fieldText(_ p: UnsafeBufferPointer<UInt8>, _ span: FieldSpan) -> String {
        var s = span.start
        var e = span.end
        if !span.quoted {
            if trim {
                while s < e && isBlank(p[s]) { s += 1 }
                while e > s && isBlank(p[e - 1]) { e -= 1 }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: p[s..<e]), as: UTF8.self)
        }
        while p[s] != quote { s += 1 }  // blanks before the opening quote (trimFields)
        s += 1
        if trim {
            while e > s && isBlank(p[e - 1]) { e -= 1 }
        }
        // Fast path: no doubled quote, nothing after the closing quote.
        var j = s
        while j < e && p[j] != quote { j += 1 }
        if j + 1 == e {
            return String(decoding: UnsafeBufferPointer(rebasing: p[s..<j]), as: UTF8.self)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(e - s)
        var inQuotes = true
        var k = s
        while k < e {
            let b = p[k]
            if inQuotes && b == quote {
                if k + 1 < e && p[k + 1] == quote {
                    bytes.append(quote)
                    k += 2
                    continue
                }
                inQuotes = false
            } else {
                bytes.append(b)
            }
            k += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Header names: trimmed, empty ones become `column_N`, repeated ones get `_2`, `_3`, ….
    static func normalizedNames(_ names: [String]) -> [String] {
        var seen = Set<String>()
        var result: [String] = []
        result.reserveCapacity(names.count)
        for (k, original) in names.enumerated() {
            var name = String(original.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
            if name.isEmpty { name = "column_\(k + 1)" }
            if seen.contains(name) {
                var n = 2
                while seen.contains("\(name)_\(n)") { n += 1 }
                name = "\(name)_\(n)"
            }
            seen.insert(name)
            result.append(name)
        }
        return result
    }
}
