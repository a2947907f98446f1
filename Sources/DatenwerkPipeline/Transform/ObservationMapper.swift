import DatenwerkCore
import DatenwerkTransforms
import Foundation

/// Turns one record into a station (the first time it is seen) and its observations, normalised:
/// numbers (decimal comma), units (to the property's canonical UCUM unit), local time → UTC, CRS → WGS84,
/// plausible ranges. Problems become `RecordError`s that name the field.
struct ObservationMapper {
    /// Converts a source unit to the property's canonical one, then applies an optional scale.
    struct Conversion {
        var property: String
        var unit: Units.Conversion?
        var scale: Double?
        var range: ClosedRange<Double>?

        @inline(__always) func apply(_ value: Double) -> Double {
            let converted = unit?.apply(value) ?? value
            return scale.map { converted * $0 } ?? converted
        }
    }

    /// One `values:` entry, resolved. A class, so walking the plans per record retains one reference each.
    final class ValuePlan {
        let field: String
        let fixed: Conversion?
        let propertyField: String?
        let lookup: [String: Conversion]
        /// `unit_field:`: the source unit comes per record from this field; the conversion's own unit (from `unit:`)
        /// is then only the fallback for an empty cell.
        let unitField: String?
        /// `unit:` was given (for the fixed property, or per series): the fallback of an empty `unit_field` cell.
        let hasFallbackUnit: Bool
        let seriesFallbackUnits: Set<String>
        /// `FieldSlots` of `field`, `propertyField` and `unitField` (-1 when not set).
        let fieldSlot: Int, propertyFieldSlot: Int, unitFieldSlot: Int

        init(field: String, fixed: Conversion?, propertyField: String?, lookup: [String: Conversion], unitField: String?,
             hasFallbackUnit: Bool, seriesFallbackUnits: Set<String>, slots: (field: Int, propertyField: Int, unitField: Int)) {
            self.field = field
            self.fixed = fixed
            self.propertyField = propertyField
            self.lookup = lookup
            self.unitField = unitField
            self.hasFallbackUnit = hasFallbackUnit
            self.seriesFallbackUnits = seriesFallbackUnits
            (fieldSlot, propertyFieldSlot, unitFieldSlot) = slots
        }
    }

    private let mapping: ObservationMapping
    private let parser: TimestampParser
    /// For `ambiguous: sequence`: the parser for repeats (winter time), and the local times seen per station.
    private let sequenceParsers: (first: TimestampParser, second: TimestampParser)?
    /// For `ambiguous: sequence`: the repeated local times seen per series (station + property).
    private var seenAmbiguous: Set<String> = []
    /// `unit_field:` conversions, resolved once per spelling and property.
    private var rowUnits: [RowUnitKey: Result<Units.Conversion, UnitError>] = [:]

    private struct RowUnitKey: Hashable {
        var spelling: String
        var property: String
    }
    private let values: [ValuePlan]
    private var seenStations: Set<String> = []
    /// The last station id read and its key, once the station is in `seenStations` (rows come grouped by station,
    /// so most records skip building the key and looking it up).
    private var lastStation: (id: String, key: String)?
    /// The `missing:` markers, compared on bytes.
    private let missing: MissingMarkers
    /// The time field(s) as named in messages (`Datum+Uhrzeit`).
    private let timeField: String
    /// Where the fields the mapper reads every record sit in the current records' `FieldIndex`.
    private var slots: FieldSlots
    private let stationSlot: Int
    private let timeSlots: [Int]
    private let qualitySlot: Int
    /// Text lengths, WGS84 bounds, times from 1700 (historic series) to a day ahead: see `Plausibility`.
    private let plausibility = Plausibility.historic()
    /// Values offered by the records mapped so far (each record offers one per `values:` entry) and the ones
    /// left out on purpose (missing markers): the run's books, taken per batch with `takeTally()`.
    private(set) var valuesRead = 0
    private(set) var skips = SkipCounts()

    /// How many values each record offers.
    var valuesPerRecord: Int { values.count }

    /// Counts values of records that never reach `map` (dropped by a transform filter).
    mutating func countFiltered(records: Int) {
        valuesRead += records * values.count
        skips.add(.filtered, records * values.count)
    }

    mutating func takeTally() -> (valuesRead: Int, skips: SkipCounts) {
        defer { valuesRead = 0; skips = SkipCounts() }
        return (valuesRead, skips)
    }

    /// What `map` found wrong with a record: its problems and how many of its values they cost.
    struct Problems {
        var errors: [RecordError] = []
        var values = 0
        static func whole(_ error: RecordError, values: Int) -> Problems { Problems(errors: [error], values: values) }
    }

    init(_ mapping: ObservationMapping) throws {
        self.mapping = mapping
        let rule: LocalTimeResolver.Ambiguity = switch mapping.time.ambiguous {
        case .first: .first
        case .second: .second
        case .reject, .sequence: .reject
        }
        let zone = try LocalTimeResolver(zone: mapping.time.zone, ambiguity: rule)
        let strip = mapping.time.strip ?? ""
        self.parser = try TimestampParser(format: mapping.time.format, zone: zone, stripCharacters: strip)
        self.sequenceParsers = mapping.time.ambiguous == .sequence
            ? (try TimestampParser(format: mapping.time.format, zone: zone.with(ambiguity: .first), stripCharacters: strip),
               try TimestampParser(format: mapping.time.format, zone: zone.with(ambiguity: .second), stripCharacters: strip))
            : nil
        var names: [String] = []
        func slot(_ name: String?) -> Int {
            guard let name else { return -1 }
            if let known = names.firstIndex(of: name) { return known }
            names.append(name)
            return names.count - 1
        }
        self.stationSlot = slot(mapping.station.idField)
        self.timeSlots = mapping.time.fields.map { slot($0) }
        self.qualitySlot = slot(mapping.qualityField)
        self.missing = MissingMarkers(mapping.missing)
        self.timeField = mapping.time.fields.joined(separator: "+")
        self.values = try mapping.values.map { v in
            var lookup: [String: Conversion] = [:]
            var seriesFallbackUnits: Set<String> = []
            for (series, entry) in v.lookup {
                lookup[series] = try Self.conversion(property: entry.property, unit: entry.unit ?? v.unit, range: v.range, scale: v.scale)
                if entry.unit ?? v.unit != nil { seriesFallbackUnits.insert(series) }
            }
            let fixed = try v.property.map { try Self.conversion(property: $0, unit: v.unit, range: v.range, scale: v.scale) }
            return ValuePlan(field: v.field, fixed: fixed, propertyField: v.propertyField, lookup: lookup,
                             unitField: v.unitField, hasFallbackUnit: v.unit != nil, seriesFallbackUnits: seriesFallbackUnits,
                             slots: (slot(v.field), slot(v.propertyField), slot(v.unitField)))
        }
        self.slots = FieldSlots(names)
    }

    static func conversion(property: String, unit: String?, range: ClosedRange<Double>?, scale: Double?) throws -> Conversion {
        guard let known = Vocabulary.property(property) else { throw ExtractError("unknown observed property '\(property)'") }
        let conversion = try unit.map { try Units.conversion(from: $0, to: known.unit) }
        return Conversion(property: property, unit: conversion, scale: scale, range: range ?? known.range)
    }

    /// Appends the staged items for `record`; returns the problems found (the record is then quarantined).
    mutating func map(_ record: Record, into items: inout [StagedItem]) -> Problems {
        valuesRead += values.count
        let problems = mapValues(record, into: &items)
        return problems
    }

    private mutating func mapValues(_ record: Record, into items: inout [StagedItem]) -> Problems {
        var errors: [RecordError] = []
        let all = values.count
        let location = record.location
        // Station
        slots.use(record.fields)
        let stationID: String
        if let constant = mapping.station.idValue {
            stationID = constant
        } else {
            let field = mapping.station.idField ?? ""
            let text = stationSlot < 0 ? "" : FieldText.trimmed(slots.value(record, stationSlot)?.text ?? "")
            guard !text.isEmpty else { return .whole(RecordError(location, field: field, "station id is empty or missing"), values: all) }
            stationID = text
        }
        let stationKey: String
        if let last = lastStation, FieldText.sameBytes(last.id, stationID) {
            stationKey = last.key
        } else {
            stationKey = mapping.station.prefix + ":" + stationID
            if seenStations.contains(stationKey) { lastStation = (stationID, stationKey) }
        }
        if lastStation?.key != stationKey {
            var station = Station(key: stationKey, name: mapping.station.nameField.flatMap { record[$0]?.text }, kind: mapping.station.kind)
            func reject(_ problem: Plausibility.Problem) -> Problems {
                let c = mapping.station.coordinates
                let field: String? = switch problem.part {
                case .stationKey: mapping.station.idField ?? "station.id_value"
                case .stationName: mapping.station.nameField
                case .longitude, .sourceX: c?.xField
                case .latitude, .sourceY: c?.yField
                case .altitude: c?.altitudeField
                default: nil
                }
                return .whole(RecordError(location, field: field, problem.reason), values: all)
            }
            if let problem = plausibility.check(station) { return reject(problem) }
            if let c = mapping.station.coordinates {
                let x = record[c.xField], y = record[c.yField]
                let xText = x?.text ?? "", yText = y?.text ?? ""
                if !(mapping.missing.contains(xText) && mapping.missing.contains(yText)) {
                    guard let xv = number(x), let yv = number(y) else {
                        let field = number(x) == nil ? c.xField : c.yField
                        return .whole(RecordError(location, field: field, "coordinate '\(record[field]?.text ?? "")' is not a number"), values: all)
                    }
                    if c.epsg == 4326, let problem = Plausibility.check(GeoPoint(longitude: xv, latitude: yv)) { return reject(problem) }
                    do {
                        var point = try CoordinateTransform.toWGS84(x: xv, y: yv, epsg: c.epsg)
                        if let a = c.altitudeField { point.altitude = number(record[a]) }
                        station.location = point
                        if c.epsg != 4326 { station.sourceCoordinates = SourceCoordinates(x: xv, y: yv, epsg: c.epsg) }
                    } catch {
                        return .whole(RecordError(location, field: c.xField, "coordinates (\(xText), \(yText)) in EPSG:\(c.epsg): \(error)"), values: all)
                    }
                }
            }
            if let problem = plausibility.check(station) { return reject(problem) }
            if !mapping.station.properties.isEmpty {
                station.properties = .object(mapping.station.properties.compactMap { name in record[name].map { JSONValue.Member(name, $0) } })
            }
            seenStations.insert(stationKey)
            lastStation = (stationID, stationKey)
            items.append(.station(station))
        }
        // Time
        let timeField = self.timeField
        let text = timeText(record)
        /// The phenomenon time; with `ambiguous: sequence` and a repeated local time also the winter-time reading,
        /// chosen per series below.
        let summer: (start: Int64, end: Int64?)
        let winter: (start: Int64, end: Int64?)?
        guard !text.isEmpty else { return .whole(RecordError(location, field: timeField, "time is empty or missing"), values: all) }
        switch phenomenonTimes(text) {
        case .success(let times): (summer, winter) = times
        case .failure(let problem): return .whole(RecordError(location, field: timeField, problem.reason), values: all)
        }
        let quality = qualitySlot < 0 ? nil : slots.value(record, qualitySlot)?.text
        if let quality, let problem = Plausibility.text(quality, .quality, limit: Plausibility.maxQualityBytes) {
            return .whole(RecordError(location, field: mapping.qualityField, problem.reason), values: all)
        }
        // Values
        var provenance: Provenance?
        for plan in values {
            // The series of this value: its station and property (the lookup's series text when it names none).
            let series = plan.fixed == nil && plan.propertyFieldSlot >= 0 ? slots.value(record, plan.propertyFieldSlot)?.text ?? "" : ""
            let found = plan.fixed ?? plan.lookup[series]
            // `ambiguous: sequence` per series: the first time *this series* shows the repeated local time it is
            // summer time, a repeat is winter time — whatever other properties of the station did before. A row
            // counts as shown even when its value is missing: it still holds the summer-time place in the file.
            var start = summer.start, end = summer.end
            if let winter {
                let seriesKey = stationKey + "\u{1F}" + (found.map { "p:" + $0.property } ?? "s:" + series) + "\u{1F}" + text
                if !seenAmbiguous.insert(seriesKey).inserted { (start, end) = winter }
            }
            guard let raw = slots.value(record, plan.fieldSlot) else {
                skips.add(.missingValue)
                continue
            }
            let valueText = raw.text
            if raw.isNull || missing.matches(valueText) {
                skips.add(.missingValue)
                continue
            }
            guard var conversion = found else {
                errors.append(RecordError(location, field: plan.propertyField, "series '\(series)' is not mapped to an observed property"))
                continue
            }
            if let unitField = plan.unitField {
                let cell = slots.value(record, plan.unitFieldSlot).flatMap { $0.isNull ? nil : FieldText.trimmed($0.text) } ?? ""
                if !cell.isEmpty {
                    switch rowUnit(cell, property: conversion.property) {
                    case .success(let unit): conversion.unit = unit
                    case .failure(let error):
                        errors.append(RecordError(location, field: unitField, error.reason))
                        continue
                    }
                } else if !(plan.fixed != nil ? plan.hasFallbackUnit : plan.seriesFallbackUnits.contains(series)) {
                    errors.append(RecordError(location, field: unitField, "the unit is empty and the value mapping has no 'unit:' to fall back on"))
                    continue
                }
            }
            let text = valueText
            guard let value = number(raw) else {
                errors.append(RecordError(location, field: plan.field, "'\(text)' is not a number"))
                continue
            }
            let result = conversion.apply(value)
            if !result.isFinite {
                errors.append(RecordError(location, field: plan.field, "\(JSONValue.format(result)) is not a finite number"))
                continue
            }
            if let range = conversion.range, !range.contains(result) {
                errors.append(RecordError(location, field: plan.field, "\(JSONValue.format(result)) is outside the plausible range \(JSONValue.format(range.lowerBound))…\(JSONValue.format(range.upperBound)) for \(conversion.property)"))
                continue
            }
            if provenance == nil { provenance = Provenance(location: location, raw: record.raw) }
            items.append(.observation(Observation(stationKey: stationKey, property: conversion.property, phenomenonStart: start, phenomenonEnd: end, result: result, quality: quality, provenance: provenance)))
        }
        return Problems(errors: errors, values: errors.count)
    }

    /// Why a time text gives no phenomenon time (a message for the record's error).
    private struct TimeProblem: Error {
        var reason: String
    }

    /// The phenomenon time of a (non-empty) time text; with `ambiguous: sequence` and a repeated local time also the
    /// winter-time reading. Not `mutating`, so reading the parsers never copies the mapper.
    private func phenomenonTimes(_ text: String) -> Result<(summer: (start: Int64, end: Int64?), winter: (start: Int64, end: Int64?)?), TimeProblem> {
        let summer: (start: Int64, end: Int64?)
        var winter: (start: Int64, end: Int64?)?
        do {
            do {
                summer = try phenomenonTime(parser.parse(Substring(text)))
            } catch where error.kind == .ambiguous && sequenceParsers != nil {
                summer = try phenomenonTime(sequenceParsers!.first.parse(Substring(text)))
                winter = try phenomenonTime(sequenceParsers!.second.parse(Substring(text)))
            }
        } catch {
            return .failure(TimeProblem(reason: "\(error)"))
        }
        if let problem = plausibility.check(time: summer.start) { return .failure(TimeProblem(reason: problem.reason)) }
        if let winter, let problem = plausibility.check(time: winter.start) { return .failure(TimeProblem(reason: problem.reason)) }
        return .success((summer, winter))
    }

    /// Start and end of the phenomenon for a parsed time stamp (`interval`, `stamp`).
    private func phenomenonTime(_ t: Int64) -> (start: Int64, end: Int64?) {
        guard let interval = mapping.time.intervalSeconds else { return (t, nil) }
        let length = Int64(interval) * 1_000_000
        return mapping.time.stampAtEnd ? (t - length, t) : (t, t + length)
    }

    /// The conversion from a `unit_field` cell's spelling to the property's canonical unit, resolved once per
    /// spelling and property. The error names the spelling (with a deterministic "did you mean") or the dimensions.
    private mutating func rowUnit(_ spelling: String, property: String) -> Result<Units.Conversion, UnitError> {
        let key = RowUnitKey(spelling: spelling, property: property)
        if let cached = rowUnits[key] { return cached }
        let result: Result<Units.Conversion, UnitError>
        if let canonical = Vocabulary.property(property)?.unit {
            do throws(UnitError) {
                result = .success(try Units.conversion(from: spelling, to: canonical))
            } catch {
                let reason = Units.canonicalSymbol(spelling) == nil
                    ? error.reason
                    : "unit '\(spelling)' cannot be converted to \(property)'s canonical unit '\(canonical)': \(error.reason)"
                result = .failure(UnitError(from: spelling, to: canonical, reason: reason))
            }
        } else {
            result = .failure(UnitError(from: spelling, to: "?", reason: "unknown observed property '\(property)'"))
        }
        if rowUnits.count < 10_000 { rowUnits[key] = result }
        return result
    }

    private mutating func timeText(_ record: Record) -> String {
        if timeSlots.count == 1 { return slots.value(record, timeSlots[0])?.text ?? "" }
        var text = ""
        for (k, slot) in timeSlots.enumerated() {
            if k > 0 { text += " " }
            text += slots.value(record, slot)?.text ?? ""
        }
        return text
    }

    private func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .number(let d): return d
        case .string(let s): return Numbers.parse(Substring(s), decimalComma: mapping.decimalComma)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
}

/// Where named fields sit in the records' `FieldIndex`, looked up once per index instead of once per record
/// (CSV rows share one index). A name that is not a plain field (a dotted path) goes through `Record`'s subscript.
struct FieldSlots {
    private let names: [String]
    /// The index the positions belong to (held, so its identity cannot be reused by another one).
    private var fields: FieldIndex?
    /// Per name: its position, `unknown` until first asked, `notPlain` for the subscript.
    private var positions: [Int]
    private static let unknown = -1, notPlain = -2

    init(_ names: [String]) {
        self.names = names
        self.positions = Array(repeating: Self.unknown, count: names.count)
    }

    /// Starts reading a record with `fields`.
    @inline(__always)
    mutating func use(_ fields: FieldIndex) {
        if fields === self.fields { return }
        self.fields = fields
        for k in positions.indices { positions[k] = Self.unknown }
    }

    /// The value of field `slot` in `record` (whose index was passed to `use`), as `record[name]` gives it.
    @inline(__always)
    mutating func value(_ record: Record, _ slot: Int) -> JSONValue? {
        var position = positions[slot]
        if position == Self.unknown {
            position = record.fields.position(of: names[slot]) ?? Self.notPlain
            positions[slot] = position
        }
        return position >= 0 ? record.values[position] : record[names[slot]]
    }
}

/// The `missing:` markers. A value is missing when its text, or its text without white space at either end, is
/// one of them — compared as `String`s compare (canonical equivalence), but on bytes for ASCII text.
struct MissingMarkers {
    private let markers: Set<String>
    /// The markers whose canonical (NFC) form is ASCII, as bytes: ASCII text equals a marker exactly when its bytes
    /// equal one of these (an ASCII string is its own NFC form).
    private let ascii: [[UInt8]]

    init(_ markers: Set<String>) {
        self.markers = markers
        self.ascii = markers.map { Array($0.precomposedStringWithCanonicalMapping.utf8) }.filter { $0.allSatisfy { $0 < 0x80 } }
    }

    /// Whether `text` or `text` trimmed of white space (as `trimmingCharacters(in: .whitespaces)`) is a marker.
    func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { p in
            if contains(p) { return true }
            let range = FieldText.trimmedRange(p)
            return range.count != p.count && contains(UnsafeBufferPointer(rebasing: p[range]))
        }
    }

    private func contains(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard FieldText.isASCII(p) else { return markers.contains(String(decoding: p, as: UTF8.self)) }
        for marker in ascii where marker.count == p.count {
            if marker.withUnsafeBufferPointer({ $0.elementsEqual(p) }) { return true }
        }
        return false
    }
}
