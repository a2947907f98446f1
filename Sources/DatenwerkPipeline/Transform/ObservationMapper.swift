import DatenwerkCore
import DatenwerkTransforms

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

    struct ValuePlan {
        var field: String
        var fixed: Conversion?
        var propertyField: String?
        var lookup: [String: Conversion]
    }

    private let mapping: ObservationMapping
    private let parser: TimestampParser
    /// For `ambiguous: sequence`: the parser for repeats (winter time), and the local times seen per station.
    private let sequenceParsers: (first: TimestampParser, second: TimestampParser)?
    private var seenAmbiguous: Set<String> = []
    private let values: [ValuePlan]
    private var seenStations: Set<String> = []
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
        self.values = try mapping.values.map { v in
            var lookup: [String: Conversion] = [:]
            for (series, entry) in v.lookup {
                lookup[series] = try Self.conversion(property: entry.property, unit: entry.unit ?? v.unit, range: v.range, scale: v.scale)
            }
            let fixed = try v.property.map { try Self.conversion(property: $0, unit: v.unit, range: v.range, scale: v.scale) }
            return ValuePlan(field: v.field, fixed: fixed, propertyField: v.propertyField, lookup: lookup)
        }
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
        let stationID: String
        if let constant = mapping.station.idValue {
            stationID = constant
        } else {
            let field = mapping.station.idField ?? ""
            let text = record[field]?.text.trimmingCharacters(in: .whitespaces) ?? ""
            guard !text.isEmpty else { return .whole(RecordError(location, field: field, "station id is empty or missing"), values: all) }
            stationID = text
        }
        let stationKey = mapping.station.prefix + ":" + stationID
        if !seenStations.contains(stationKey) {
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
            items.append(.station(station))
        }
        // Time
        let start: Int64
        var end: Int64?
        do {
            let text = timeText(record)
            guard !text.isEmpty else { return .whole(RecordError(location, field: mapping.time.fields.joined(separator: "+"), "time is empty or missing"), values: all) }
            let t: Int64
            do {
                t = try parser.parse(Substring(text))
            } catch where error.kind == .ambiguous && sequenceParsers != nil {
                // First time this station shows this local time: summer time; a repeat: winter time.
                let first = seenAmbiguous.insert(stationKey + "\u{1F}" + text).inserted
                t = try (first ? sequenceParsers!.first : sequenceParsers!.second).parse(Substring(text))
            }
            if let interval = mapping.time.intervalSeconds {
                let length = Int64(interval) * 1_000_000
                if mapping.time.stampAtEnd { start = t - length; end = t } else { start = t; end = t + length }
            } else {
                start = t
            }
            if let problem = plausibility.check(time: start) {
                return .whole(RecordError(location, field: mapping.time.fields.joined(separator: "+"), problem.reason), values: all)
            }
        } catch {
            return .whole(RecordError(location, field: mapping.time.fields.joined(separator: "+"), "\(error)"), values: all)
        }
        let quality = mapping.qualityField.flatMap { record[$0]?.text }
        if let quality, let problem = Plausibility.text(quality, .quality, limit: Plausibility.maxQualityBytes) {
            return .whole(RecordError(location, field: mapping.qualityField, problem.reason), values: all)
        }
        // Values
        var provenance: Provenance?
        for plan in values {
            guard let raw = record[plan.field] else {
                skips.add(.missingValue)
                continue
            }
            let text = raw.text
            if raw.isNull || mapping.missing.contains(text) || mapping.missing.contains(text.trimmingCharacters(in: .whitespaces)) {
                skips.add(.missingValue)
                continue
            }
            let conversion: Conversion
            if let fixed = plan.fixed {
                conversion = fixed
            } else {
                let series = plan.propertyField.flatMap { record[$0]?.text } ?? ""
                guard let found = plan.lookup[series] else {
                    errors.append(RecordError(location, field: plan.propertyField, "series '\(series)' is not mapped to an observed property"))
                    continue
                }
                conversion = found
            }
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

    private func timeText(_ record: Record) -> String {
        if mapping.time.fields.count == 1 { return record[mapping.time.fields[0]]?.text ?? "" }
        return mapping.time.fields.map { record[$0]?.text ?? "" }.joined(separator: " ")
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
