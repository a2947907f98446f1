import DatenwerkCore

package struct JSONDecoderOptions: Sendable {
    /// Where the records are: "$" (document is an array of records, or one object = one record),
    /// "$.items", "$.data.records", "$.features" ... (dotted member names; the value there must be an array whose elements are records).
    package var recordPath: String = "$"
    /// An element larger than this stops decoding with a `FormatError`.
    package var maxRecordBytes: Int = 8 << 20

    package init() {}
}

/// Streaming JSON: a byte scanner follows the member path to the record array and hands out its elements
/// one at a time, each parsed by `JSONParser`; only the element in progress is held in memory.
/// Everything else is checked by `JSONValueSkipper` as it streams past, so a `meta` member of any size costs
/// no memory beyond what fits the envelope budget.
///
/// A record path that is absent yields no records; `null` there counts as absent. Any other non-array there,
/// invalid syntax and a truncated document are `FormatError`s.
package struct StreamingJSONDecoder: IngestingRecordDecoder, Sendable {
    package let options: JSONDecoderOptions
    package let origin: String

    /// Envelope members beyond this many bytes in total are dropped.
    package static let envelopeLimit = 1 << 20

    private enum State {
        case rootValue, keyOrClose, key, inKey, colon, memberValue, commaOrClose
        case elementOrClose, element, commaOrCloseArray, done
        /// Inside a record: a fast scan for its end (the record is then parsed by `JSONParser`, which checks it).
        case skipping
        /// Inside a value outside the records: checked byte by byte by `skipper`, kept only while it fits the envelope budget.
        case validating
    }

    private enum Purpose {
        case record, rootRecord, envelopeMember(String), rootEnvelope
    }

    /// An object on the way to the record array; `level` is how many path components lead to it.
    private struct Frame {
        var key: String?
        var level: Int
        var members: [JSONValue.Member] = []
        var matched = false
    }

    private let components: [String]
    /// The record path as written in locations (`$.items`).
    private let pathText: String

    private var bom = ByteOrderMarkFilter()
    private var buffer: [UInt8] = []
    /// Absolute input offset of `buffer[0]`.
    private var base = 0
    private var pos = 0
    private var state = State.rootValue
    private var frames: [Frame] = []
    private var finishedEnvelope: JSONValue?
    private var envelopeBudget = StreamingJSONDecoder.envelopeLimit
    private var recordCount = 0
    private var keyStart = 0
    private var pendingKey = ""

    // The value being skipped or captured.
    private var purpose = Purpose.rootEnvelope
    private var valueStart = 0
    private var capturing = false
    private var scalar = false
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var skipper = JSONValueSkipper()

    package init(options: JSONDecoderOptions, origin: String) {
        self.options = options
        self.origin = origin
        var path = Substring(options.recordPath.trimmingPrefix(while: \.isWhitespace))
        if path.hasPrefix("$") { path = path.dropFirst() }
        // "$.items[*]" and "$.items[]" mean the same as "$.items".
        for suffix in ["[*]", "[]"] where path.hasSuffix(suffix) { path = path.dropLast(suffix.count) }
        components = path.split(separator: ".").map(String.init)
        pathText = "$" + components.map { "." + $0 }.joined()
    }

    /// Everything in the document except the record array (members up to `envelopeLimit` bytes in total):
    /// `@iot.nextLink`, `links`, `total`, … for paging. Complete after `finish()`; before that, what has been read so far.
    package var envelope: JSONValue {
        if let finishedEnvelope { return finishedEnvelope }
        var inner: (key: String, value: JSONValue)?
        for frame in frames.reversed() {
            var members = frame.members
            if let inner { members.append(JSONValue.Member(inner.key, inner.value)) }
            inner = (frame.key ?? "", .object(members))
        }
        return inner?.value ?? .object([])
    }

    /// Bytes held between calls (the record in progress, or an envelope value while it fits the budget).
    var retainedBytes: Int { buffer.count }

    package mutating func ingest(_ bytes: some Collection<UInt8>, final: Bool) throws -> [DecodedRecord] {
        if bom.decided {
            buffer.append(contentsOf: bytes)
        } else {
            guard let first = bom.filter(bytes, final: final) else { return [] }
            base = bom.droppedBytes
            buffer.append(contentsOf: first)
        }
        var out: [DecodedRecord] = []
        do {
            let bytes = buffer
            try bytes.withUnsafeBufferPointer { p in try scan(p, final: final, into: &out) }
        }
        if final && state != .done {
            let offset = base + buffer.count
            if offset == bom.droppedBytes && state == .rootValue {
                throw FormatError(location: SourceLocation(origin: origin), message: "\(origin) is empty; expected a JSON document")
            }
            throw FormatError(
                location: SourceLocation(origin: origin),
                message: "unexpected end of JSON in \(origin) at byte \(offset): body cut off?"
            )
        }
        compact()
        return out
    }

    private mutating func compact() {
        var keep = pos
        if (state == .skipping || state == .validating) && capturing { keep = valueStart }
        if state == .inKey { keep = keyStart }
        guard keep > 0 else { return }
        if keep >= buffer.count {
            buffer.removeAll(keepingCapacity: true)
        } else {
            buffer.removeSubrange(0..<keep)
        }
        base += keep
        pos -= keep
        valueStart -= keep
        keyStart -= keep
        skipper.shift(by: keep)
    }

    private func syntaxError(_ message: String, at offset: Int) -> FormatError {
        FormatError(location: SourceLocation(origin: origin), message: "invalid JSON in \(origin) at byte \(base + offset): \(message)")
    }

    private func unexpected(_ b: UInt8, at offset: Int, expected: String) -> FormatError {
        syntaxError("unexpected \(describeByte(b)), expected \(expected)", at: offset)
    }

    // MARK: - Scanner

    private mutating func scan(_ p: UnsafeBufferPointer<UInt8>, final: Bool, into out: inout [DecodedRecord]) throws {
        let end = p.count
        var i = pos
        defer { pos = i }
        scanning: while i < end {
            switch state {
            case .skipping:
                guard skip(p, &i) else { break scanning }
                try completeValue(p, end: i, into: &out)
                continue
            case .validating:
                let complete: Bool
                do {
                    complete = try skipper.advance(p, &i)
                } catch {
                    throw syntaxError(error.message, at: error.offset)
                }
                guard complete else { break scanning }
                try completeValue(p, end: i, into: &out)
                continue
            case .inKey:
                while i < end {
                    let b = p[i]
                    if escaped {
                        escaped = false
                    } else if b == UInt8(ascii: "\\") {
                        escaped = true
                    } else if b == UInt8(ascii: "\"") {
                        break
                    }
                    i += 1
                }
                if i == end {
                    if i - keyStart > options.maxRecordBytes { throw syntaxError("member name longer than \(options.maxRecordBytes) bytes", at: keyStart) }
                    break scanning
                }
                i += 1
                if i - keyStart > options.maxRecordBytes { throw syntaxError("member name longer than \(options.maxRecordBytes) bytes", at: keyStart) }
                do {
                    pendingKey = try JSONParser.parseString(buffer: UnsafeBufferPointer(rebasing: p[keyStart..<i]))
                } catch {
                    throw syntaxError(error.message, at: keyStart + error.offset)
                }
                state = .colon
                continue
            default:
                break
            }

            let b = p[i]
            if isJSONWhitespace(b) {
                i += 1
                continue
            }
            switch state {
            case .rootValue:
                if components.isEmpty && b == UInt8(ascii: "[") {
                    i += 1
                    state = .elementOrClose
                } else if components.isEmpty {
                    try begin(p, &i, purpose: .rootRecord)
                } else if b == UInt8(ascii: "{") {
                    frames.append(Frame(key: nil, level: 0))
                    i += 1
                    state = .keyOrClose
                } else {
                    try begin(p, &i, purpose: .rootEnvelope)
                }
            case .keyOrClose, .key:
                if b == UInt8(ascii: "\"") {
                    keyStart = i
                    escaped = false
                    i += 1
                    state = .inKey
                } else if b == UInt8(ascii: "}") && state == .keyOrClose {
                    i += 1
                    closeObject()
                } else {
                    throw unexpected(b, at: i, expected: "a member name in quotes")
                }
            case .colon:
                guard b == UInt8(ascii: ":") else { throw unexpected(b, at: i, expected: "':' after a member name") }
                i += 1
                state = .memberValue
            case .memberValue:
                let top = frames.count - 1
                let level = frames[top].level
                if !frames[top].matched && level < components.count && pendingKey == components[level] {
                    frames[top].matched = true
                    if level == components.count - 1 {
                        if b == UInt8(ascii: "[") {
                            i += 1
                            state = .elementOrClose
                        } else if b == UInt8(ascii: "n") {
                            try begin(p, &i, purpose: .envelopeMember(pendingKey))
                        } else {
                            throw syntaxError("\(pathText) is not an array of records (starts with \(describeByte(b)))", at: i)
                        }
                    } else if b == UInt8(ascii: "{") {
                        frames.append(Frame(key: pendingKey, level: level + 1))
                        i += 1
                        state = .keyOrClose
                    } else {
                        try begin(p, &i, purpose: .envelopeMember(pendingKey))
                    }
                } else {
                    try begin(p, &i, purpose: .envelopeMember(pendingKey))
                }
            case .commaOrClose:
                if b == UInt8(ascii: ",") {
                    i += 1
                    state = .key
                } else if b == UInt8(ascii: "}") {
                    i += 1
                    closeObject()
                } else {
                    throw unexpected(b, at: i, expected: "',' or '}'")
                }
            case .elementOrClose, .element:
                if b == UInt8(ascii: "]") && state == .elementOrClose {
                    i += 1
                    state = frames.isEmpty ? .done : .commaOrClose
                } else {
                    try begin(p, &i, purpose: .record)
                }
            case .commaOrCloseArray:
                if b == UInt8(ascii: ",") {
                    i += 1
                    state = .element
                } else if b == UInt8(ascii: "]") {
                    i += 1
                    state = frames.isEmpty ? .done : .commaOrClose
                } else {
                    throw unexpected(b, at: i, expected: "',' or ']'")
                }
            case .done:
                throw syntaxError("unexpected \(describeByte(b)) after the end of the JSON document", at: i)
            case .skipping, .validating, .inKey:
                break
            }
        }

        if state == .validating && final {
            let complete: Bool
            do {
                complete = try skipper.endOfInput(at: i)
            } catch {
                throw syntaxError(error.message, at: error.offset)
            }
            if complete { try completeValue(p, end: i, into: &out) }
        }
        if state == .validating && capturing && i - valueStart > envelopeBudget {
            capturing = false
        }
        if state == .skipping {
            if final && scalar {
                try completeValue(p, end: i, into: &out)
            } else if capturing {
                let length = i - valueStart
                if case .record = purpose, length > options.maxRecordBytes { throw tooLong(at: valueStart) }
                if case .rootRecord = purpose, length > options.maxRecordBytes { throw tooLong(at: valueStart) }
                if length > envelopeBudget, !isRecord { capturing = false }
            }
        }
    }

    private var isRecord: Bool {
        switch purpose {
        case .record, .rootRecord: return true
        case .envelopeMember, .rootEnvelope: return false
        }
    }

    private func tooLong(at offset: Int) -> FormatError {
        let path: String
        if case .rootRecord = purpose { path = "$" } else { path = "\(pathText)[\(recordCount)]" }
        return FormatError(
            location: SourceLocation(origin: origin, record: recordCount + 1, path: path),
            message: "record \(recordCount + 1) in \(origin) at byte \(base + offset) is longer than \(options.maxRecordBytes) bytes (maxRecordBytes)"
        )
    }

    private mutating func closeObject() {
        let frame = frames.removeLast()
        let object = JSONValue.object(frame.members)
        if frames.isEmpty {
            finishedEnvelope = object
            state = .done
        } else {
            frames[frames.count - 1].members.append(JSONValue.Member(frame.key ?? "", object))
            state = .commaOrClose
        }
    }

    /// Starts skipping (and maybe capturing) the value whose first byte is at `i`.
    private mutating func begin(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int, purpose: Purpose) throws {
        self.purpose = purpose
        valueStart = i
        if !isRecord {
            // Checked by the skipper from its first byte on; captured only while it fits the envelope budget.
            skipper = JSONValueSkipper()
            capturing = envelopeBudget > 0
            state = .validating
            return
        }
        let b = p[i]
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth = 1
            inString = false
            scalar = false
        case UInt8(ascii: "\""):
            depth = 0
            inString = true
            scalar = false
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            depth = 0
            inString = false
            scalar = true
        default:
            throw unexpected(b, at: i, expected: "a value")
        }
        escaped = false
        capturing = true
        state = .skipping
        i += 1
    }

    /// Advances over the value being skipped; true when it is complete, with `i` just after it.
    @inline(__always) private mutating func skip(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Bool {
        let end = p.count
        if scalar {
            while i < end {
                let b = p[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || isJSONWhitespace(b) { return true }
                i += 1
            }
            return false
        }
        if escaped {
            guard i < end else { return false }
            escaped = false
            i += 1
        }
        while i < end {
            if inString {
                while i < end {
                    let b = p[i]
                    if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { break }
                    i += 1
                }
                guard i < end else { return false }
                if p[i] == UInt8(ascii: "\\") {
                    if i + 1 < end {
                        i += 2
                    } else {
                        escaped = true
                        i += 1
                        return false
                    }
                    continue
                }
                inString = false
                i += 1
                if depth == 0 { return true }
                continue
            }
            switch p[i] {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    i += 1
                    return true
                }
            default:
                break
            }
            i += 1
        }
        return false
    }

    /// The value that started at `valueStart` ends before `end`. Its bytes are still in `p` only while `capturing`.
    private mutating func completeValue(_ p: UnsafeBufferPointer<UInt8>, end: Int, into out: inout [DecodedRecord]) throws {
        defer { capturing = false }
        let length = end - valueStart
        guard capturing else {
            // An envelope value over the budget: skipped (records are always captured).
            if case .rootEnvelope = purpose { state = .done } else { state = .commaOrClose }
            return
        }
        let bytes = UnsafeBufferPointer(rebasing: p[valueStart..<end])
        func parsed() throws -> JSONValue {
            do {
                return try JSONParser.parse(buffer: bytes)
            } catch {
                throw syntaxError(error.message, at: valueStart + error.offset)
            }
        }
        switch purpose {
        case .record:
            if length > options.maxRecordBytes { throw tooLong(at: valueStart) }
            let value = try parsed()
            let location = SourceLocation(origin: origin, record: recordCount + 1, path: "\(pathText)[\(recordCount)]")
            recordCount += 1
            out.append(.record(Record(json: value, location: location, raw: String(decoding: bytes, as: UTF8.self))))
            state = .commaOrCloseArray
        case .rootRecord:
            if length > options.maxRecordBytes { throw tooLong(at: valueStart) }
            let value = try parsed()
            recordCount += 1
            let location = SourceLocation(origin: origin, record: 1, path: "$")
            out.append(.record(Record(json: value, location: location, raw: String(decoding: bytes, as: UTF8.self))))
            state = .done
        case .envelopeMember(let key):
            if capturing && length <= envelopeBudget {
                let value = try parsed()
                envelopeBudget -= length
                frames[frames.count - 1].members.append(JSONValue.Member(key, value))
            }
            state = .commaOrClose
        case .rootEnvelope:
            if capturing && length <= envelopeBudget {
                finishedEnvelope = try parsed()
                envelopeBudget -= length
            }
            state = .done
        }
    }
}
