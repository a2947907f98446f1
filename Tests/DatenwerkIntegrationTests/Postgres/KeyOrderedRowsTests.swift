import DatenwerkPostgres
import NIOCore
import Testing

/// `KeyOrderedRows` puts a group of COPY rows in the primary key's order: by station id, then property bytewise,
/// and within a series in the order the rows came.
@Suite struct KeyOrderedRowsTests {
    struct Row: Equatable {
        var station: Int64
        var property: Int
        var text: String
    }

    /// Rows with series numbered as they first come (as `ObservationLoad` numbers them).
    static func rows(_ count: Int, stations: Int, properties: Int) -> [Row] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { i in
            Row(station: Int64.random(in: 1...Int64(stations), using: &generator), property: Int.random(in: 0..<properties, using: &generator),
                text: "row \(i) \(String(repeating: "x", count: Int.random(in: 0...20, using: &generator)))\n")
        }
    }

    static func feed(_ rows: [Row], into order: inout KeyOrderedRows, buffer: inout ByteBuffer, slots: inout [String: Int]) {
        for row in rows {
            let key = "\(row.station)/\(row.property)"
            let slot = slots[key] ?? slots.count
            slots[key] = slot
            buffer.writeString(row.text)
            order.note(slot: slot, station: row.station, property: row.property, end: buffer.readableBytes)
        }
    }

    @Test(arguments: [(1, 1), (3, 4), (40, 3), (500, 7)])
    func aGroupComesOutStablySortedByStationAndPropertyBytes(stations: Int, properties: Int) {
        // Property indices in the order they came; their keys sort differently.
        let keys = ["wind_speed", "air_temperature", "relative_humidity", "air_pressure", "a", "Z_upper", "ä_umlaut"].prefix(properties)
        let ranks = KeyOrderedRows.ranks(Array(keys))
        let rows = Self.rows(2000, stations: stations, properties: properties)
        var order = KeyOrderedRows()
        var buffer = ByteBuffer()
        var slots: [String: Int] = [:]
        Self.feed(rows, into: &order, buffer: &buffer, slots: &slots)
        var out = ByteBuffer()
        let sent = order.take(rows: order.count, bytes: buffer.readableBytes, of: buffer, propertyRanks: ranks, into: &out)
        let expected = rows.enumerated().sorted { a, b in
            (a.element.station, ranks[a.element.property], a.offset) < (b.element.station, ranks[b.element.property], b.offset)
        }.map(\.element.text).joined()
        #expect(String(buffer: sent) == expected)
        #expect(order.count == 0)
    }

    /// The sink writes a large group in pieces (`order`, then `copy` piece by piece): together they are the group
    /// in key order, and no piece passes its limit unless one row does.
    @Test(arguments: [1, 37, 200, 1 << 20])
    func piecesTogetherAreTheGroupInKeyOrder(maxBytes: Int) throws {
        let keys = ["wind_speed", "air_temperature", "relative_humidity"]
        let ranks = KeyOrderedRows.ranks(keys)
        let rows = Self.rows(500, stations: 7, properties: keys.count)
        var order = KeyOrderedRows()
        var buffer = ByteBuffer()
        var slots: [String: Int] = [:]
        Self.feed(rows, into: &order, buffer: &buffer, slots: &slots)
        let computed = order.order(rows: order.count, propertyRanks: ranks)
        let sequence = try #require(computed)
        var pieces: [String] = []
        var k = 0
        while k < sequence.count {
            var piece = ByteBuffer()
            let next = order.copy(sequence, from: k, of: buffer, into: &piece, maxBytes: maxBytes)
            #expect(next > k)
            #expect(piece.readableBytes <= maxBytes || next == k + 1)
            pieces.append(String(buffer: piece))
            k = next
        }
        let expected = rows.enumerated().sorted { a, b in
            (a.element.station, ranks[a.element.property], a.offset) < (b.element.station, ranks[b.element.property], b.offset)
        }.map(\.element.text).joined()
        #expect(pieces.joined() == expected)
        order.forget(rows: order.count, bytes: buffer.readableBytes)
        #expect(order.count == 0)
    }

    @Test func keyOrderIsTheBytewiseOrderOfThePropertyKeys() {
        let ranks = KeyOrderedRows.ranks(["wind_speed", "air_temperature", "Zeta", "air_pressure", "ä"])
        // Bytewise: "Zeta" < "air_pressure" < "air_temperature" < "wind_speed" < "ä" (0xC3).
        #expect(ranks == [3, 2, 0, 1, 4])
    }

    /// A group that leaves its last row for the next one: the rest keep their order and their ends move.
    @Test func takingAllButTheLastRowKeepsTheLastForTheNextGroup() {
        let rows = [Row(station: 2, property: 1, text: "b1\n"), Row(station: 1, property: 0, text: "a0\n"), Row(station: 2, property: 0, text: "b0\n"),
                    Row(station: 1, property: 0, text: "a0'\n"), Row(station: 3, property: 0, text: "c0\n")]
        var order = KeyOrderedRows()
        var buffer = ByteBuffer()
        var slots: [String: Int] = [:]
        Self.feed(rows, into: &order, buffer: &buffer, slots: &slots)
        var out = ByteBuffer()
        let ranks = KeyOrderedRows.ranks(["b_second", "a_first"])   // property 1 sorts before property 0
        let bytes = order.endBeforeLast
        let first = order.take(rows: order.count - 1, bytes: bytes, of: buffer, propertyRanks: ranks, into: &out)
        #expect(String(buffer: first) == "a0\na0'\nb1\nb0\n")
        buffer.moveReaderIndex(forwardBy: bytes)
        buffer.discardReadBytes()
        #expect(order.count == 1)
        Self.feed([Row(station: 1, property: 1, text: "a1\n")], into: &order, buffer: &buffer, slots: &slots)
        let second = order.take(rows: order.count, bytes: buffer.readableBytes, of: buffer, propertyRanks: ranks, into: &out)
        #expect(String(buffer: second) == "a1\nc0\n")
    }

    /// Past the series limit a row has no number: ordering stops and rows go in the order they came.
    @Test func withoutSeriesNumbersRowsKeepTheirOrder() {
        var order = KeyOrderedRows()
        var buffer = ByteBuffer()
        buffer.writeString("b\n")
        order.note(slot: 0, station: 2, property: 0, end: buffer.readableBytes)
        buffer.writeString("a\n")
        order.note(slot: nil, station: 1, property: 0, end: buffer.readableBytes)
        #expect(!order.ordering)
        var out = ByteBuffer()
        let sent = order.take(rows: order.count, bytes: buffer.readableBytes, of: buffer, propertyRanks: [0], into: &out)
        #expect(String(buffer: sent) == "b\na\n")
    }
}
