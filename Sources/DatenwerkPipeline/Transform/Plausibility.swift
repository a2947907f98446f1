import DatenwerkCore
import DatenwerkTransforms
import Foundation

/// What every station and observation must meet before it is staged, whatever its source. A record that does
/// not is quarantined with the field named; nothing it carries can fail a load, create a partition or reach a
/// dashboard as a point in the middle of nowhere:
///
/// - text that goes into indexed columns (the station key: `UNIQUE (tenant, key)`) and other text columns has a
///   length limit, so the database never refuses a row ("index row too large") and takes a whole run with it;
/// - coordinates are finite WGS84 (|longitude| ≤ 180, |latitude| ≤ 90), altitudes within −11 km…100 km;
/// - phenomenon times lie between `earliestYear` and one day after now (partitions are created per month
///   of the times that pass, so far-future or ancient times never create partitions);
/// - results are finite and, where a range is given, inside it.
package struct Plausibility: Sendable {
    package enum Part: String, Sendable {
        case stationKey = "station key", stationName = "station name", stationKind = "station kind", stationProperties = "station properties"
        case longitude, latitude, altitude
        case sourceX = "x", sourceY = "y"
        case time = "phenomenon start", end = "phenomenon end", result, quality
    }

    package struct Problem: Sendable, Hashable, CustomStringConvertible {
        package var part: Part
        package var reason: String
        package var description: String { reason }
    }

    /// Bytes of UTF-8; the key is indexed (a B-tree entry must stay well below PostgreSQL's ~2.7 kB).
    package static let maxKeyBytes = 256
    package static let maxNameBytes = 1000
    package static let maxKindBytes = 100
    package static let maxQualityBytes = 200
    package static let altitudeRange: ClosedRange<Double> = -11_000...100_000
    /// How far ahead of now a phenomenon time may lie (clock skew, forecasts for the coming hours).
    package static let futureSlack: Int64 = 86_400_000_000

    package let earliestYear: Int
    /// Bounds of phenomenon start, µs UTC, inclusive.
    package let earliest: Int64
    package let latest: Int64

    package init(earliestYear: Int, now: Date = Date()) {
        self.earliestYear = earliestYear
        earliest = CivilTime.days(year: earliestYear, month: 1, day: 1) * 86_400_000_000
        latest = Int64(now.timeIntervalSince1970 * 1_000_000) + Self.futureSlack
    }

    /// Pulled sources keep real historic series (DWD climate records begin in the 18th century).
    package static func historic(now: Date = Date()) -> Plausibility { Plausibility(earliestYear: 1700, now: now) }
    /// Pushed messages (sensor uplinks) are live data: nothing before 1900.
    package static func live(now: Date = Date()) -> Plausibility { Plausibility(earliestYear: 1900, now: now) }

    package func check(_ station: Station) -> Problem? {
        if let problem = Self.text(station.key, .stationKey, limit: Self.maxKeyBytes) { return problem }
        if station.key.isEmpty { return Problem(part: .stationKey, reason: "the station key is empty") }
        if let name = station.name, let problem = Self.text(name, .stationName, limit: Self.maxNameBytes) { return problem }
        if let kind = station.kind, let problem = Self.text(kind, .stationKind, limit: Self.maxKindBytes) { return problem }
        if Self.containsNUL(station.properties) {
            return Problem(part: .stationProperties, reason: "a station property contains a NUL character (\\u0000), which PostgreSQL cannot store in jsonb")
        }
        if let point = station.location, let problem = Self.check(point) { return problem }
        if let source = station.sourceCoordinates {
            if !source.x.isFinite { return Problem(part: .sourceX, reason: "x coordinate \(JSONValue.format(source.x)) in EPSG:\(source.epsg) is not a finite number") }
            if !source.y.isFinite { return Problem(part: .sourceY, reason: "y coordinate \(JSONValue.format(source.y)) in EPSG:\(source.epsg) is not a finite number") }
        }
        return nil
    }

    /// WGS84 bounds and a plausible altitude.
    package static func check(_ point: GeoPoint) -> Problem? {
        if !point.longitude.isFinite || abs(point.longitude) > 180 {
            return Problem(part: .longitude, reason: "longitude \(JSONValue.format(point.longitude)) is outside WGS84 (−180…180)")
        }
        if !point.latitude.isFinite || abs(point.latitude) > 90 {
            return Problem(part: .latitude, reason: "latitude \(JSONValue.format(point.latitude)) is outside WGS84 (−90…90)")
        }
        if let altitude = point.altitude, !(altitude.isFinite && altitudeRange.contains(altitude)) {
            return Problem(part: .altitude, reason: "altitude \(JSONValue.format(altitude)) m is outside −11000…100000 m")
        }
        return nil
    }

    /// A phenomenon start time (µs UTC).
    package func check(time t: Int64) -> Problem? {
        if t < earliest {
            return Problem(part: .time, reason: "time \(TimestampParser.formatISO8601(t)) is before \(earliestYear), not plausible for this source")
        }
        if t > latest {
            return Problem(part: .time, reason: "time \(TimestampParser.formatISO8601(t)) is more than a day in the future")
        }
        return nil
    }

    /// Time, end, result (finite, inside `range` when given) and quality.
    package func check(_ o: Observation, range: ClosedRange<Double>?) -> Problem? {
        if let problem = check(time: o.phenomenonStart) { return problem }
        if let end = o.phenomenonEnd, end < o.phenomenonStart {
            return Problem(part: .end, reason: "the interval ends (\(TimestampParser.formatISO8601(end))) before it starts (\(TimestampParser.formatISO8601(o.phenomenonStart)))")
        }
        if !o.result.isFinite { return Problem(part: .result, reason: "\(JSONValue.format(o.result)) is not a finite number (\(o.property))") }
        if let range, !range.contains(o.result) {
            return Problem(part: .result, reason: "\(JSONValue.format(o.result)) is outside the plausible range \(JSONValue.format(range.lowerBound))…\(JSONValue.format(range.upperBound)) for \(o.property)")
        }
        if let quality = o.quality, let problem = Self.text(quality, .quality, limit: Self.maxQualityBytes) { return problem }
        return nil
    }

    /// PostgreSQL's jsonb refuses `\u0000`; such a value would fail the whole load.
    package static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let s): return s.utf8.contains(0)
        case .array(let items): return items.contains(where: containsNUL)
        case .object(let members): return members.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }

    /// The value with NUL characters replaced by U+FFFD, for a quarantined record's decoded fields (kept as jsonb).
    package static func withoutNUL(_ value: JSONValue) -> JSONValue {
        guard containsNUL(value) else { return value }
        switch value {
        case .string(let s): return .string(s.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}"))
        case .array(let items): return .array(items.map(withoutNUL))
        case .object(let members):
            return .object(members.map { .init($0.key.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}"), withoutNUL($0.value)) })
        default: return value
        }
    }

    static func text(_ text: String, _ part: Part, limit: Int) -> Problem? {
        let bytes = text.utf8.count
        guard bytes > limit else { return nil }
        return Problem(part: part, reason: "the \(part.rawValue) is \(bytes) bytes long; at most \(limit) are accepted ('\(text.prefix(40))…')")
    }
}
