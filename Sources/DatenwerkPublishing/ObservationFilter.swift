import DatenwerkCore
import DatenwerkTransforms
import Foundation

/// A query parameter the server cannot use (downloads, OGC API – Features): which one, and what to send instead.
package struct DownloadParameterError: Error, Sendable, Hashable, CustomStringConvertible {
    package var parameter: String
    package var message: String

    package init(_ parameter: String, _ message: String) {
        self.parameter = parameter
        self.message = message
    }

    package var description: String { message }
}

/// Where a page of observations ended: the last row's key in the download order — station row, property,
/// phenomenon start (the primary key's order). Sent to clients as an opaque token (`cursor=`); the next page
/// starts after it.
package struct ObservationCursor: Sendable, Hashable {
    package var startMicros: Int64
    /// `datenwerk.stations.id` (downloads are ordered by station row, then property, then start).
    package var stationID: Int64
    package var property: String

    package init(startMicros: Int64, stationID: Int64, property: String) {
        self.startMicros = startMicros
        self.stationID = stationID
        self.property = property
    }

    /// A cursor's time lies in 1800…2200: a forged one outside is refused before it reaches the database.
    static let plausibleMicros: ClosedRange<Int64> = -5_364_662_400_000_000...7_258_118_400_000_000

    /// The token's version: 2 since downloads are in key order (a version-1 token was a position in time
    /// order, which would now page wrongly: it is refused like any other foreign token).
    static let version = "2"

    /// base64url (no padding) of `2,<start µs>,<station id>,<property>`.
    package var token: String {
        let text = "\(Self.version),\(startMicros),\(stationID),\(property)"
        return Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    package init?(token: String) {
        guard !token.isEmpty, token.utf8.count <= 512,
              token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ",", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.version, let start = Int64(parts[1]), let station = Int64(parts[2]),
              Self.plausibleMicros.contains(start), station >= 1, ObservationFilter.isKey(parts[3]) else { return nil }
        self.init(startMicros: start, stationID: station, property: String(parts[3]))
    }
}

/// The query parameters of `/datasets/{id}/observations.{csv,geojson,ndjson}` (and of `datenwerk export`):
///
/// | parameter | value |
/// |---|---|
/// | `from`, `to` | ISO 8601 instants (`2024-10-27T01:00:00Z`, `2024-10-27T03:00+01:00`, `2024-10-27`); without an offset UTC; `from` ≤ phenomenon start < `to` |
/// | `bbox` | `minLon,minLat,maxLon,maxLat` in WGS 84 degrees: stations inside the box |
/// | `station` | station keys, repeated or comma-separated |
/// | `property` | property keys, repeated or comma-separated |
/// | `limit` | rows per page (1…1 000 000); the answer links the next page |
/// | `cursor` | the token from a `rel="next"` link |
package struct ObservationFilter: Sendable, Hashable {
    package var from: Int64?
    package var to: Int64?
    package var bbox: BoundingBox?
    package var stations: [String] = []
    package var properties: [String] = []
    package var limit: Int?
    package var cursor: ObservationCursor?

    package static let parameters = ["from", "to", "bbox", "station", "property", "limit", "cursor"]
    package static let maxLimit = 1_000_000

    package init() {}

    /// Reads the parameters in request order; the first bad one throws, naming it.
    package init(query: [(name: String, value: String)]) throws(DownloadParameterError) {
        var seen: Set<String> = []
        for (name, rawValue) in query {
            let value = rawValue.trimmingCharacters(in: .whitespaces)
            guard Self.parameters.contains(name) else {
                let hint = closestMatch(to: name, in: Self.parameters).map { "; did you mean '\($0)'?" } ?? ""
                throw DownloadParameterError(name, "unknown parameter '\(name)'\(hint) (known: \(Self.parameters.joined(separator: ", ")))")
            }
            if name != "station" && name != "property" {
                guard seen.insert(name).inserted else {
                    throw DownloadParameterError(name, "'\(name)' is given more than once; give it once")
                }
            }
            switch name {
            case "from": from = try Self.instant(value, parameter: name)
            case "to": to = try Self.instant(value, parameter: name)
            case "bbox": bbox = try Self.box(value)
            case "station": stations += try Self.list(value, parameter: name)
            case "property": properties += try Self.list(value, parameter: name)
            case "limit":
                guard let n = Int(value), n >= 1, n <= Self.maxLimit else {
                    throw DownloadParameterError(name, "limit must be a whole number from 1 to \(Self.maxLimit), found '\(Self.shorten(value))'")
                }
                limit = n
            case "cursor":
                guard let c = ObservationCursor(token: value) else {
                    throw DownloadParameterError(name, "cursor '\(Self.shorten(value))' is not a cursor of this server; use the URL of a rel=\"next\" link as it is")
                }
                cursor = c
            default: break
            }
        }
        if let from, let to, from >= to {
            throw DownloadParameterError("to", "to (\(ByteWriting.timestamp(micros: to))) must be later than from (\(ByteWriting.timestamp(micros: from)))")
        }
        stations = Self.unique(stations)
        properties = Self.unique(properties)
    }

    /// The parameters in a fixed order, as a query string without `?`; `cursor` replaces the filter's own.
    package func queryString(cursor: ObservationCursor?) -> String {
        var items: [(String, String)] = []
        if let from { items.append(("from", ByteWriting.timestamp(micros: from))) }
        if let to { items.append(("to", ByteWriting.timestamp(micros: to))) }
        if let bbox {
            let values = [bbox.minLongitude, bbox.minLatitude, bbox.maxLongitude, bbox.maxLatitude].map(ByteWriting.format)
            items.append(("bbox", values.joined(separator: ",")))
        }
        if !stations.isEmpty { items.append(("station", stations.joined(separator: ","))) }
        if !properties.isEmpty { items.append(("property", properties.joined(separator: ","))) }
        if let limit { items.append(("limit", String(limit))) }
        if let cursor { items.append(("cursor", cursor.token)) }
        return items.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&")
    }

    /// The filter as a stable text (for ETags).
    package var canonical: String { queryString(cursor: cursor) }

    // MARK: Values

    static func instant(_ value: String, parameter: String) throws(DownloadParameterError) -> Int64 {
        var text = value
        // A `+hh:mm` offset that arrived unencoded in a query string reads as a space.
        if let range = text.range(of: #" [0-9]{2}(:?[0-9]{2})?$"#, options: .regularExpression), text.count > 16 {
            text.replaceSubrange(range.lowerBound..<text.index(after: range.lowerBound), with: "+")
        }
        do {
            return try TimestampParser(format: "iso8601", zone: nil).parse(text)
        } catch {
            throw DownloadParameterError(parameter, "\(parameter) '\(shorten(value))' is not an ISO 8601 time: \(error.reason); for example 2024-10-27T01:00:00Z or 2024-10-27")
        }
    }

    static func box(_ value: String) throws(DownloadParameterError) -> BoundingBox {
        let parts = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let numbers = parts.compactMap { Double($0) }.filter(\.isFinite)
        guard parts.count == 4, numbers.count == 4 else {
            throw DownloadParameterError("bbox", "bbox must be four numbers minLon,minLat,maxLon,maxLat (WGS 84 degrees), found '\(shorten(value))'")
        }
        let box = BoundingBox(minLongitude: numbers[0], minLatitude: numbers[1], maxLongitude: numbers[2], maxLatitude: numbers[3])
        guard box.isValid else {
            throw DownloadParameterError("bbox", "bbox '\(shorten(value))' is not a box: longitudes must lie in -180…180, latitudes in -90…90, and each minimum must not exceed its maximum (order: minLon,minLat,maxLon,maxLat)")
        }
        return box
    }

    static func list(_ value: String, parameter: String) throws(DownloadParameterError) -> [String] {
        let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw DownloadParameterError(parameter, "\(parameter) is empty; give one or more keys, comma-separated") }
        if let bad = items.first(where: { !isKey($0) }) {
            throw DownloadParameterError(parameter, "\(parameter) '\(shorten(bad))' is not a key: keys are at most 200 characters without control characters")
        }
        return items
    }

    /// A station or property key as a client may send it: 1…200 characters, no control characters (a NUL
    /// would otherwise reach PostgreSQL as an encoding error).
    static func isKey<S: StringProtocol>(_ value: S) -> Bool {
        !value.isEmpty && value.count <= 200 && !value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    static func unique(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }

    package static func shorten(_ value: String) -> String {
        value.count > 80 ? String(value.prefix(80)) + "…" : value
    }

    /// Percent-encodes everything outside RFC 3986's unreserved set, plus keeps `,` and `:` readable.
    static func percentEncode(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: ","), UInt8(ascii: ":"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    package func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
