import DatenwerkCore
import DatenwerkFormats
import DatenwerkTransforms

/// Maps the DWD "POI" current observations (`weather/weather_reports/poi/<id>-BEOB.csv`).
///
/// Three header rows: English parameter names (the decoder's header), units (first cell: the
/// station id), German labels. Then one row per hour, newest first: `dd.mm.yy;HH:MM` in UTC,
/// decimal comma, `---` for missing.
struct DWDPOIMapping {
    struct Column: Sendable {
        var property: String
        /// Microseconds before the timestamp the value covers; 0 for a reading at the timestamp.
        var covers: Int64
    }

    /// Known POI columns → property and the period they cover.
    static let columns: [String: Column] = [
        "dry_bulb_temperature_at_2_meter_above_ground": Column(property: "air_temperature", covers: 0),
        "relative_humidity": Column(property: "relative_humidity", covers: 0),
        "mean_wind_speed_during last_10_min_at_10_meters_above_ground": Column(property: "wind_speed", covers: 600_000_000),
        "mean_wind_direction_during_last_10 min_at_10_meters_above_ground": Column(property: "wind_direction", covers: 600_000_000),
        "precipitation_amount_last_hour": Column(property: "precipitation", covers: 3_600_000_000),
        "global_radiation_last_hour": Column(property: "global_radiation", covers: 3_600_000_000),
        "diffuse_solar_radiation_last_hour": Column(property: "diffuse_radiation", covers: 3_600_000_000),
        "total_time_of_sunshine_during_last_hour": Column(property: "sunshine_duration", covers: 3_600_000_000),
        "dew_point_temperature_at_2_meter_above_ground": Column(property: "dew_point_temperature", covers: 0),
        "horizontal_visibility": Column(property: "visibility", covers: 0),
        "cloud_cover_total": Column(property: "cloud_cover", covers: 0),
        // "Windboen (letzte Stunde)": the strongest gust of the last hour. The 6-hour and previous-day gusts and
        // the maximum 10-minute mean are left unmapped (counted), so one series has one interval length.
        "maximum_wind_speed_last_hour": Column(property: "wind_gust_speed", covers: 3_600_000_000),
        "total_snow_depth": Column(property: "snow_depth", covers: 0),
        "sea/water_temperature": Column(property: "water_temperature", covers: 0),
    ]

    /// The ASCII unit spellings of the feed → UCUM.
    static let units: [String: String] = ["Grad C": "Cel", "Grad": "deg", "km/h": "km/h", "%": "%", "mm": "mm", "min": "min", "h": "h", "hPa": "hPa", "cm": "cm", "m": "m", "km": "km"]

    private struct Plan {
        var name: String
        var property: String
        var covers: Int64
        var range: ClosedRange<Double>?
        /// From the unit row to the vocabulary unit.
        var convert: @Sendable (Double) -> Double
    }

    let filter: Set<String>?
    private let time: TimestampParser
    /// Known after the unit row (line 2).
    private var stationID: String?
    private var plans: [Plan] = []
    /// Parameter columns no plan maps (`present_weather`, `past_weather_1`, daily extremes …): `unmapped_property`.
    private var unmapped: [String] = []
    private var skipping = false

    init(filter: Set<String>?) throws {
        self.filter = filter
        time = try TimestampParser(format: "dd.MM.yy HH:mm", zone: .utc)
    }

    /// Accounting: every parameter column of a data row is one value (`tally`); `---` is `missing_value`,
    /// parameters outside the table `unmapped_property`, a station not in `stations` `filtered`. The unit and
    /// label rows offer none.
    mutating func map(_ r: Record, stations: inout StationTracker, into items: inout [StagedItem], tally: inout ValueTally) -> [RecordError] {
        let at = r.location
        let first = r.values.first?.text ?? ""
        if stationID == nil {
            // The unit row: station id, "Unit", then one unit per parameter.
            guard r["Parameter description"]?.text == "Unit", !first.isEmpty else {
                return [RecordError(at, field: "surface observations", "expected the unit row (station id; Unit; …) in line 2")]
            }
            stationID = first
            skipping = filter.map { !$0.contains(first) } ?? false
            return setUp(r)
        }
        if first == "Datum" { return [] }   // the German labels
        let offered = plans.count + unmapped.count
        tally.read(offered)
        if skipping {   // a station not asked for
            tally.skip(.filtered, offered)
            return []
        }
        let key = "dwd-cdc:poi-\(stationID!)"
        let end: Int64
        let timeText = r["Parameter description"]?.text ?? ""
        do { end = try time.parse(first + " " + timeText) } catch {
            return [RecordError(at, field: "surface observations", "\(error)")]
        }
        stations.emit(key, into: &items) {
            Station(key: key, name: "DWD POI \(stationID!)", kind: "weather_station",
                    properties: .object([.init("poi_id", .string(stationID!))]))
        }
        var problems: [RecordError] = []
        for name in unmapped {
            let text = r[name].map { $0.isNull ? "" : $0.text } ?? ""
            tally.skip(text.isEmpty || text == "---" ? .missingValue : .unmappedProperty)
        }
        for plan in plans {
            guard let cell = r[plan.name], !cell.isNull else {
                tally.skip(.missingValue)
                continue
            }
            let text = cell.text
            if text.isEmpty || text == "---" {
                tally.skip(.missingValue)
                continue
            }
            guard let raw = Numbers.parse(text, decimalComma: true) else {
                problems.append(RecordError(at, field: plan.name, "'\(text)' is not a number"))
                continue
            }
            let value = plan.convert(raw)
            if let range = plan.range, !range.contains(value) {
                problems.append(RecordError(at, field: plan.name, "\(JSONValue.format(value)) is outside the plausible range \(JSONValue.format(range.lowerBound))…\(JSONValue.format(range.upperBound)) for \(plan.property)"))
                continue
            }
            items.append(.observation(Observation(stationKey: key, property: plan.property,
                                                  phenomenonStart: end - plan.covers, phenomenonEnd: plan.covers > 0 ? end : nil, result: value)))
        }
        return problems
    }

    /// Builds the conversions from the unit row; a unit that does not fit quarantines the row and drops its column.
    private mutating func setUp(_ r: Record) -> [RecordError] {
        var problems: [RecordError] = []
        for (index, name) in r.fields.names.enumerated() where index >= 2 {
            guard let column = Self.columns[name], let property = Vocabulary.property(column.property) else {
                unmapped.append(name)
                continue
            }
            let unit = r[name]?.text ?? ""
            let convert: @Sendable (Double) -> Double
            if unit == "W/m2" && property.unit == "J/cm2" {
                // A mean irradiance over the period → radiant exposure: W/m² × seconds / 10 000 cm²/m².
                let factor = Double(column.covers) / 1_000_000 / 10_000
                convert = { $0 * factor }
            } else {
                do {
                    let conversion = try Units.conversion(from: Self.units[unit] ?? unit, to: property.unit)
                    convert = { conversion.apply($0) }
                } catch {
                    problems.append(RecordError(r.location, field: name, "\(error)"))
                    unmapped.append(name)   // its values cannot be converted: counted, not loaded
                    continue
                }
            }
            plans.append(Plan(name: name, property: column.property, covers: column.covers, range: property.range, convert: convert))
        }
        return problems
    }
}
