import DatenwerkPublishing
import Testing

/// The parsers behind `/ogcapi/collections/{id}/items`: every value a client sends is read here, before any SQL.
@Suite("OGC API – Features parameters")
struct FeaturesQueryTests {
    static func query(_ items: [(String, String)]) throws(FeaturesParameterError) -> FeaturesQuery {
        try FeaturesQuery(query: items.map { (name: $0.0, value: $0.1) })
    }

    @Test("bbox: 4 numbers, 6 with heights ignored, across the antimeridian as two boxes")
    func bbox() throws {
        #expect(try FeaturesBBox.parse("7.5,51,8,52.25") == FeaturesBBox(west: 7.5, south: 51, east: 8, north: 52.25))
        #expect(try FeaturesBBox.parse(" -1e1 , 51 ,8,52") == FeaturesBBox(west: -10, south: 51, east: 8, north: 52))
        #expect(try FeaturesBBox.parse("7,51,0,8,52,100") == FeaturesBBox(west: 7, south: 51, east: 8, north: 52))
        let across = try FeaturesBBox.parse("170,-10,-170,10")
        #expect(across.parts.count == 2)
        #expect(across.parts[0].minLongitude == 170 && across.parts[0].maxLongitude == 180)
        #expect(across.parts[1].minLongitude == -180 && across.parts[1].maxLongitude == -170)
        #expect(try FeaturesBBox.parse("7,51,8,52").parts.count == 1)
    }

    @Test("bbox: hostile and malformed values are refused", arguments: [
        "", "1,2,3", "1,2,3,4,5", "1,2,3,4,5,6,7", "NaN,1,2,3", "nan,1,2,3", "inf,1,2,3", "Infinity,1,2,3", "1e400,1,2,3", "-1e400,1,2,3",
        "0x10,1,2,3", "+1,1,2,3", "1.,1,2,3", "1e,1,2,3", "1,2,3,4'; DROP TABLE x; --", "1,2,3,4)) OR 1=1", "[[[[1]]]],2,3,4",
        "181,1,182,2", "1,91,2,92", "1,2,3,1", "1,2,5,3,4,4", ",,,", "1,2,3,4,", "1 2,3,4,5",
    ])
    func badBBox(_ value: String) {
        #expect(throws: FeaturesParameterError.self) { try FeaturesBBox.parse(value) }
        #expect(throws: FeaturesParameterError.self) { try FeaturesBBox.parse(String(repeating: "1,", count: 200) + "1") }
    }

    @Test("datetime: instants, dates as whole days, closed and open intervals (RFC 3339)")
    func datetime() throws {
        let noon: Int64 = 1_717_243_200_000_000   // 2024-06-01T12:00:00Z
        #expect(try FeaturesDateTime.parse("2024-06-01T12:00:00Z").from == noon)
        #expect(try FeaturesDateTime.parse("2024-06-01T12:00:00Z").to == noon)
        #expect(try FeaturesDateTime.parse("2024-06-01t14:00:00+02:00").from == noon)
        #expect(try FeaturesDateTime.parse("2024-06-01T11:30:00-00:30").from == noon)
        #expect(try FeaturesDateTime.parse("2024-06-01T14:00:00 02:00").from == noon)   // `+` unencoded in a query string
        #expect(try FeaturesDateTime.parse("2024-06-01T12:00:00.25Z").from == noon + 250_000)
        #expect(try FeaturesDateTime.parse("2024-06-01T12:00:00.123456789Z").from == noon + 123_456)
        let day = try FeaturesDateTime.parse("2024-06-01")
        #expect(day.from == noon - 43_200_000_000 && day.to == noon + 43_200_000_000 - 1)
        let closed = try FeaturesDateTime.parse("2024-06-01T12:00:00Z/2024-06-02")
        #expect(closed.from == noon && closed.to == noon + 36 * 3_600_000_000 - 1)
        #expect(try FeaturesDateTime.parse("2024-06-01T12:00:00Z/..") == FeaturesDateTime(from: noon, to: nil, text: "2024-06-01T12:00:00Z/.."))
        #expect(try FeaturesDateTime.parse("../2024-06-01T12:00:00Z").to == noon)
        #expect(try FeaturesDateTime.parse("/2024-06-01T12:00:00Z").from == nil)
        #expect(try FeaturesDateTime.parse("2024-02-29").from != nil)
    }

    @Test("datetime: hostile and malformed values are refused", arguments: [
        "", "not-a-date", "2024-13-01", "2024-02-30", "2023-02-29", "2024-06-01T24:00:00Z", "2024-06-01T12:60:00Z", "2024-06-01T12:00:00",
        "2024-06-01T12:00Z", "2024-06-01T12:00:00+2:00", "2024-06-01T12:00:00.Z", "2024-06-01T12:00:00.1234567890Z", "../..", "/", "..",
        "2024-06-02/2024-06-01", "2024-06-01/2024-06-02/2024-06-03", "2024-06-01T12:00:00Z'; DROP TABLE x; --", "99999-01-01", "1e400",
        "-2024-06-01", "２０２４-06-01", "2024-06-01T12:00:00Z/NaN", String(repeating: "(", count: 5000),
    ])
    func badDatetime(_ value: String) {
        #expect(throws: FeaturesParameterError.self) { try FeaturesDateTime.parse(value) }
    }

    @Test("limit: 1…10000, default 10, a larger whole number is the maximum; unknown and repeated parameters refused")
    func limitAndParameters() throws {
        #expect(try Self.query([]).limit == 10)
        #expect(try Self.query([("limit", "1")]).limit == 1)
        #expect(try Self.query([("limit", "10000")]).limit == 10_000)
        #expect(try Self.query([("limit", "10001")]).limit == 10_000)
        #expect(try Self.query([("limit", String(repeating: "9", count: 500))]).limit == 10_000)
        for bad in ["0", "000", "-1", "1.5", "1e3", "NaN", "", " 5", "5;DROP TABLE x", String(repeating: "9", count: 2000)] {
            #expect(throws: FeaturesParameterError.self, "\(bad.prefix(20))") { try Self.query([("limit", bad)]) }
        }
        #expect(throws: FeaturesParameterError.self) { try Self.query([("limt", "5")]) }
        #expect(throws: FeaturesParameterError.self) { try Self.query([("limit", "5"), ("limit", "6")]) }
        #expect(throws: FeaturesParameterError.self) { try Self.query([("f", "xml")]) }
        #expect(throws: FeaturesParameterError.self) { try FeaturesQuery(query: [(name: "limit", value: "5")], allowed: ["f"]) }
        #expect(try Self.query([("f", "html")]).format == .html)
    }

    @Test("cursors and observation ids round-trip; forged ones are refused")
    func cursors() throws {
        let key = ObservationKey(stationID: 12, property: "air.temperature", startMicros: 1_717_243_200_000_000)
        #expect(ObservationKey(featureID: key.featureID) == key)
        #expect(ObservationKey(position: key.position) == key)
        let cursor = FeaturesCursor(.after, key.position)
        #expect(FeaturesCursor(token: cursor.token) == cursor)
        #expect(FeaturesCursor(token: FeaturesCursor(.before, "musterstadt:MS-01").token)?.direction == .before)
        for bad in ["", "'; --", "a b", "YWJj", String(repeating: "A", count: 700)] { #expect(FeaturesCursor(token: bad) == nil) }
        for bad in ["12", "12.x", "0.x.1", "x.y.1", "12.air.99999999999999999999", "12..1", "12.air.-9999999999999999"] {
            #expect(ObservationKey(featureID: bad) == nil, "\(bad)")
        }
        // The query string of a next link reads back as the same query.
        var q = try Self.query([("limit", "7"), ("bbox", "7,51,8,52"), ("datetime", "2024-06-01/..")])
        q.cursor = cursor
        let items = q.queryString(cursor: cursor).split(separator: "&").map { part -> (String, String) in
            let kv = part.split(separator: "=", maxSplits: 1)
            return (String(kv[0]), String(kv[1]).removingPercentEncoding ?? "")
        }
        #expect(try Self.query(items) == q)
    }
}
