import NIOCore

/// The format of a `COPY … FROM STDIN` (`GuardedConnection.copyFrom`).
package enum CopyFormat: Sendable {
    /// Tab-separated text (`CopyText`).
    case text
    /// PostgreSQL's binary COPY format (`BinaryRowWriter`): the server reads each value with the type's
    /// receive function instead of parsing text. `psql \copy` of the 1.67M hourly buckets of the bench's 10M
    /// load into `observations_hourly`: 2.7 s binary, 3.5 s text; the bench's 1M-row first load: 2.3 s
    /// against 2.9 s. The client saves formatting every double and timestamp as text.
    case binary
}

/// PostgreSQL's binary COPY format, the parts around the rows: the stream starts with `header` and ends
/// with `trailer` (`GuardedConnection.copyFrom` writes both; callers write rows only).
package enum CopyBinary {
    /// `PGCOPY\n\xFF\r\n\0`, no flags (no OIDs), no header extension.
    package static let header: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]
    /// A field count of -1.
    package static let trailer: [UInt8] = [0xFF, 0xFF]
    /// PostgreSQL's epoch (2000-01-01 UTC) in µs since 1970-01-01: binary `timestamptz` counts from it (written
    /// here, read by downloads: `UTCMicros`, `DownloadRowReader`).
    static let epochMicros: Int64 = 946_684_800_000_000
    /// And binary `date` in days.
    static let epochDays: Int64 = 10_957
}

/// Writes one binary COPY row into memory reserved for it (no capacity check per field): a field count, then
/// each field as a 4-byte length (-1: NULL) and its value in network byte order.
struct BinaryRowWriter {
    let base: UnsafeMutableRawPointer
    var count = 0

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inline(__always) private mutating func put<T: FixedWidthInteger>(_ value: T) {
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// The row's number of fields (first).
    @inline(__always) mutating func fields(_ n: Int16) { put(n) }

    @inline(__always) mutating func null() { put(Int32(-1)) }

    /// `int8`.
    @inline(__always) mutating func int8(_ v: Int64) {
        put(Int32(8))
        put(v)
    }

    /// `int4`.
    @inline(__always) mutating func int4(_ v: Int32) {
        put(Int32(4))
        put(v)
    }

    /// `float8`: the exact bits (text had to round-trip through the shortest decimal).
    @inline(__always) mutating func float8(_ v: Double) {
        put(Int32(8))
        put(v.bitPattern)
    }

    /// `timestamptz` from µs since 1970-01-01 UTC. The server checks the range, as it does for text.
    @inline(__always) mutating func timestamp(_ micros: Int64) {
        put(Int32(8))
        put(micros &- CopyBinary.epochMicros)
    }

    /// `date` from days since 1970-01-01.
    @inline(__always) mutating func date(days: Int64) {
        put(Int32(4))
        put(Int32(truncatingIfNeeded: days - CopyBinary.epochDays))
    }

    /// `text` as UTF-8; NUL bytes are dropped (PostgreSQL's text cannot hold them; the text format dropped them
    /// too). Needs 4 + the UTF-8 length.
    mutating func text(_ s: String) {
        var s = s
        let lengthAt = count
        count += 4
        s.withUTF8 { bytes in
            guard let from = bytes.baseAddress else { return }
            if bytes.firstIndex(of: 0) == nil {
                (base + count).copyMemory(from: from, byteCount: bytes.count)
                count += bytes.count
            } else {
                for b in bytes where b != 0 {
                    base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
                    count += 1
                }
            }
        }
        base.storeBytes(of: Int32(count - lengthAt - 4).bigEndian, toByteOffset: lengthAt, as: Int32.self)
    }

    /// `text` or NULL.
    mutating func optional(_ s: String?) {
        if let s { text(s) } else { null() }
    }
}

extension ByteBuffer {
    /// One binary COPY row of at most `maxBytes`, written by `body`.
    @inline(__always) mutating func writeBinaryRow(maxBytes: Int, _ body: (inout BinaryRowWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes) { raw in
            var w = BinaryRowWriter(raw.baseAddress!)
            body(&w)
            return w.count
        }
    }
}
