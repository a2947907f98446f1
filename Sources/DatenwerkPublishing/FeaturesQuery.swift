import DatenwerkCore
import DatenwerkTransforms
import Foundation

/// A query parameter of the OGC API – Features routes the server cannot use: which one, and why
/// (answered 400, `/req/core/query-param-invalid` and `/req/core/query-param-unknown`). The same error as the
/// downloads' parameters.
package typealias FeaturesParameterError = DownloadParameterError

/// The `bbox` parameter (OGC 17-069r4 §7.15.3), in CRS84 longitude/latitude degrees: `minLon,minLat,maxLon,maxLat`,
/// or six numbers `minLon,minLat,minHeight,maxLon,maxLat,maxHeight` whose heights are checked and then ignored
/// (the stations' geometries are 2D). A box whose west edge lies east of its east edge crosses the antimeridian
/// and is answered as the two boxes west and east of it (`parts`).
package struct FeaturesBBox: Sendable, Hashable {
    package var west: Double
    package var south: Double
    package var east: Double
    package var north: Double

    package init(west: Double, south: Double, east: Double, north: Double) {
        self.west = west
        self.south = south
        self.east = east
        self.north = north
    }

    /// The boxes to intersect: one, or two for a box across the antimeridian.
    package var parts: [BoundingBox] {
        if west <= east { return [BoundingBox(minLongitude: west, minLatitude: south, maxLongitude: east, maxLatitude: north)] }
        return [BoundingBox(minLongitude: west, minLatitude: south, maxLongitude: 180, maxLatitude: north),
                BoundingBox(minLongitude: -180, minLatitude: south, maxLongitude: east, maxLatitude: north)]
    }

    /// The value as it goes into links.
    package var text: String { [west, south, east, north].map(ByteWriting.format).joined(separator: ",") }

    /// Longest `bbox` value read (six numbers of 40 characters and their commas are far below it).
    static let maxLength = 300

    package static func parse(_ value: String) throws(FeaturesParameterError) -> FeaturesBBox {
        let usage = "bbox must be 4 numbers minLon,minLat,maxLon,maxLat in CRS84 degrees (or 6 with heights: minLon,minLat,minHeight,maxLon,maxLat,maxHeight)"
        guard value.utf8.count <= maxLength else { throw FeaturesParameterError("bbox", "\(usage); the value is too long") }
        let parts = value.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 6 else {
            throw FeaturesParameterError("bbox", "\(usage), found \(parts.count) value\(parts.count == 1 ? "" : "s") in '\(shorten(value))'")
        }
        var numbers: [Double] = []
        for part in parts {
            guard let number = decimal(part.trimmingCharacters(in: .whitespaces)) else {
                throw FeaturesParameterError("bbox", "bbox value '\(shorten(String(part)))' is not a finite decimal number (\(usage))")
            }
            numbers.append(number)
        }
        let (w, s, e, n): (Double, Double, Double, Double)
        if numbers.count == 6 {
            guard numbers[2] <= numbers[5] else { throw FeaturesParameterError("bbox", "bbox minimum height \(ByteWriting.format(numbers[2])) exceeds the maximum \(ByteWriting.format(numbers[5]))") }
            (w, s, e, n) = (numbers[0], numbers[1], numbers[3], numbers[4])
        } else {
            (w, s, e, n) = (numbers[0], numbers[1], numbers[2], numbers[3])
        }
        guard (-180...180).contains(w), (-180...180).contains(e) else {
            throw FeaturesParameterError("bbox", "bbox longitudes must lie in -180…180 (CRS84: longitude first), found \(ByteWriting.format(w)) and \(ByteWriting.format(e))")
        }
        guard (-90...90).contains(s), (-90...90).contains(n) else {
            throw FeaturesParameterError("bbox", "bbox latitudes must lie in -90…90 (CRS84: latitude second), found \(ByteWriting.format(s)) and \(ByteWriting.format(n))")
        }
        guard s <= n else {
            throw FeaturesParameterError("bbox", "bbox south edge \(ByteWriting.format(s)) lies north of its north edge \(ByteWriting.format(n))")
        }
        return FeaturesBBox(west: w, south: s, east: e, north: n)
    }

    /// A plain decimal number (`-12.5`, `.5`, `1e-3`): no `nan`, `inf`, hex, `+` sign, trailing dot or empty value,
    /// at most 40 characters, and finite (`1e400` is not).
    static func decimal(_ text: String) -> Double? {
        guard !text.isEmpty, text.utf8.count <= 40 else { return nil }
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        func digits() -> Int {
            var n = 0
            while let b = bytes.first, b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") { bytes = bytes.dropFirst(); n += 1 }
            return n
        }
        var mantissa = digits()
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            let fraction = digits()
            guard fraction > 0 else { return nil }
            mantissa += fraction
        }
        guard mantissa > 0 else { return nil }
        if let b = bytes.first, b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return nil }
        }
        guard bytes.isEmpty, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    static func shorten(_ value: String) -> String { ObservationFilter.shorten(value) }
}

/// The `datetime` parameter (OGC 17-069r4 §7.15.4): an instant or a closed interval of RFC 3339 date-times
/// (`2024-06-01T12:00:00Z`, `2024-06-01T14:00:00.5+02:00`) or full dates (`2024-06-01`: the whole UTC day), with
/// `..` or nothing for an open end (`2024-06-01T00:00:00Z/..`, `../2024-06-30`). Both ends open is refused.
/// Bounds are inclusive, in microseconds since 1970 UTC; nil is open.
package struct FeaturesDateTime: Sendable, Hashable {
    package var from: Int64?
    package var to: Int64?
    /// The value as it goes into links.
    package var text: String

    package init(from: Int64?, to: Int64?, text: String) {
        self.from = from
        self.to = to
        self.text = text
    }

    /// Longest `datetime` value read.
    static let maxLength = 100

    package static func parse(_ value: String) throws(FeaturesParameterError) -> FeaturesDateTime {
        let usage = "for example 2024-06-01T12:00:00Z, 2024-06-01T00:00:00Z/2024-06-02T00:00:00Z, 2024-06-01T00:00:00Z/.. or ../2024-06-30"
        guard !value.isEmpty, value.utf8.count <= maxLength else {
            throw FeaturesParameterError("datetime", "datetime must be an RFC 3339 instant or interval (\(usage))")
        }
        let ends = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch ends.count {
        case 1:
            guard let (start, end) = instant(ends[0]) else { throw invalid(value, usage) }
            return FeaturesDateTime(from: start, to: end, text: value)
        case 2:
            let open = { (s: String) in s.isEmpty || s == ".." }
            if open(ends[0]) && open(ends[1]) {
                throw FeaturesParameterError("datetime", "datetime '\(FeaturesBBox.shorten(value))' is open at both ends; leave datetime out for all times")
            }
            var from: Int64?
            var to: Int64?
            if !open(ends[0]) {
                guard let (start, _) = instant(ends[0]) else { throw invalid(value, usage) }
                from = start
            }
            if !open(ends[1]) {
                guard let (_, end) = instant(ends[1]) else { throw invalid(value, usage) }
                to = end
            }
            if let from, let to, from > to {
                throw FeaturesParameterError("datetime", "datetime '\(FeaturesBBox.shorten(value))' ends before it starts")
            }
            return FeaturesDateTime(from: from, to: to, text: value)
        default:
            throw invalid(value, usage)
        }
    }

    private static func invalid(_ value: String, _ usage: String) -> FeaturesParameterError {
        FeaturesParameterError("datetime", "datetime '\(FeaturesBBox.shorten(value))' is not an RFC 3339 instant or interval (\(usage))")
    }

    /// A date-time as one instant (start = end), or a full date as its UTC day (start … last microsecond).
    static func instant(_ text: String) -> (Int64, Int64)? {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var n = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                n = n * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return n
        }
        guard b.count >= 10, let year = number(0..<4), b[4] == UInt8(ascii: "-"), let month = number(5..<7), b[7] == UInt8(ascii: "-"),
              let day = number(8..<10), (1...12).contains(month), day >= 1, day <= CivilTime.daysInMonth(month, year: year) else { return nil }
        let dayStart = CivilTime.days(year: year, month: month, day: day) * 86_400_000_000
        if b.count == 10 { return (dayStart, dayStart + 86_400_000_000 - 1) }
        guard b.count >= 20, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = number(11..<13), b[13] == UInt8(ascii: ":"), let minute = number(14..<16), b[16] == UInt8(ascii: ":"),
              let second = number(17..<19), hour <= 23, minute <= 59, second <= 60 else { return nil }
        var i = 19
        var micros = 0
        if b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if digits < 6 { micros = micros * 10 + Int(b[i] - UInt8(ascii: "0")) }
                digits += 1
                i += 1
            }
            guard digits > 0, digits <= 9 else { return nil }
            if digits < 6 { for _ in digits..<6 { micros *= 10 } }
        }
        guard i < b.count else { return nil }
        var offsetSeconds = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: " ") || b[i] == UInt8(ascii: "-") {
            // `+` arrives as a space when a client did not percent-encode it in the query string.
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = number((i + 1)..<(i + 3)), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"),
                  let om = number((i + 4)..<(i + 6)), oh <= 23, om <= 59 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // A leap second (:60) is the last microsecond of its minute.
        let secondMicros = second == 60 ? 59 * 1_000_000 + 999_999 : second * 1_000_000 + micros
        let at = dayStart + Int64(hour * 3600 + minute * 60 - offsetSeconds) * 1_000_000 + Int64(secondMicros)
        return (at, at)
    }
}

/// Where a page of items starts: after (`next` links) or before (`prev` links) a feature, in the collection's
/// order. Sent as an opaque token (`cursor=`): base64url of `1,<n|p>,<position>`; the position is the station key
/// (stations) or `<station row>,<start µs>,<property>` (observations).
package struct FeaturesCursor: Sendable, Hashable {
    package enum Direction: String, Sendable { case after = "n", before = "p" }
    package var direction: Direction
    package var position: String

    package init(_ direction: Direction, _ position: String) {
        self.direction = direction
        self.position = position
    }

    package var token: String {
        Data("1,\(direction.rawValue),\(position)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    package init?(token: String) {
        guard !token.isEmpty, token.utf8.count <= 600,
              token.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "1", let direction = Direction(rawValue: String(parts[1])), !parts[2].isEmpty,
              !parts[2].unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return nil }
        self.init(direction, String(parts[2]))
    }
}

/// The query of `/ogcapi/collections/{id}/items`: `limit`, `bbox`, `datetime`, `cursor` (from a next/prev
/// link) and `f`; any other parameter is refused (`/req/core/query-param-unknown`), as is a parameter given
/// twice. `limit` is 1…10 000, default 10; a larger whole number is read as 10 000 (OGC 17-069r4 §7.15.2:
/// a limit above the maximum is no error).
package struct FeaturesQuery: Sendable, Hashable {
    package static let defaultLimit = 10
    package static let maxLimit = 10_000
    package static let parameters = ["limit", "bbox", "datetime", "cursor", "f"]

    package var limit = defaultLimit
    package var bbox: FeaturesBBox?
    package var datetime: FeaturesDateTime?
    package var cursor: FeaturesCursor?
    package var format: FeaturesFormat?

    package init() {}

    package init(query: [(name: String, value: String)], allowed: [String] = parameters) throws(FeaturesParameterError) {
        var seen: Set<String> = []
        for (name, value) in query {
            guard allowed.contains(name) else {
                let hint = closestMatch(to: name, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
                throw FeaturesParameterError(name, "unknown parameter '\(FeaturesBBox.shorten(name))'\(hint) (this resource knows: \(allowed.joined(separator: ", ")))")
            }
            guard seen.insert(name).inserted else { throw FeaturesParameterError(name, "'\(name)' is given more than once; give it once") }
            switch name {
            case "limit": limit = try Self.limit(value)
            case "bbox": bbox = try FeaturesBBox.parse(value)
            case "datetime": datetime = try FeaturesDateTime.parse(value)
            case "cursor":
                guard let c = FeaturesCursor(token: value) else {
                    throw FeaturesParameterError(name, "cursor '\(FeaturesBBox.shorten(value))' is not a cursor of this server; follow a next or prev link as it is")
                }
                cursor = c
            case "f":
                guard let f = FeaturesFormat(rawValue: value) else {
                    throw FeaturesParameterError(name, "f must be json or html, found '\(FeaturesBBox.shorten(value))'")
                }
                format = f
            default: break
            }
        }
    }

    /// 1…10 000; a whole number above it (of any length) is 10 000; anything else (0, -1, 1.5, 1e3, text) is refused.
    static func limit(_ value: String) throws(FeaturesParameterError) -> Int {
        let digits = value.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !value.isEmpty, digits, value.utf8.count <= 1000 else {
            throw FeaturesParameterError("limit", "limit must be a whole number from 1 to \(maxLimit), found '\(FeaturesBBox.shorten(value))'")
        }
        let trimmed = value.drop { $0 == "0" }
        guard !trimmed.isEmpty else { throw FeaturesParameterError("limit", "limit must be at least 1, found '\(FeaturesBBox.shorten(value))'") }
        guard trimmed.count <= 5, let n = Int(trimmed) else { return maxLimit }
        return min(n, maxLimit)
    }

    /// The filter parameters and the limit as a query string (no `?`), with `cursor` in place of the query's own.
    package func queryString(cursor: FeaturesCursor?, format: FeaturesFormat? = nil) -> String {
        var items: [(String, String)] = [("limit", String(limit))]
        if let bbox { items.append(("bbox", bbox.text)) }
        if let datetime { items.append(("datetime", datetime.text)) }
        if let cursor { items.append(("cursor", cursor.token)) }
        if let format { items.append(("f", format.rawValue)) }
        return items.map { "\($0.0)=\(ObservationFilter.percentEncode($0.1))" }.joined(separator: "&")
    }
}

extension FeaturesQuery {
    /// A station key as a feature id may name it (1…200 characters, no control characters).
    package static func isKey(_ value: String) -> Bool { ObservationFilter.isKey(value) }

    /// Percent-encodes everything outside RFC 3986's unreserved set (`,` and `:` stay readable).
    package static func percentEncode(_ value: String) -> String { ObservationFilter.percentEncode(value) }
}

/// The encodings of the API's resources, chosen by `f=` or `Accept`.
package enum FeaturesFormat: String, Sendable, Hashable {
    case json, html
}
