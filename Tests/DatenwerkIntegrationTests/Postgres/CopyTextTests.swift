import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import NIOCore
import PostgresNIO
import Testing

/// The loader writes timestamps, numbers and text for COPY itself, byte by byte: PostgreSQL must read back
/// exactly what was meant.
@Suite struct CopyTextTests {
    static func text(_ write: (inout ByteBuffer) -> Void) -> String {
        var b = ByteBufferAllocator().buffer(capacity: 64)
        write(&b)
        return String(buffer: b)
    }

    @Test func timestampsReadBackAsTheSameMicrosecondInPostgreSQL() async throws {
        let day: Int64 = 86_400_000_000
        let micros: [Int64] = [
            0, 1, -1, 999_999, -999_999, 1_704_067_200_000_000, 1_711_846_800_123_456,
            -2_208_988_800_000_000, // 1900-01-01
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // 10000-01-01
            -62_135_596_800_000_000, // 0001-01-01
            -62_135_596_800_000_000 - day, // 0001-12-31 BC
            -62_198_755_200_000_000, // 0001-01-01 BC
        ]
        #expect(Self.text { CopyText.timestamp(1_711_846_800_123_456, &$0) } == "2024-03-31 01:00:00.123456+00")
        #expect(Self.text { CopyText.timestamp(-1, &$0) } == "1969-12-31 23:59:59.999999+00")
        #expect(Self.text { CopyText.timestamp(-62_135_596_800_000_000 - day, &$0) } == "0001-12-31 00:00:00+00 BC")
        try await TestDatabase.with { db in
            for m in micros {
                let text = Self.text { CopyText.timestamp(m, &$0) }
                let back = try await db.client.query("SELECT (extract(epoch FROM \(text)::timestamptz) * 1000000)::int8", logger: db.logger)
                    .decode(Int64.self).collect()
                #expect(back == [m], "\(m) written as \(text)")
            }
        }
    }

    @Test func numbersAndTextReadBackUnchanged() async throws {
        #expect(Self.text { CopyText.integer(0, &$0) } == "0")
        #expect(Self.text { CopyText.integer(-42, &$0) } == "-42")
        #expect(Self.text { CopyText.integer(.max, &$0) } == String(Int64.max))
        #expect(Self.text { CopyText.integer(.min, &$0) } == String(Int64.min))
        #expect(Self.text { CopyText.double(21.5, &$0) } == "21.5")
        #expect(Self.text { CopyText.double(-3, &$0) } == "-3")
        #expect(Self.text { CopyText.text("a\tb\nc\\d\re\u{0}f", &$0) } == "a\\tb\\nc\\\\d\\re" + "f")
        // Runs without an escape are copied whole: at the start, between, at the end, or none at all.
        for (plain, escaped) in [("", ""), ("Hauptstraße 1;7,4", "Hauptstraße 1;7,4"), ("\\", "\\\\"), ("\t\t", "\\t\\t"),
                                 ("\nmitten\r", "\\nmitten\\r"), ("ä\u{0}\u{0}ö", "äö"), (String(repeating: "x", count: 300) + "\t", String(repeating: "x", count: 300) + "\\t")] {
            #expect(Self.text { CopyText.text(plain, &$0) } == escaped, "\(plain.debugDescription)")
        }
        let doubles: [Double] = [0.1, 1e-300, 1.7976931348623157e308, -0.000123456789, 123456789012345678, 0.30000000000000004, 5e-324]
        try await TestDatabase.with { db in
            for d in doubles {
                let text = Self.text { CopyText.double(d, &$0) }
                let back = try await db.client.query("SELECT \(text)::float8", logger: db.logger).decode(Double.self).collect()
                #expect(back == [d], "\(d) written as \(text)")
            }
        }
    }

    /// Values with a short decimal form are written digit by digit: the same text as `description` (whole
    /// numbers as integers), and exactly the same double when read back.
    @Test func doublesWrittenDigitByDigitReadLikeDescription() {
        var generator = SystemRandomNumberGenerator()
        func reference(_ d: Double) -> String {
            d.rounded(.towardZero) == d && d.magnitude < 1e15 ? String(Int64(d)) : d.description
        }
        var values: [Double] = [0.0001, -0.0001, 1.5e-4, 9.999e-5, 0.1 + 0.2, 999_999_999_999_999.9, 1e15 - 0.5, 1e15 + 0.5, 12.3, -7.25, 1013.2, 1e-4 - 1e-20]
        for _ in 0..<20000 { values.append((Double.random(in: -5000...5000, using: &generator) * 100).rounded() / 100) }
        for _ in 0..<20000 {
            let v = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
            if v.isFinite { values.append(v) }
        }
        for d in values {
            let text = Self.text { CopyText.double(d, &$0) }
            #expect(text == reference(d), "\(d)")
            #expect(Double(text) == d, "\(d) written as \(text)")
        }
    }

    @Test func aSpoolGivesBackEveryByteInOrderAcrossItsBuffer() async throws {
        let spool = try LoadSpool("test")
        #expect(spool.isEmpty)
        var expected: [UInt8] = []
        for i in 0..<40_000 {
            let line = "\(i)\tZeile \(i) ä\n"
            expected += Array(line.utf8)
            if i % 2 == 0 {
                try spool.write { $0.writeString(line) }
            } else {
                try spool.append(ByteBuffer(string: line))
            }
        }
        #expect(spool.bytes == expected.count)
        var back: [UInt8] = []
        try await spool.read(chunkBytes: 4096) { chunk in
            #expect(chunk.readableBytes <= 4096)
            back += chunk.readableBytesView
        }
        #expect(back == expected)
    }

    /// Groups of a quarter MiB and more are written from where they are; a segment reads back from an offset.
    @Test func aSpoolKeepsTheOrderOfLargeAndSmallPiecesAndReadsASegmentFromAnOffset() async throws {
        let spool = try LoadSpool("test")
        var expected: [UInt8] = []
        for i in 0..<12 {
            let size = i % 3 == 0 ? 300_000 + i : 1000 + i
            let piece = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            expected += piece
            try spool.append(ByteBuffer(bytes: piece))
        }
        #expect(spool.bytes == expected.count)
        let segment = try spool.segment(from: 123_456)
        #expect(segment.range == 123_456..<expected.count)
        var back: [UInt8] = []
        try await segment.read(chunkBytes: 100_000) { back += $0.readableBytesView }
        #expect(back == Array(expected[123_456...]))
        var all: [UInt8] = []
        try await spool.read { all += $0.readableBytesView }
        #expect(all == expected)
    }
}
