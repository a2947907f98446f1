import DatenwerkCore

/// Newline-delimited JSON: one value per line, blank lines skipped. A line that is not valid JSON is rejected
/// with its line number and decoding goes on; only a line over `maxRecordBytes` stops it.
package struct NDJSONDecoder: IngestingRecordDecoder, Sendable {
    package let origin: String
    package let maxRecordBytes: Int

    private var bom = ByteOrderMarkFilter()
    private var buffer: [UInt8] = []
    /// Bytes of the current line already searched for its end.
    private var searched = 0
    private var line = 1
    private var records = 0

    package init(origin: String, maxRecordBytes: Int = 8 << 20) {
        self.origin = origin
        self.maxRecordBytes = maxRecordBytes
    }

    package mutating func ingest(_ bytes: some Collection<UInt8>, final: Bool) throws -> [DecodedRecord] {
        if bom.decided {
            buffer.append(contentsOf: bytes)
        } else {
            guard let first = bom.filter(bytes, final: final) else { return [] }
            buffer.append(contentsOf: first)
        }
        var out: [DecodedRecord] = []
        var consumed = 0
        do {
            let bytes = buffer
            try bytes.withUnsafeBufferPointer { p in
                let end = p.count
                var i = searched
                var lineStart = 0
                while true {
                    while i < end && p[i] != UInt8(ascii: "\n") { i += 1 }
                    guard i < end || (final && lineStart < end) else { break }
                    // The same limit whether the line arrived in one chunk or many.
                    if i - lineStart > maxRecordBytes { throw tooLong() }
                    decodeLine(UnsafeBufferPointer(rebasing: p[lineStart..<i]), into: &out)
                    line += 1
                    i = min(i + 1, end)
                    lineStart = i
                }
                consumed = lineStart
                searched = i - lineStart
            }
        }
        if consumed > 0 { buffer.removeSubrange(0..<consumed) }
        if buffer.count > maxRecordBytes { throw tooLong() }
        return out
    }

    private func tooLong() -> FormatError {
        FormatError(
            location: SourceLocation(origin: origin, line: line, record: records + 1),
            message: "\(origin):\(line): line is longer than \(maxRecordBytes) bytes (maxRecordBytes)"
        )
    }

    private mutating func decodeLine(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [DecodedRecord]) {
        var s = 0
        var e = bytes.count
        while s < e && isJSONWhitespace(bytes[s]) { s += 1 }
        while e > s && isJSONWhitespace(bytes[e - 1]) { e -= 1 }
        guard s < e else { return }
        records += 1
        let location = SourceLocation(origin: origin, line: line, record: records)
        var textEnd = bytes.count
        if textEnd > 0 && bytes[textEnd - 1] == UInt8(ascii: "\r") { textEnd -= 1 }
        let raw = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<textEnd]), as: UTF8.self)
        do {
            let value = try JSONParser.parse(buffer: UnsafeBufferPointer(rebasing: bytes[s..<e]))
            out.append(.record(Record(json: value, location: location, raw: raw)))
        } catch {
            let reason = "invalid JSON in line \(line), column \(s + error.offset + 1): \(error.message)"
            out.append(.rejected(QuarantinedRecord(error: RecordError(location, reason), raw: raw)))
        }
    }
}
