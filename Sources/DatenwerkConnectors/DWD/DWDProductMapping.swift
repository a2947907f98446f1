import DatenwerkCore
import DatenwerkFormats
import DatenwerkTransforms
import Foundation

/// Maps the rows of one CDC `produkt_*.txt` file (hourly or 10-minute station data).
///
/// Columns are mapped by name, so one table serves every product (TU, RR, P0, 10-minute solar, …).
/// Each value takes its quality level from the nearest `QN*` column to its left (`QN_9` for TT_TU,
/// `QN_3`/`QN_4` in products with two). `-999` is missing in every column.
struct DWDProductMapping {
    /// How a value relates to its timestamp.
    enum Span: Sendable {
        /// A reading at the timestamp (temperature, humidity, pressure).
        case instant
        /// A sum or mean over the period (hour or 10 minutes) that ends at the timestamp.
        case period
    }

    struct Column: Sendable {
        var property: String
        var unit: String
        var span: Span
    }

    /// Known `produkt_*` columns → property, unit as the DWD documents it, and span.
    static let columns: [String: Column] = [
        // Hourly: TU (air temperature), RR (precipitation), P0 (pressure), SD (sunshine), ST (solar), FF (wind).
        "TT_TU": Column(property: "air_temperature", unit: "Cel", span: .instant),
        "RF_TU": Column(property: "relative_humidity", unit: "%", span: .instant),
        "R1": Column(property: "precipitation", unit: "mm", span: .period),
        "P0": Column(property: "air_pressure", unit: "hPa", span: .instant),
        "SD_SO": Column(property: "sunshine_duration", unit: "min", span: .period),
        "FG_LBERG": Column(property: "global_radiation", unit: "J/cm2", span: .period),
        "DS_LBERG": Column(property: "diffuse_radiation", unit: "J/cm2", span: .period),
        "SD_LBERG": Column(property: "sunshine_duration", unit: "min", span: .period),
        "F": Column(property: "wind_speed", unit: "m/s", span: .instant),
        "D": Column(property: "wind_direction", unit: "deg", span: .instant),
        // 10 minutes: solar, air temperature, precipitation, wind.
        "GS_10": Column(property: "global_radiation", unit: "J/cm2", span: .period),
        "DS_10": Column(property: "diffuse_radiation", unit: "J/cm2", span: .period),
        "SD_10": Column(property: "sunshine_duration", unit: "h", span: .period),
        "TT_10": Column(property: "air_temperature", unit: "Cel", span: .instant),
        "RF_10": Column(property: "relative_humidity", unit: "%", span: .instant),
        "PP_10": Column(property: "air_pressure", unit: "hPa", span: .instant),
        "RWS_10": Column(property: "precipitation", unit: "mm", span: .period),
        "FF_10": Column(property: "wind_speed", unit: "m/s", span: .period),
        "DD_10": Column(property: "wind_direction", unit: "deg", span: .period),
        // Dew point (hourly `dew_point` TD, hourly `moisture` TD_STD), gusts (hourly `extreme_wind` FX_911: the
        // strongest gust of the hour; 10-minute `extreme_wind` FX_10), visibility (hourly `visibility` V_VV, in m),
        // total cloud cover (hourly `cloudiness` V_N, in eighths of the sky: okta). The other columns of those
        // products (TT and TT_STD, which repeat the air_temperature product's TT_TU; V_N_I and V_VV_I, how the
        // value was observed; FNX_10, FMX_10, DX_10; ABSF_STD, VP_STD, TF_STD …) are counted as unmapped_property.
        "TD": Column(property: "dew_point_temperature", unit: "Cel", span: .instant),
        "TD_STD": Column(property: "dew_point_temperature", unit: "Cel", span: .instant),
        "FX_911": Column(property: "wind_gust_speed", unit: "m/s", span: .period),
        "FX_10": Column(property: "wind_gust_speed", unit: "m/s", span: .period),
        "V_VV": Column(property: "visibility", unit: "m", span: .instant),
        "V_N": Column(property: "cloud_cover", unit: "okta", span: .instant),
    ]

    /// One mapped column of this file.
    private struct Plan {
        var name: String
        var index: Int
        var property: String
        var conversion: Units.Conversion
        var range: ClosedRange<Double>?
        var span: Span
        var quality: Int?
    }

    /// Microseconds per period: 1 hour or 10 minutes.
    let period: Int64?
    /// The station's metadata from the same archive or folder, if any.
    let metadata: DWDStationInfo?
    let stationList: [String: DWDStationInfo]
    let filter: Set<String>?
    /// Periods (local `yyyyMMdd`) whose timestamps are MEZ (UTC+1) per `Metadaten_Parameter`;
    /// nil when there was no such file: then 10-minute data before 2000 is taken as MEZ, as the DWD documents.
    let mezPeriods: [ClosedRange<Int>]?

    private var plans: [Plan]?
    /// Value columns of this file that no plan maps (`RS_IND`, `WRTR`, `LS_10`, `V_TE002` …): `unmapped_property`.
    private var unmapped: [Int] = []
    private var periodFromHeader: Int64?
    private let hourly: TimestampParser
    private let tenMinutes: TimestampParser

    static let hour: Int64 = 3_600_000_000
    static let tenMinutesLength: Int64 = 600_000_000

    /// `fileName` decides the resolution (`produkt_zehn_…` 10 minutes, `produkt_…_stunde_…` hourly);
    /// other names fall back to the columns (`*_10` → 10 minutes).
    init(fileName: String, metadata: DWDStationInfo?, stationList: [String: DWDStationInfo], filter: Set<String>?, mezPeriods: [ClosedRange<Int>]?) throws {
        let lower = fileName.lowercased()
        if lower.contains("_zehn_") || lower.contains("10min") { period = Self.tenMinutesLength }
        else if lower.contains("_stunde_") { period = Self.hour }
        else { period = nil }
        self.metadata = metadata
        self.stationList = stationList
        self.filter = filter
        self.mezPeriods = mezPeriods
        hourly = try TimestampParser(format: "yyyyMMddHH", zone: .utc)
        tenMinutes = try TimestampParser(format: "yyyyMMddHHmm", zone: .utc)
    }

    private mutating func plan(for fields: FieldIndex) throws -> [Plan] {
        if let plans { return plans }
        var plans: [Plan] = []
        var quality: Int?
        var tenMinuteColumns = false
        unmapped = []
        for (index, name) in fields.names.enumerated() {
            if name == "QN" || name.hasPrefix("QN_") {
                quality = index
                continue
            }
            if name.hasSuffix("_10") { tenMinuteColumns = true }
            guard let column = Self.columns[name], let property = Vocabulary.property(column.property) else {
                if Self.isValueColumn(name) { unmapped.append(index) }
                continue
            }
            plans.append(Plan(name: name, index: index, property: column.property,
                              conversion: try Units.conversion(from: column.unit, to: property.unit),
                              range: property.range, span: column.span, quality: quality))
        }
        periodFromHeader = tenMinuteColumns ? Self.tenMinutesLength : Self.hour
        self.plans = plans
        return plans
    }

    /// Columns that do not hold a value: ids, times, quality levels, the `eor` marker.
    static func isValueColumn(_ name: String) -> Bool {
        !(name.isEmpty || name == "STATIONS_ID" || name.hasPrefix("MESS_DATUM") || name == "QN" || name.hasPrefix("QN_")
            || name.lowercased() == "eor" || name.hasPrefix("column_"))
    }

    /// Accounting: every value column of a row is one value (`tally`); `-999` is `missing_value`, columns
    /// outside the table `unmapped_property`, rows of stations not in `stations` `filtered`.
    mutating func map(_ r: Record, stations: inout StationTracker, into items: inout [StagedItem], tally: inout ValueTally) -> [RecordError] {
        let at = r.location
        let offered = r.fields.names.count { Self.isValueColumn($0) }
        tally.read(offered)
        guard let id = r["STATIONS_ID"].flatMap({ DWDMetadata.stationID($0.text) }) else {
            return [RecordError(at, field: "STATIONS_ID", "'\(r["STATIONS_ID"]?.text ?? "")' is not a station id")]
        }
        if let filter, !filter.contains(id) {
            tally.skip(.filtered, offered)
            return []
        }
        let plans: [Plan]
        do { plans = try plan(for: r.fields) } catch { return [RecordError(at, "\(error)")] }
        let end: Int64
        do { end = try time(r["MESS_DATUM"]?.text ?? "") } catch { return [RecordError(at, field: "MESS_DATUM", "\(error)")] }
        for index in unmapped {
            let text = index < r.values.count ? r.values[index].text : ""
            tally.skip(text.isEmpty || text == "-999" ? .missingValue : .unmappedProperty)
        }
        let length = period ?? periodFromHeader ?? Self.hour

        let key = "dwd-cdc:\(id)"
        stations.emit(key, into: &items) { station(id: id, key: key) }

        var problems: [RecordError] = []
        for plan in plans {
            let text = plan.index < r.values.count ? r.values[plan.index].text : ""
            guard !text.isEmpty else {
                tally.skip(.missingValue)
                continue
            }
            guard let raw = Double(text) else {
                problems.append(RecordError(at, field: plan.name, "'\(text)' is not a number"))
                continue
            }
            if raw == -999 {
                tally.skip(.missingValue)
                continue
            }
            let value = plan.conversion.apply(raw)
            if let range = plan.range, !range.contains(value) {
                problems.append(RecordError(at, field: plan.name, "\(JSONValue.format(value)) is outside the plausible range \(JSONValue.format(range.lowerBound))…\(JSONValue.format(range.upperBound)) for \(plan.property)"))
                continue
            }
            var quality: String?
            if let q = plan.quality, q < r.values.count {
                let level = r.values[q].text
                if !level.isEmpty, level != "-999" { quality = level }
            }
            let start = plan.span == .period ? end - length : end
            items.append(.observation(Observation(stationKey: key, property: plan.property, phenomenonStart: start,
                                                  phenomenonEnd: plan.span == .period ? end : nil, result: value, quality: quality)))
        }
        return problems
    }

    /// `MESS_DATUM` in UTC: `yyyyMMddHH`, `yyyyMMddHHmm`, or `yyyyMMddHH:mm` (hourly solar).
    /// MEZ periods are moved back by one hour.
    func time(_ text: String) throws -> Int64 {
        let digits = text.replacingOccurrences(of: ":", with: "")
        let utc: Int64
        switch digits.count {
        case 10: utc = try hourly.parse(digits)
        case 12: utc = try tenMinutes.parse(digits)
        default: throw TimestampError(.mismatch, text: text, format: "yyyyMMddHH or yyyyMMddHHmm", reason: "expected 10 or 12 digits")
        }
        let day = Int(digits.prefix(8)) ?? 0
        let mez: Bool
        if let mezPeriods {
            mez = mezPeriods.contains { $0.contains(day) }
        } else {
            mez = digits.count == 12 && day < 2000_01_01
        }
        return mez ? utc - Self.hour : utc
    }

    private func station(id: String, key: String) -> Station {
        let known = metadata?.id == id ? metadata!.filled(from: stationList[id]) : stationList[id]
        return Self.station(id: id, key: key, info: known)
    }

    /// The common-model station for a CDC id and what is known about it.
    static func station(id: String, key: String, info: DWDStationInfo?) -> Station {
        var station = Station(key: key, name: info?.name, kind: "weather_station")
        if let info, let lat = info.latitude, let lon = info.longitude {
            station.location = GeoPoint(longitude: lon, latitude: lat, altitude: info.height)
        }
        var properties: [JSONValue.Member] = [.init("station_id", .string(id))]
        if let state = info?.state { properties.append(.init("state", .string(state))) }
        if let since = info?.since { properties.append(.init("location_since", .string(since))) }
        station.properties = .object(properties)
        return station
    }
}
