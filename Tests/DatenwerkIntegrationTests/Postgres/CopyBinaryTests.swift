@testable import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import NIOCore
import PostgresNIO
import Testing

/// The loader sends observations and dashboard buckets in PostgreSQL's binary COPY format, written byte by
/// byte, through postgres-nio's text-only `copyFrom` (`GuardedConnection.copyColumns`): PostgreSQL must read
/// back exactly the values meant, and a wrong row must fail the COPY, never be misread.
@Suite struct CopyBinaryTests {
    struct Row: Equatable {
        var id: Int64
        var name: String
        var at: Int64
        var end: Int64?
        var value: Double
        var note: String?
        var count: Int32
        var days: Int64
    }

    static let columns = ["id", "name", "at", "end_at", "value", "note", "n", "day"]

    static func encoded(_ rows: [Row]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 4096)
        for r in rows {
            b.writeBinaryRow(maxBytes: 80 + r.name.utf8.count + (r.note?.utf8.count ?? 0)) { w in
                w.fields(8)
                w.int8(r.id)
                w.text(r.name)
                w.timestamp(r.at)
                if let end = r.end { w.timestamp(end) } else { w.null() }
                w.float8(r.value)
                w.optional(r.note)
                w.int4(r.count)
                w.date(days: r.days)
            }
        }
        return b
    }

    static func createTable(_ connection: GuardedConnection, _ db: Database) async throws {
        try await connection.query("""
            CREATE TEMP TABLE copy_binary (id int8 NOT NULL, name text COLLATE "C" NOT NULL, at timestamptz NOT NULL, end_at timestamptz,
                                           value float8 NOT NULL, note text, n int4 NOT NULL, day date NOT NULL)
            """, logger: db.logger)
    }

    @Test func valuesReadBackExactlyFromBinaryCopyRows() async throws {
        let day: Int64 = 86_400_000_000
        let micros: [Int64] = [
            0, 1, -1, 999_999, 1_711_846_800_123_456, 946_684_800_000_000, 946_684_799_999_999,
            -2_208_988_800_000_000, 253_402_300_800_000_000, -62_135_596_800_000_000 - day, -62_198_755_200_000_000,
        ]
        let doubles: [Double] = [0, -0.0, 0.1, 0.30000000000000004, 1e-300, 5e-324, -1.7976931348623157e308, 1013.25, -40, .infinity]
        var rows: [Row] = []
        for (i, m) in micros.enumerated() {
            rows.append(Row(id: i == 0 ? .min : (i == 1 ? .max : Int64(i) - 5),
                            name: ["air_temperature", "ä\tß\n\\ 🌡", ""][i % 3],
                            at: m, end: i % 2 == 0 ? nil : m + 600_000_000,
                            value: doubles[i % doubles.count],
                            note: i % 3 == 0 ? nil : "Qualität \(i)",
                            count: i == 2 ? .min : (i == 3 ? .max : Int32(i)),
                            days: [0, -1, 10_957, 10_956, 19_813, -719_893, 2_932_896][i % 7]))
        }
        let sent = rows
        let b = Self.encoded(rows)
        try await TestDatabase.with { db in
            let back: [Row] = try await db.transaction { connection in
                try await Self.createTable(connection, db)
                try await connection.copyFrom(table: "copy_binary", columns: Self.columns, format: .binary, logger: db.logger) { writer in
                    // Split anywhere: the stream is one byte sequence, rows may straddle writes.
                    var rest = b
                    while rest.readableBytes > 0 {
                        try await writer.write(rest.readSlice(length: min(37, rest.readableBytes))!)
                    }
                }
                var back: [Row] = []
                for try await (id, name, at, end, value, note, n, days) in try await connection.query("""
                    SELECT id, name, (extract(epoch FROM at) * 1000000)::int8, (extract(epoch FROM end_at) * 1000000)::int8,
                           value, note, n, (day - date '1970-01-01')::int8 FROM copy_binary ORDER BY ctid
                    """, logger: db.logger).decode((Int64, String, Int64, Int64?, Double, String?, Int32, Int64).self) {
                    back.append(Row(id: id, name: name, at: at, end: end, value: value, note: note, count: n, days: days))
                }
                return back
            }
            #expect(back.count == sent.count)
            for (row, got) in zip(sent, back) {
                #expect(got == row)
                // -0.0 == 0.0: compare the bits.
                #expect(got.value.bitPattern == row.value.bitPattern, "\(row.value)")
            }
        }
    }

    @Test func aNulInTextIsDroppedAsInTheTextFormat() async throws {
        let b = Self.encoded([Row(id: 1, name: "a\u{0}b\u{0}", at: 0, end: nil, value: 1, note: "\u{0}", count: 1, days: 0)])
        try await TestDatabase.with { db in
            let back: [String] = try await db.transaction { connection in
                try await Self.createTable(connection, db)
                try await connection.copyFrom(table: "copy_binary", columns: Self.columns, format: .binary, logger: db.logger) { try await $0.write(b) }
                return try await connection.query("SELECT name || '|' || note FROM copy_binary", logger: db.logger).decode(String.self).collect()
            }
            #expect(back == ["ab|"])
        }
    }

    /// A row the server cannot read (a field count that does not match the table) fails the COPY with the
    /// server's error; the connection stays usable.
    @Test func aMalformedRowFailsTheCopyAndTheConnectionGoesOn() async throws {
        var malformed = ByteBufferAllocator().buffer(capacity: 64)
        malformed.writeBinaryRow(maxBytes: 32) { w in
            w.fields(2)
            w.int8(1)
            w.text("x")
        }
        let b = malformed
        try await TestDatabase.with { db in
            try await db.withConnection { connection in
                try await connection.query("BEGIN", logger: db.logger)
                try await Self.createTable(connection, db)
                await #expect {
                    try await connection.copyFrom(table: "copy_binary", columns: Self.columns, format: .binary, logger: db.logger) { try await $0.write(b) }
                } throws: { error in
                    String(reflecting: error).contains("row field count is 2, expected 8")
                }
                try await connection.query("ROLLBACK", logger: db.logger)
                let one = try await connection.query("SELECT 1", logger: db.logger).decode(Int.self).collect()
                #expect(one == [1])
            }
        }
    }

    @Test func onlyTheBinaryFormatRewritesTheColumnList() {
        #expect(GuardedConnection.copyColumns(["a", "b"], format: .text) == ["a", "b"])
        #expect(GuardedConnection.copyColumns(["a", "b"], format: .binary) == ["a", "b\") FROM STDIN WITH (FORMAT binary) --"])
    }
}
