import CompressNIO
import DatenwerkPublishing
import DatenwerkTransforms
import HTTPTypes
import NIOCore

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for `Last-Modified`, and reading it back from
/// `If-Modified-Since` (the obsolete RFC 850 and asctime forms are not read: such a request just gets a 200).
enum HTTPDate {
    static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]   // 1970-01-01 was a Thursday
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(micros: Int64) -> String {
        let seconds = CivilTime.floorDiv(micros, 1_000_000)
        let days = CivilTime.floorDiv(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = CivilTime.date(days: days)
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(weekday), \(two(day)) \(months[month - 1]) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Seconds since 1970 of an IMF-fixdate, or nil.
    static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]), (1...31).contains(day) else { return nil }
        let clock = parts[4].split(separator: ":")
        guard clock.count == 3, let h = Int(clock[0]), let m = Int(clock[1]), let s = Int(clock[2]),
              (0..<24).contains(h), (0..<60).contains(m), (0...60).contains(s) else { return nil }
        return CivilTime.days(year: year, month: month + 1, day: day) * 86_400 + Int64(h * 3600 + m * 60 + s)
    }
}

/// Conditional requests (RFC 9110 §13): `If-None-Match` first, `If-Modified-Since` only without it.
enum Conditional {
    static func notModified(_ headers: HTTPFields, etag: String, lastModifiedMicros: Int64?) -> Bool {
        if let match = headers[.ifNoneMatch] {
            let tag = opaque(etag)
            return match.split(separator: ",").contains { candidate in
                let c = candidate.trimmingCharacters(in: .whitespaces)
                return c == "*" || opaque(c) == tag
            }
        }
        if let since = headers[.ifModifiedSince].flatMap(HTTPDate.parse), let modified = lastModifiedMicros {
            return CivilTime.floorDiv(modified, 1_000_000) <= since
        }
        return false
    }

    /// The tag without a weak prefix (weak comparison).
    static func opaque(_ tag: String) -> String {
        tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag
    }

    /// True when `Accept-Encoding` accepts gzip (`gzip`, `x-gzip` or `*` with q > 0).
    static func acceptsGzip(_ headers: HTTPFields) -> Bool {
        guard let value = headers[.acceptEncoding] else { return false }
        var gzip: Double?, star: Double?
        for item in value.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first else { continue }
            var q = 1.0
            for p in parts.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 0 }
            if coding == "gzip" || coding == "x-gzip" { gzip = q } else if coding == "*" { star = q }
        }
        return (gzip ?? star ?? 0) > 0
    }

    /// FNV-1a, 64 bit: a short stable hash for ETags (not for security).
    static func hash(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return String(h, radix: 16).leftPadded(to: 16)
    }
}

/// gzip (RFC 1952) over a stream of chunks with CompressNIO's zlib: each chunk goes in as it comes and
/// whatever deflate has ready comes out, so only deflate's own window is held, never the body.
final class GzipStream {
    private let compressor: any NIOCompressor
    private var output: ByteBuffer
    private let allocator = ByteBufferAllocator()
    static let outputChunk = 32 * 1024

    init() throws {
        compressor = CompressionAlgorithm.gzip().compressor
        try compressor.startStream()
        output = allocator.buffer(capacity: Self.outputChunk)
    }

    /// Compresses `input`; returns the compressed bytes ready so far (nil when deflate kept them all).
    func compress(_ input: ByteBuffer) throws -> ByteBuffer? {
        var input = input
        while input.readableBytes > 0 {
            if output.writableBytes < 1024 { output.reserveCapacity(output.writerIndex + Self.outputChunk) }
            let before = input.readableBytes
            do {
                try compressor.streamDeflate(from: &input, to: &output, flush: .no)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // The output buffer is full: it grows on the next turn.
            }
            if input.readableBytes == before && output.writableBytes > 0 {
                output.reserveCapacity(output.capacity * 2)
            }
        }
        return take()
    }

    /// Ends the stream: the rest of deflate's output and the gzip trailer.
    func finish() throws -> ByteBuffer {
        while true {
            if output.writableBytes < 1024 { output.reserveCapacity(output.writerIndex + Self.outputChunk) }
            do {
                try compressor.finishDeflate(to: &output)
                break
            } catch let error as CompressNIOError where error == .bufferOverflow {
                output.reserveCapacity(output.writerIndex + Self.outputChunk)
            }
        }
        try compressor.finishStream()
        return take() ?? allocator.buffer(capacity: 0)
    }

    private func take() -> ByteBuffer? {
        guard output.readableBytes > 0 else { return nil }
        let ready = output
        output = allocator.buffer(capacity: Self.outputChunk)
        return ready
    }
}
