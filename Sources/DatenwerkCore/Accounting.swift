/// Why values were left out on purpose: a stable name per rule, shown by `datenwerk runs` and stored with the run.
///
/// Zero silent drops: every value a source offers ends in exactly one of three places — loaded, quarantined
/// (with its raw payload), or skipped under one of these named rules. A connector that leaves a value out counts
/// it here; the run's totals then satisfy `values read = loaded + quarantined + skipped`.
package struct SkipRule: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    package var rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }
    package init(_ rawValue: String) { self.rawValue = rawValue }
    package var description: String { rawValue }
    package static func < (a: SkipRule, b: SkipRule) -> Bool { a.rawValue < b.rawValue }

    /// A cell or field that holds the source's "no value" marker (empty, `-999`, `NaN`, `technische Störung` …).
    package static let missingValue = SkipRule("missing_value")
    /// A value for a property outside the vocabulary (or not selected by the pipeline).
    package static let unmappedProperty = SkipRule("unmapped_property")
    /// A record the pipeline filters out (`transform: filter`, a station list, a type filter).
    package static let filtered = SkipRule("filtered")
    /// The same station, property and time with the same value again in one run: loaded once.
    package static let duplicate = SkipRule("duplicate")
    /// An observation outside a backfill chunk's window (another chunk loads it).
    package static let outsideWindow = SkipRule("outside_window")
    /// A bad record with `on_bad_record: skip` (counted, not stored).
    package static let badRecord = SkipRule("bad_record")
    /// A value already loaded by an earlier run (`since`, a cursor): not read again.
    package static let alreadyLoaded = SkipRule("already_loaded")
    /// The placeholder row a publisher writes for the hour that does not exist on the spring DST day.
    package static let dstPlaceholder = SkipRule("dst_placeholder")
    /// A row after the data that is not data: a publisher's total or note (`Jahressumme,4105177,,…`). (An
    /// all-empty row holds empty cells: `missing_value`.)
    package static let footer = SkipRule("footer")
    /// Two different values for one natural key in one run under `on_bad_record: skip` (with `quarantine`, both
    /// records go to quarantine instead).
    package static let conflictingDuplicate = SkipRule("conflicting_duplicate")
    /// Values of a series the run refused and quarantined once with its reason (a SensorThings Datastream whose
    /// unit cannot be resolved, or without a Thing): its further values are counted here, not quarantined one by one.
    package static let refusedSeries = SkipRule("refused_series")
    /// A DATEX II value restricted to a vehicle class the vocabulary has no property for (e.g. cars only, or a
    /// length class below the heavy-vehicle threshold): never loaded as `vehicle_count`, which would count it twice.
    package static let vehicleClass = SkipRule("vehicle_class")
}

/// Counts per `SkipRule`, small and mergeable (batch → run).
package struct SkipCounts: Sendable, Hashable {
    package private(set) var counts: [SkipRule: Int] = [:]

    package init() {}
    package init(_ counts: [SkipRule: Int]) { self.counts = counts.filter { $0.value != 0 } }

    package mutating func add(_ rule: SkipRule, _ n: Int = 1) {
        guard n != 0 else { return }
        counts[rule, default: 0] += n
    }

    package mutating func merge(_ other: SkipCounts) {
        for (rule, n) in other.counts { add(rule, n) }
    }

    package subscript(rule: SkipRule) -> Int { counts[rule] ?? 0 }

    package var total: Int { counts.values.reduce(0, +) }
    package var isEmpty: Bool { counts.isEmpty }

    /// `duplicate 3, missing_value 12`, sorted by rule.
    package var summary: String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// `{"duplicate": 3, …}` sorted by rule, for the run history.
    package var json: JSONValue {
        .object(counts.sorted { $0.key < $1.key }.map { .init($0.key.rawValue, .number(Double($0.value))) })
    }

    package init(json: JSONValue?) {
        guard case .object(let members) = json ?? .null else { return }
        for m in members { if let n = m.value.numberValue { add(SkipRule(m.key), Int(n)) } }
    }
}

/// Where an observation came from: the record's location and raw payload, shared by all observations of that
/// record (one allocation per record). Kept so that a conflict found later (two values for one natural key in a
/// run) can quarantine both source records with their raw text.
package final class Provenance: Sendable {
    package let location: SourceLocation
    package let raw: String

    package init(location: SourceLocation, raw: String) {
        self.location = location
        self.raw = raw
    }
}
