import DatenwerkCore

/// What a decoder yields for one record of its input: the record, or the record's raw text with the reason it was rejected.
package enum DecodedRecord: Sendable {
    case record(Record)
    case rejected(QuarantinedRecord)

    /// The record, when it was not rejected.
    package var record: Record? {
        if case .record(let record) = self { return record }
        return nil
    }

    /// The quarantined record, when it was rejected.
    package var rejected: QuarantinedRecord? {
        if case .rejected(let quarantined) = self { return quarantined }
        return nil
    }
}

/// A problem that stops a decoder: the rest of the input cannot be read (invalid JSON syntax,
/// a truncated document, an unterminated quoted field, a record over the size cap).
///
/// `message` is complete on its own: it names the origin and the line or byte offset.
package struct FormatError: Error, Sendable, CustomStringConvertible {
    package var location: SourceLocation
    package var message: String

    package init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    package var description: String { message }
}

/// A push-based decoder: bytes in, records out, with only the unfinished record kept between calls.
package protocol RecordDecoder {
    /// Feed the next chunk of raw bytes (any split point, even inside a UTF-8 sequence, a quoted field or a JSON string).
    mutating func feed(_ bytes: some Collection<UInt8>) throws -> [DecodedRecord]
    /// End of input: flush the last record; throw FormatError if the document is incomplete.
    mutating func finish() throws -> [DecodedRecord]
}

/// A decoder that takes every chunk, and the end, through one `ingest` (`final` at the end).
package protocol IngestingRecordDecoder: RecordDecoder {
    mutating func ingest(_ bytes: some Collection<UInt8>, final: Bool) throws -> [DecodedRecord]
}

extension IngestingRecordDecoder {
    package mutating func feed(_ bytes: some Collection<UInt8>) throws -> [DecodedRecord] {
        try ingest(bytes, final: false)
    }

    package mutating func finish() throws -> [DecodedRecord] {
        try ingest(EmptyCollection<UInt8>(), final: true)
    }
}

/// Holds back the first bytes of a stream until it is known whether they are a UTF-8 byte order mark, then drops it.
struct ByteOrderMarkFilter {
    private var pending: [UInt8] = []
    private(set) var decided = false
    /// 3 when a BOM was dropped.
    private(set) var droppedBytes = 0

    /// Passes `bytes` on, minus a leading BOM; returns nil while the first three bytes are not all there yet.
    mutating func filter(_ bytes: some Collection<UInt8>, final: Bool) -> [UInt8]? {
        pending.append(contentsOf: bytes)
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let prefixMatches = zip(pending, bom).allSatisfy { $0 == $1 }
        if prefixMatches && pending.count < 3 && !final { return nil }
        decided = true
        var out: [UInt8] = []
        swap(&out, &pending)
        if prefixMatches && out.count >= 3 {
            out.removeFirst(3)
            droppedBytes = 3
        }
        return out
    }
}

@inline(__always) func isJSONWhitespace(_ b: UInt8) -> Bool {
    b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
}

/// A byte for messages: printable ASCII as itself, anything else as hex.
func describeByte(_ b: UInt8) -> String {
    if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
    return "byte 0x" + String(b, radix: 16, uppercase: true)
}
