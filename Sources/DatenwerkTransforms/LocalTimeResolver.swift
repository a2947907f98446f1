import DatenwerkCore
import Foundation
import Synchronization

/// Why a local wall-clock time could not be turned into a UTC instant.
package enum LocalTimeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The time zone identifier is not known to the system's time zone database.
    case unknownZone(String)
    /// A field is out of range; the payload names it, e.g. `month 13`.
    case invalid(String)
    /// The time falls into a gap (spring forward); the payload is the full explanation.
    case nonexistent(String)
    /// The time occurs twice (fall back) and the ambiguity rule is `reject`; the payload explains.
    case ambiguous(String)

    package var description: String {
        switch self {
        case .unknownZone(let id):
            var text = "unknown time zone '\(id)'"
            if let suggestion = closestMatch(to: id, in: TimeZone.knownTimeZoneIdentifiers) {
                text += "; did you mean '\(suggestion)'?"
            }
            return text
        case .invalid(let reason): return "invalid date or time: \(reason)"
        case .nonexistent(let text), .ambiguous(let text): return text
        }
    }

    /// The short reason without a prefix, for messages that already say what was parsed.
    var reason: String {
        if case .invalid(let reason) = self { return reason }
        return description
    }
}

/// Converts local wall-clock times of one IANA time zone into UTC microseconds.
///
/// Called once per record, so the UTC offset is cached per local hour and the
/// calendar arithmetic is done on integers; the system time zone database is
/// consulted only when an hour is seen for the first time.
package struct LocalTimeResolver: Sendable {
    /// What to do with a local time that occurs twice when clocks go back.
    package enum Ambiguity: String, Sendable, Hashable, CaseIterable {
        /// The earlier instant (still daylight saving time): 02:30 CEST = 00:30Z.
        case first
        /// The later instant (already standard time): 02:30 CET = 01:30Z.
        case second
        /// Throw `LocalTimeError.ambiguous`.
        case reject
    }

    package let ambiguity: Ambiguity
    /// Zone and offset cache, shared by copies (one reference keeps per-call copies cheap).
    private let storage: Storage

    package var identifier: String { storage.identifier }

    package static let utc = LocalTimeResolver(ambiguity: .first, storage: Storage(identifier: "UTC", zone: nil))

    package init(zone identifier: String, ambiguity: Ambiguity = .first) throws(LocalTimeError) {
        switch identifier {
        case "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z":
            self.init(ambiguity: ambiguity, storage: Storage(identifier: identifier, zone: nil))
        default:
            guard let zone = TimeZone(identifier: identifier) else { throw .unknownZone(identifier) }
            self.init(ambiguity: ambiguity, storage: Storage(identifier: identifier, zone: zone))
        }
    }

    private init(ambiguity: Ambiguity, storage: Storage) {
        self.ambiguity = ambiguity
        self.storage = storage
    }

    /// The same zone with another rule for the repeated hour (shares the offset cache).
    package func with(ambiguity: Ambiguity) -> LocalTimeResolver {
        LocalTimeResolver(ambiguity: ambiguity, storage: storage)
    }

    private final class Storage: Sendable {
        let identifier: String
        let zone: TimeZone?
        let isUTC: Bool
        let cache = OffsetCache()

        init(identifier: String, zone: TimeZone?) {
            self.identifier = identifier
            self.zone = zone
            self.isUTC = zone == nil
        }
    }

    /// Microseconds since 1970-01-01T00:00:00Z of a local wall-clock time in this zone.
    /// `hour` may be 24 when minute, second and microsecond are 0 (midnight at the end of the day).
    package func utcMicroseconds(
        year: Int, month: Int, day: Int,
        hour: Int, minute: Int = 0, second: Int = 0, microsecond: Int = 0
    ) throws(LocalTimeError) -> Int64 {
        if let problem = CivilTime.problem(
            year: year, month: month, day: day, hour: hour, minute: minute, second: second, microsecond: microsecond)
        {
            throw .invalid(problem)
        }
        let local = CivilTime.seconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        return try utcSeconds(local: local) * CivilTime.microsPerSecond + Int64(microsecond)
    }

    /// The UTC offset in seconds that applies at a UTC instant (microseconds since the epoch).
    package func offsetSeconds(atUTCMicroseconds micros: Int64) -> Int {
        guard let zone = storage.zone else { return 0 }
        let seconds = CivilTime.floorDiv(micros, CivilTime.microsPerSecond)
        return zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds)))
    }

    /// UTC seconds for local seconds (a wall-clock time counted as if it were UTC). Fields are valid.
    @inline(__always)
    func utcSeconds(local: Int64) throws(LocalTimeError) -> Int64 {
        if storage.isUTC { return local }
        let day = CivilTime.floorDiv(local, CivilTime.secondsPerDay)
        if let offset = storage.cache.offset(forLocalDay: day), offset != OffsetCache.transition {
            return local - offset
        }
        return try utcSecondsFromDatabase(local: local, day: day)
    }

    private func utcSecondsFromDatabase(local: Int64, day: Int64) throws(LocalTimeError) -> Int64 {
        guard let zone = storage.zone else { return local }
        // Most days have one offset throughout: one entry covers them (the hour table then only holds the days
        // in which the offset changes, so it does not run over on long series).
        let dayOffset: Int64
        if let cached = storage.cache.offset(forLocalDay: day) {
            dayOffset = cached
        } else {
            dayOffset = Self.dayEntry(zone: zone, localDay: day)
            storage.cache.store(dayOffset, forLocalDay: day)
        }
        if dayOffset != OffsetCache.transition { return local - dayOffset }
        let hour = CivilTime.floorDiv(local, 3600)
        let offset: Int64
        if let cached = storage.cache.offset(forLocalHour: hour) {
            offset = cached
        } else {
            offset = Self.hourEntry(zone: zone, localHour: hour)
            storage.cache.store(offset, forLocalHour: hour)
        }
        if offset != OffsetCache.transition { return local - offset }
        return try resolveSlowly(local: local, zone: zone)
    }

    // MARK: - Time zone database lookups (cache misses and transition hours only)

    private enum Resolution: Equatable {
        case unique(Int64)
        case gap(before: Int64, after: Int64)
        case overlap(earlier: Int64, later: Int64)   // the two offsets, in the order the instants occur
    }

    private static func offset(_ zone: TimeZone, atUTC seconds: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
    }

    /// Resolves one local second by looking at the offsets a day before and after.
    /// Assumes at most one offset change within two days, which holds for every real zone.
    private static func resolve(local: Int64, zone: TimeZone) -> Resolution {
        let before = offset(zone, atUTC: local - CivilTime.secondsPerDay)
        let after = offset(zone, atUTC: local + CivilTime.secondsPerDay)
        let validBefore = offset(zone, atUTC: local - before) == before
        if before == after {
            if validBefore { return .unique(before) }
            // Two changes close together: follow the offset at the guessed instant.
            return .unique(offset(zone, atUTC: local - offset(zone, atUTC: local - before)))
        }
        let validAfter = offset(zone, atUTC: local - after) == after
        switch (validBefore, validAfter) {
        case (true, true):
            // Both instants show this wall-clock time. The larger offset gives the earlier instant.
            return .overlap(earlier: max(before, after), later: min(before, after))
        case (true, false): return .unique(before)
        case (false, true): return .unique(after)
        case (false, false): return .gap(before: before, after: after)
        }
    }

    /// The offset of a whole local day, or `OffsetCache.transition` when it changes inside it (sampled every six
    /// hours and at the day's last second, on top of `resolve`'s rule of at most one change within two days).
    private static func dayEntry(zone: TimeZone, localDay: Int64) -> Int64 {
        let start = localDay * CivilTime.secondsPerDay
        guard case .unique(let offset) = resolve(local: start, zone: zone) else { return OffsetCache.transition }
        for sample: Int64 in [6 * 3600, 12 * 3600, 18 * 3600, CivilTime.secondsPerDay - 1] {
            guard case .unique(let other) = resolve(local: start + sample, zone: zone), other == offset else {
                return OffsetCache.transition
            }
        }
        return offset
    }

    /// The offset of a whole local hour, or `OffsetCache.transition` when it changes inside it.
    private static func hourEntry(zone: TimeZone, localHour: Int64) -> Int64 {
        let start = localHour * 3600
        if case .unique(let a) = resolve(local: start, zone: zone),
           case .unique(let b) = resolve(local: start + 3599, zone: zone),
           a == b
        {
            return a
        }
        return OffsetCache.transition
    }

    private func resolveSlowly(local: Int64, zone: TimeZone) throws(LocalTimeError) -> Int64 {
        switch Self.resolve(local: local, zone: zone) {
        case .unique(let offset):
            return local - offset
        case .overlap(let earlier, let later):
            switch ambiguity {
            case .first: return local - earlier
            case .second: return local - later
            case .reject:
                let change = Self.changeInstant(zone: zone, from: local - earlier, to: local - later)
                throw .ambiguous(
                    "\(CivilTime.describeLocal(local)) occurs twice in \(identifier) "
                        + "(clocks go back from \(CivilTime.describeClock(change + earlier)) to \(CivilTime.describeClock(change + later))): "
                        + "\(TimestampParser.formatISO8601((local - earlier) * CivilTime.microsPerSecond)) or "
                        + "\(TimestampParser.formatISO8601((local - later) * CivilTime.microsPerSecond)); "
                        + "set the ambiguity rule to 'first' or 'second' to accept it")
            }
        case .gap(let before, let after):
            let change = Self.changeInstant(zone: zone, from: local - after, to: local - before)
            throw .nonexistent(
                "\(CivilTime.describeLocal(local)) does not exist in \(identifier) "
                    + "(clocks skip from \(CivilTime.describeClock(change + before)) to \(CivilTime.describeClock(change + after)))")
        }
    }

    /// The first UTC second in `low...high` whose offset differs from the offset at `low` (binary search).
    private static func changeInstant(zone: TimeZone, from low: Int64, to high: Int64) -> Int64 {
        let initial = offset(zone, atUTC: low)
        var low = low, high = high
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(zone, atUTC: middle) == initial { low = middle } else { high = middle }
        }
        return high
    }
}

/// UTC offsets per local day, and per local hour for the days in which the offset changes, shared by copies of
/// one resolver: small direct-mapped tables (day or hour → offset), so a hit costs one uncontended lock and no hashing.
final class OffsetCache: Sendable {
    /// Marks a day or hour in which the offset changes; such hours are resolved per call.
    static let transition = Int64.min

    private static let slots = 4096             // power of two; about half a year of distinct hours, 11 years of days
    private static let empty = Int64.min

    private struct State {
        var hours = [Int64](repeating: OffsetCache.empty, count: OffsetCache.slots)
        var offsets = [Int64](repeating: 0, count: OffsetCache.slots)
        var days = [Int64](repeating: OffsetCache.empty, count: OffsetCache.slots)
        var dayOffsets = [Int64](repeating: 0, count: OffsetCache.slots)
    }

    private let state = Mutex(State())

    @inline(__always)
    private static func slot(_ hour: Int64) -> Int { Int(truncatingIfNeeded: hour) & (slots - 1) }

    @inline(__always)
    func offset(forLocalHour hour: Int64) -> Int64? {
        let slot = Self.slot(hour)
        return state.withLock { state in
            state.hours[slot] == hour ? state.offsets[slot] : nil
        }
    }

    func store(_ offset: Int64, forLocalHour hour: Int64) {
        let slot = Self.slot(hour)
        state.withLock { state in
            state.hours[slot] = hour
            state.offsets[slot] = offset
        }
    }

    @inline(__always)
    func offset(forLocalDay day: Int64) -> Int64? {
        let slot = Self.slot(day)
        return state.withLock { state in
            state.days[slot] == day ? state.dayOffsets[slot] : nil
        }
    }

    func store(_ offset: Int64, forLocalDay day: Int64) {
        let slot = Self.slot(day)
        state.withLock { state in
            state.days[slot] = day
            state.dayOffsets[slot] = offset
        }
    }
}
