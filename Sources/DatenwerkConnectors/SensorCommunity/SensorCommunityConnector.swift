import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms

/// Sensor.Community (luftdaten.info): the live `data.json` API and the daily archive CSVs.
///
/// One station per sensor (`sensor-community:<sensor id>`, the location id in its properties), so two
/// sensors at one location that both measure temperature never collide on the natural key.
/// `P1` is PM10 and `P2` is PM2.5; pressures come in Pa; all values are strings; times are UTC.
struct SensorCommunityConnector: ConfiguredConnector {
    let kind = "sensor-community"
    let summary = "Sensor.Community (luftdaten.info) live JSON API or daily archive CSV: PM10, PM2.5, PM1, temperature, humidity, pressure, noise (LAeq)"

    struct Configuration: ConnectorConfiguration {
        enum Format: String, ConfigChoice { case apiJSON = "api-json", archiveCSV = "archive-csv" }

        static let url = DefaultedSetting("url", .location, default: "https://data.sensor.community/static/v2/data.json",
                                          "the API URL, an archive CSV URL, or local files (`*` matches several)")
        static let format = Setting<Format>("format", "api-json for data.json, archive-csv for archive files; default: by the file ending")
        static let sensorTypes = Setting<[String]>("sensor_types", "only these sensor types (e.g. [SDS011, BME280]); default: all")
        static let keys = [url.key, format.key, sensorTypes.key]

        var url: String
        /// `format`, else archive CSV when the URL ends in `.csv`.
        var archive: Bool
        var sensorTypes: Set<String>?

        init(_ config: ConnectorConfig) {
            url = config[Self.url]
            archive = config[Self.format].map { $0 == .archiveCSV } ?? url.lowercased().hasSuffix(".csv")
            sensorTypes = config[Self.sensorTypes].map(Set.init)
        }
    }
    let sampleYAML = """
        version: 1
        name: sensor-community-muenster
        tenant: "05515000"
        schedule: "*/5 * * * *"
        source:
          kind: sensor-community
          # The live API (all sensors worldwide, ~5 min averages); a box filter URL works too:
          # https://data.sensor.community/airrohr/v1/filter/box=52.0,7.5,51.9,7.7
          url: https://data.sensor.community/static/v2/data.json
          sensor_types: [SDS011, BME280, DHT22]
        """

    /// value_type → (property, unit)
    static let valueTypes: [String: (String, String)] = [
        "P1": ("pm10_concentration", "ug/m3"),
        "P2": ("pm2_5_concentration", "ug/m3"),
        "P0": ("pm1_concentration", "ug/m3"),
        "temperature": ("air_temperature", "Cel"),
        "humidity": ("relative_humidity", "%"),
        "pressure": ("air_pressure", "Pa"),
        // DNMS noise sensors: the A-weighted equivalent level of the interval (dB(A)); `noise_LA_min` and
        // `noise_LA_max` are counted as unmapped_property.
        "noise_LAeq": ("noise_level", "dB"),
    ]

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let csv = config.archive
        let mapping = try Mapping(archive: csv, sensorTypes: config.sensorTypes)
        return DocumentRun(locations: try expandLocation(config.url), session: context.session, decoder: { origin in
            if csv {
                var options = CSVOptions()
                options.delimiter = UInt8(ascii: ";")
                return .csv(CSVDecoder(options: options, origin: origin))
            }
            return .json(StreamingJSONDecoder(options: JSONDecoderOptions(), origin: origin))
        }, mapping: mapping)
    }

    struct Mapping: RecordMapping {
        let archive: Bool
        let sensorTypes: Set<String>?
        let apiTime: TimestampParser
        let archiveTime: TimestampParser
        let conversions: [String: (String, Units.Conversion)]
        var stations = StationTracker()
        var tally: ValueTally? = ValueTally()

        /// Archive CSV columns that describe the measurement rather than hold a value.
        static let archiveKeys: Set<String> = ["sensor_id", "sensor_type", "location", "lat", "lon", "timestamp"]

        init(archive: Bool, sensorTypes: Set<String>?) throws {
            self.archive = archive
            self.sensorTypes = sensorTypes
            apiTime = try TimestampParser(format: "yyyy-MM-dd HH:mm:ss", zone: .utc)
            archiveTime = try TimestampParser(format: "iso8601", zone: .utc)
            var conversions: [String: (String, Units.Conversion)] = [:]
            for (type, (property, unit)) in SensorCommunityConnector.valueTypes {
                conversions[type] = (property, try Units.conversion(from: unit, to: Vocabulary.property(property)!.unit))
            }
            self.conversions = conversions
        }

        /// Accounting: each entry of `sensordatavalues` (API) or each column after `timestamp` (archive) is one
        /// value. Value types outside the vocabulary (`noise_LA_max`, `pressure_at_sealevel`, `durP1` …) are
        /// `unmapped_property`, empty archive cells `missing_value`, sensors not in `sensor_types` `filtered`.
        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            archive ? mapArchive(record, &items) : mapAPI(record, &items)
        }

        private mutating func mapAPI(_ r: Record, _ items: inout [StagedItem]) -> [RecordError] {
            let at = r.location
            var offered = 0
            if case .array(let entries) = r["sensordatavalues"] ?? .null { offered = entries.count }
            tally?.read(offered)
            guard let sensor = r["sensor.id"]?.text, !sensor.isEmpty else { return [RecordError(at, field: "sensor.id", "missing sensor id")] }
            let type = r["sensor.sensor_type.name"]?.text ?? ""
            if let sensorTypes, !sensorTypes.contains(type) {
                tally?.skip(.filtered, offered)
                return []
            }
            let time: Int64
            do { time = try apiTime.parse(r["timestamp"]?.text ?? "") } catch { return [RecordError(at, field: "timestamp", "\(error)")] }
            let location = r["location"] ?? .null
            let key = "sensor-community:\(sensor)"
            var problems: [RecordError] = []
            stations.emit(key, into: &items) {
                var station = Station(key: key, name: "\(type) \(sensor)", kind: "air_quality_sensor")
                if let lat = location["latitude"]?.number, let lon = location["longitude"]?.number {
                    station.location = GeoPoint(longitude: lon, latitude: lat, altitude: location["altitude"]?.number)
                }
                var properties: [JSONValue.Member] = [.init("sensor_type", .string(type))]
                if let id = location["id"] { properties.append(.init("location_id", .string(id.text))) }
                for name in ["country", "indoor", "exact_location"] { if let v = location[name] { properties.append(.init(name, v)) } }
                if let m = r["sensor.sensor_type.manufacturer"] { properties.append(.init("manufacturer", m)) }
                station.properties = .object(properties)
                return station
            }
            guard case .array(let values) = r["sensordatavalues"] ?? .null else {
                return [RecordError(at, field: "sensordatavalues", "missing or not a list")]
            }
            for (index, entry) in values.enumerated() {
                let valueType = entry["value_type"]?.text ?? ""
                guard let (property, conversion) = conversions[valueType] else {
                    tally?.skip(.unmappedProperty)   // noise, pressure_at_sealevel …: not in the vocabulary
                    continue
                }
                guard let value = entry["value"]?.number else {
                    problems.append(RecordError(at, field: "sensordatavalues.\(index).value", "'\(entry["value"]?.text ?? "")' is not a number (\(valueType))"))
                    continue
                }
                items.append(.observation(Observation(stationKey: key, property: property, phenomenonStart: time, result: conversion.apply(value))))
            }
            return problems
        }

        private mutating func mapArchive(_ r: Record, _ items: inout [StagedItem]) -> [RecordError] {
            let at = r.location
            let valueColumns = r.fields.names.filter { !Self.archiveKeys.contains($0) }
            tally?.read(valueColumns.count)
            guard let sensor = r["sensor_id"]?.text, !sensor.isEmpty else { return [RecordError(at, field: "sensor_id", "missing sensor id")] }
            let type = r["sensor_type"]?.text ?? ""
            if let sensorTypes, !sensorTypes.contains(type) {
                tally?.skip(.filtered, valueColumns.count)
                return []
            }
            let time: Int64
            do { time = try archiveTime.parse(r["timestamp"]?.text ?? "") } catch { return [RecordError(at, field: "timestamp", "\(error)")] }
            let key = "sensor-community:\(sensor)"
            stations.emit(key, into: &items) {
                var station = Station(key: key, name: "\(type) \(sensor)", kind: "air_quality_sensor")
                if let lat = r["lat"]?.number, let lon = r["lon"]?.number { station.location = GeoPoint(longitude: lon, latitude: lat) }
                station.properties = .object([.init("sensor_type", .string(type)), .init("location_id", .string(r["location"]?.text ?? ""))])
                return station
            }
            var problems: [RecordError] = []
            for column in valueColumns where conversions[column] == nil {
                let cell = r[column]
                tally?.skip(cell == nil || cell!.isNull || cell!.text.isEmpty ? .missingValue : .unmappedProperty)
            }
            for (column, (property, conversion)) in conversions.sorted(by: { $0.key < $1.key }) where r.fields.position(of: column) != nil {
                guard let cell = r[column], !cell.isNull, !cell.text.isEmpty else {
                    tally?.skip(.missingValue)
                    continue
                }
                guard let value = cell.number else {
                    problems.append(RecordError(at, field: column, "'\(cell.text)' is not a number"))
                    continue
                }
                items.append(.observation(Observation(stationKey: key, property: property, phenomenonStart: time, result: conversion.apply(value))))
            }
            return problems
        }
    }
}
