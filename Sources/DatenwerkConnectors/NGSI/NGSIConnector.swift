import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// FIWARE context brokers: NGSI-LD (`/ngsi-ld/v1/entities`) and NGSI v2 (`/v2/entities`), entities of the
/// Smart Data Models such as AirQualityObserved, WeatherObserved and TrafficFlowObserved.
///
/// Each attribute's shape is detected on its own: NGSI-LD normalized (`{"type":"Property","value":…}`,
/// `GeoProperty`, `Relationship` with `object`), NGSI v2 normalized (`{"type":"Number","value":…,"metadata":{…}}`)
/// or keyValues (the bare value). Units come from `unitCode` (UN/CEFACT common codes), else from the data
/// model's default. Pages by `limit`/`offset` until a page comes back short or the count is reached.
///
/// Station: the entity's `refDevice` / `refPointOfInterest` when it has one (observation entities often carry
/// the time in their id), else the entity id, as `<station_prefix>:<id>`. The prefix defaults to the PIPELINE
/// name: entity ids are unique only within one broker (two cities' brokers both hold `urn:ngsi-ld:Device:1`).
///
/// Attributes: those in `defaults` (Smart Data Models names → vocabulary, e.g. `LAeq` → `noise_level`, `co2` →
/// `co2_concentration`, `occupancy` (a fraction) → `occupancy` %, `averageHeadwayTime` → `headway`) and in
/// `properties` are read as values. Zero silent drops: every mapped attribute and every other attribute holding
/// a number (outside the entity's structure: id, type, location, address, dates, references, `laneId` …) is a
/// value read; a mapped one loads or is quarantined (or counted as `missing_value` when null), an unmapped
/// number is counted as `unmapped_property`. Text, boolean and object attributes that are not mapped describe the
/// entity and are not values.
struct NGSIConnector: ConfiguredConnector {
    let kind = "ngsi-ld"
    let summary = "FIWARE NGSI-LD or NGSI v2 context broker entities (AirQualityObserved, WeatherObserved, TrafficFlowObserved …), normalized or keyValues"

    /// The broker API.
    enum Flavor: String, ConfigChoice {
        case ld = "ngsi-ld", v2 = "ngsi-v2"
    }

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true, "the broker (https://broker:1026), or saved entities (files, `*` matches several)")
        static let flavor = DefaultedSetting("flavor", default: Flavor.ld, "the broker API")
        static let type = Setting<String>("type", "entity type(s) to read, e.g. AirQualityObserved (comma-separated for several)")
        static let keyValues = DefaultedSetting("key_values", default: false, "ask for keyValues (no unitCode: model defaults apply)")
        static let pageSize = DefaultedSetting("page_size", default: 100, "entities per page (limit); brokers cap it (Orion: 1000)")
        static let service = Setting<String>("service", "tenant header: NGSILD-Tenant (ngsi-ld) or Fiware-Service (ngsi-v2)")
        static let properties = Setting<[String: String]>("properties", "extra or different attribute → vocabulary key, e.g. {pm25: pm2_5_concentration}")
        static let timezone = DefaultedSetting.timezone(default: "UTC", "zone of dates written without an offset")
        static let stationPrefix = Setting<String>("station_prefix", "station keys are <station_prefix>:<entity id>; default: the pipeline name (entity ids are unique only per broker)")
        static let keys = [url.key, flavor.key, type.key, keyValues.key, pageSize.key, service.key, properties.key, timezone.key, stationPrefix.key]

        var url: String
        var flavor: Flavor
        var type: String?
        var keyValues: Bool
        var pageSize: Int
        var service: String?
        var properties: [String: String]
        var timezone: String
        var stationPrefix: String?

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            flavor = config[Self.flavor]
            type = config[Self.type]
            keyValues = config[Self.keyValues]
            pageSize = config[Self.pageSize]
            service = config[Self.service]
            properties = config[Self.properties] ?? [:]
            timezone = config[Self.timezone]
            stationPrefix = config[Self.stationPrefix]
        }
    }
    let sampleYAML = """
        version: 1
        name: heidelberg-parkhaeuser
        tenant: "08221000"
        schedule: "*/5 * * * *"
        source:
          kind: ngsi-ld
          # Heidelberg's urban data platform (FIWARE, NGSI v2); for an NGSI-LD broker use flavor: ngsi-ld
          url: https://api.datenplattform.heidelberg.de/ckan/or/mobility/main/offstreetparking
          flavor: ngsi-v2
          type: OffStreetParking
          page_size: 100
          properties:
            availableSpotNumber: parking_free_spaces
            totalSpotNumber: parking_capacity
        """

    /// Attribute → (property, unit when the entity gives no unitCode). `relativeHumidity` is a fraction 0…1.
    static let defaults: [String: (String, String)] = [
        "temperature": ("air_temperature", "Cel"),
        "relativeHumidity": ("relative_humidity", "fraction"),
        "atmosphericPressure": ("air_pressure", "hPa"),
        "windSpeed": ("wind_speed", "m/s"),
        "windDirection": ("wind_direction", "deg"),
        "precipitation": ("precipitation", "L/m2"),
        "no2": ("no2_concentration", "ug/m3"),
        "o3": ("o3_concentration", "ug/m3"),
        "pm10": ("pm10_concentration", "ug/m3"),
        "pm25": ("pm2_5_concentration", "ug/m3"),
        "pm1": ("pm1_concentration", "ug/m3"),
        "intensity": ("vehicle_count", "1"),
        "averageVehicleSpeed": ("average_speed", "km/h"),
        // Issue 12: attributes that were skipped for lack of vocabulary.
        "co": ("co_concentration", "ug/m3"),
        "so2": ("so2_concentration", "ug/m3"),
        "co2": ("co2_concentration", "ppm"),
        "LAeq": ("noise_level", "dB"),
        "dewPoint": ("dew_point_temperature", "Cel"),
        "gustSpeed": ("wind_gust_speed", "m/s"),
        "illuminance": ("illuminance", "lx"),
        "snowHeight": ("snow_depth", "cm"),
        "streamGauge": ("water_level", "cm"),
        "occupancy": ("occupancy", "fraction"),
        "averageHeadwayTime": ("headway", "s"),
        "availableSpotNumber": ("parking_free_spaces", "1"),
        "totalSpotNumber": ("parking_capacity", "1"),
        "availableCapacity": ("charging_points_available", "1"),
    ]

    /// Where an entity type gives a default attribute another meaning (Smart Data Models): the water quality and water
    /// models' `temperature` is the water's, a soil model's the soil's — never the air temperature. A pipeline's own
    /// `properties:` entry for the attribute still wins.
    static let byEntityType: [String: [String: String]] = [
        "WaterQualityObserved": ["temperature": "water_temperature"],
        "WaterObserved": ["temperature": "water_temperature"],
        "WaterQualityMeasurement": ["temperature": "water_temperature"],
        "SoilMeasurement": ["temperature": "soil_temperature"],
        "SoilObserved": ["temperature": "soil_temperature"],
    ]

    /// Attributes that place, name, date or link an entity: never values, even when they hold a number.
    static let structural: Set<String> = [
        "id", "type", "@context", "location", "address", "name", "description", "alternateName", "dateObserved", "dateObservedFrom",
        "dateObservedTo", "observationDateTime", "dateCreated", "dateModified", "refDevice", "refPointOfInterest", "lat", "lon", "source",
        "dataProvider", "areaServed", "seeAlso", "owner", "laneId",
    ]

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        for (name, key) in (config[C.properties] ?? [:]).sorted(by: { $0.key < $1.key }) where Vocabulary.property(key) == nil {
            let suggestion = closestMatch(to: key, in: Vocabulary.properties.map(\.key)).map { "; did you mean '\($0)'?" } ?? ""
            problems.append(ConfigProblem(key: C.properties.name, "'\(name)' maps to '\(key)', which is not in the vocabulary\(suggestion)"))
        }
        if config.has(C.pageSize), !(1...1000).contains(config[C.pageSize]) {
            problems.append(ConfigProblem(key: C.pageSize.name, "must be between 1 and 1000, not \(config[C.pageSize])"))
        }
        if config.has(C.timezone), (try? LocalTimeResolver(zone: config[C.timezone])) == nil {
            problems.append(ConfigProblem(key: C.timezone.name, "unknown time zone '\(config[C.timezone])' (e.g. Europe/Berlin)"))
        }
        if let prefix = config[C.stationPrefix], !StationPrefix.isValid(prefix) {
            problems.append(ConfigProblem(key: C.stationPrefix.name, StationPrefix.problem(prefix)))
        }
        if let url = config[C.url], SensorThingsConnector.isHTTP(url), !config.has(C.type) {
            problems.append(ConfigProblem(key: C.type.name, "a broker needs an entity type to list, e.g. type: AirQualityObserved"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let url = config.url
        let v2 = config.flavor == .v2
        var properties: [String: (String, String?)] = [:]
        for (attribute, (property, unit)) in Self.defaults { properties[attribute] = (property, unit) }
        for (attribute, property) in config.properties { properties[attribute] = (property, nil) }
        var mapping = try Mapping(properties: properties, zone: LocalTimeResolver(zone: config.timezone), stationPrefix: config.stationPrefix ?? context.pipeline)
        mapping.configured = Set(config.properties.keys)
        var headers: [(String, String)] = [("Accept", v2 ? "application/json" : "application/ld+json")]
        if let service = config.service { headers.append((v2 ? "Fiware-Service" : "NGSILD-Tenant", service)) }
        guard SensorThingsConnector.isHTTP(url) else {
            let requests = try expandLocation(url).map { PageRequest(location: $0, recordPath: "$", context: Paging?.none) }
            return PagedDocumentRun(requests, session: context.session, mapping: mapping)
        }
        var root = url
        while root.hasSuffix("/") { root.removeLast() }
        let paging = Paging(root: root + (v2 ? "/v2/entities" : "/ngsi-ld/v1/entities"), v2: v2, type: config.type ?? "",
                            keyValues: config.keyValues, limit: config.pageSize, offset: 0)
        return PagedDocumentRun([PageRequest(location: paging.url, recordPath: "$", context: paging)], session: context.session,
                                headers: headers, mapping: mapping)
    }

    /// Offset paging over a broker's entity list.
    struct Paging: Sendable {
        var root: String
        var v2: Bool
        var type: String
        var keyValues: Bool
        var limit: Int
        var offset: Int

        var url: String {
            var query = ["type=" + (type.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? type),
                         "limit=\(limit)", "offset=\(offset)"]
            if v2 {
                query.append(keyValues ? "options=keyValues,count" : "options=count")
            } else {
                query.append("count=true")
                if keyValues { query.append("options=keyValues") }
            }
            return root + "?" + query.joined(separator: "&")
        }
    }

    struct Mapping: PagedMapping {
        typealias Context = Paging?
        let properties: [String: (String, String?)]
        let zone: LocalTimeResolver
        let time: TimestampParser
        let stationPrefix: String
        var stations = StationTracker()
        var tally = ValueTally()
        /// Unit spelling → conversion into the property's canonical unit (resolved once).
        var conversions: [String: Units.Conversion] = [:]

        /// Attributes the pipeline's `properties:` names (they win over `byEntityType`).
        var configured: Set<String> = []

        init(properties: [String: (String, String?)], zone: LocalTimeResolver, stationPrefix: String) throws {
            self.properties = properties
            self.zone = zone
            self.stationPrefix = stationPrefix
            time = try TimestampParser(format: "iso8601", zone: zone)
        }

        func nextPage(after request: PageRequest<Paging?>, envelope: JSONValue, records: Int, headers: [(String, String)]) throws -> PageRequest<Paging?>? {
            guard var paging = request.context else { return nil }
            // Offset paging until a short page or the broker's stated total.
            var paginator = OffsetPaginator(limit: paging.limit, start: paging.offset, totalHeader: paging.v2 ? "Fiware-Total-Count" : "NGSILD-Results-Count")
            guard paginator.next(after: PageResult(url: paging.url, headers: headers, records: records)) != nil else { return nil }
            paging.offset = paginator.offset
            return PageRequest(location: paging.url, recordPath: "$", context: paging)
        }

        /// An attribute in any of the three shapes: its value, unit code and own observation time.
        struct Attribute {
            var value: JSONValue
            var unitCode: String?
            var observedAt: String?
        }

        static func attribute(_ raw: JSONValue) -> Attribute {
            guard case .object = raw, let type = raw["type"]?.stringValue, raw["value"] != nil || raw["object"] != nil else {
                return Attribute(value: raw)   // keyValues
            }
            if type == "Relationship" { return Attribute(value: raw["object"] ?? .null) }
            let metadata = raw["metadata"] ?? .null
            let unit = raw["unitCode"]?.stringValue ?? metadata["unitCode"]?["value"]?.stringValue
            let observedAt = raw["observedAt"]?.stringValue ?? metadata["timestamp"]?["value"]?.stringValue
            return Attribute(value: raw["value"] ?? .null, unitCode: unit, observedAt: observedAt)
        }

        /// A date as plain text or as a JSON-LD typed literal `{"@type":"DateTime","@value":"…"}`.
        static func dateText(_ value: JSONValue) -> String? {
            if let text = value.stringValue { return text }
            return value["@value"]?.stringValue
        }

        /// `start` or `start/end`.
        func interval(_ text: String) throws -> (Int64, Int64?) {
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let first = parts.first else { throw TimestampError(.mismatch, text: text, format: "iso8601", reason: "empty") }
            return (try time.parse(first), try parts.count == 2 ? time.parse(parts[1]) : nil)
        }

        /// Whether attribute `name` is a value this mapping reads (nil: not a value), counting the unmapped ones as
        /// skipped: a mapped attribute is a value; an unmapped one only when it holds a number.
        mutating func offer(_ name: String, _ raw: JSONValue) -> Bool? {
            guard !NGSIConnector.structural.contains(name) else { return nil }
            if let (property, _) = properties[name], Vocabulary.property(property) != nil { return true }
            guard Self.attribute(raw).value.numberValue != nil else { return nil }
            tally.readAndSkip(.unmappedProperty)
            return false
        }

        mutating func map(_ record: Record, context: Paging?, into items: inout [StagedItem], follow: inout [PageRequest<Paging?>]) -> [RecordError] {
            let at = record.location
            // The values this entity offers, counted before anything can fail (a failed entity stands for its mapped ones).
            var mapped: [Int] = []
            for (index, name) in record.fields.names.enumerated() where offer(name, record.values[index]) == true { mapped.append(index) }
            tally.read(mapped.count)
            guard let id = record["id"]?.stringValue, !id.isEmpty else { return [RecordError(at, field: "id", "entity without an id")] }
            let type = record["type"]?.stringValue ?? ""
            // Observation time: dateObservedFrom/To when given (the normalized TrafficFlowObserved keeps only the start in dateObserved).
            var problems: [RecordError] = []
            var entityTime: (Int64, Int64?)?
            do {
                let from = record["dateObservedFrom"].map(Self.attribute).flatMap { Self.dateText($0.value) }
                let to = record["dateObservedTo"].map(Self.attribute).flatMap { Self.dateText($0.value) }
                if let from, let to {
                    entityTime = (try time.parse(from), try time.parse(to))
                } else if let observed = record["dateObserved"].map(Self.attribute).flatMap({ Self.dateText($0.value) }) {
                    entityTime = try interval(observed)
                } else if let observed = record["observationDateTime"].map(Self.attribute).flatMap({ Self.dateText($0.value) }) {
                    // Some city platforms (Heidelberg) use observationDateTime instead.
                    entityTime = try interval(observed)
                }
            } catch {
                return [RecordError(at, field: "dateObserved", "\(error)")]
            }

            let reference = ["refDevice", "refPointOfInterest"].lazy.compactMap { record[$0].map(Self.attribute)?.value.stringValue }.first
            let key = "\(stationPrefix):\(reference ?? id)"
            stations.emit(key, into: &items) {
                var station = Station(key: key, name: nil, kind: type.isEmpty ? nil : type)
                var extra: [JSONValue.Member] = [.init("entity_type", .string(type))]
                if reference != nil { extra.append(.init("entity", .string(id))) }
                if let geometry = record["location"].map(Self.attribute)?.value {
                    station.location = Self.position(geometry)
                    if geometry["type"]?.stringValue != "Point", !geometry.isNull { extra.append(.init("geometry", geometry)) }
                } else if let lat = record["lat"].map(Self.attribute)?.value.number, let lon = record["lon"].map(Self.attribute)?.value.number,
                          (-90...90).contains(lat), (-180...180).contains(lon)
                {
                    // Separate lat/lon Number attributes instead of a GeoJSON location (Heidelberg).
                    station.location = GeoPoint(longitude: lon, latitude: lat)
                }
                if station.name == nil, let name = record["name"].map(Self.attribute)?.value.stringValue { station.name = name }
                if let address = record["address"].map(Self.attribute)?.value, case .object(let members) = address {
                    station.name = station.name ?? [address["streetAddress"]?.stringValue, address["addressLocality"]?.stringValue].compactMap { $0 }.joined(separator: ", ")
                    extra.append(.init("address", .object(members.filter { $0.key != "type" })))
                }
                if station.name?.isEmpty ?? true { station.name = reference ?? id }
                station.properties = .object(extra)
                return station
            }

            for index in mapped {
                let name = record.fields.names[index]
                guard var (property, defaultUnit) = properties[name] else { continue }
                if !configured.contains(name), let typed = NGSIConnector.byEntityType[type]?[name] { property = typed }
                guard let canonical = Vocabulary.property(property) else { continue }
                let attribute = Self.attribute(record.values[index])
                if attribute.value.isNull {
                    tally.skip(.missingValue)
                    continue
                }
                guard let number = attribute.value.numberValue else {
                    problems.append(RecordError(at, field: name, "\(attribute.value.serialized) is not a number"))
                    continue
                }
                var value = number
                let unit = attribute.unitCode ?? defaultUnit ?? canonical.unit
                if unit == "fraction" {
                    value *= 100   // relativeHumidity 0…1 → %
                } else {
                    do {
                        value = try conversion(unit, canonical.unit).apply(value)
                    } catch {
                        problems.append(RecordError(at, field: name, "\(error)"))
                        continue
                    }
                }
                var start: Int64, end: Int64?
                if let observedAt = attribute.observedAt {
                    do { (start, end) = try interval(observedAt) } catch {
                        problems.append(RecordError(at, field: "\(name).observedAt", "\(error)"))
                        continue
                    }
                } else if let entityTime {
                    (start, end) = entityTime
                } else {
                    problems.append(RecordError(at, field: "dateObserved", "no observation time (dateObserved, observationDateTime or observedAt)"))
                    break
                }
                items.append(.observation(Observation(stationKey: key, property: property, phenomenonStart: start, phenomenonEnd: end, result: value)))
            }
            return problems
        }

        private mutating func conversion(_ from: String, _ to: String) throws -> Units.Conversion {
            if let known = conversions[from] , known.to == Units.canonicalSymbol(to) { return known }
            let made = try Units.conversion(from: from, to: to)
            conversions[from] = made
            return made
        }

        /// A Point's position; for a LineString or Polygon the mean of its vertices (the geometry is kept in the properties).
        static func position(_ geometry: JSONValue) -> GeoPoint? {
            func pair(_ c: JSONValue) -> (Double, Double)? {
                guard let lon = c[0]?.numberValue, let lat = c[1]?.numberValue, (-180...180).contains(lon), (-90...90).contains(lat) else { return nil }
                return (lon, lat)
            }
            let coordinates = geometry["coordinates"] ?? .null
            switch geometry["type"]?.stringValue {
            case "Point":
                return pair(coordinates).map { GeoPoint(longitude: $0.0, latitude: $0.1) }
            case "LineString", "MultiPoint":
                guard case .array(let list) = coordinates else { return nil }
                let points = list.compactMap(pair)
                guard !points.isEmpty, points.count == list.count else { return nil }
                return GeoPoint(longitude: points.map(\.0).reduce(0, +) / Double(points.count),
                                latitude: points.map(\.1).reduce(0, +) / Double(points.count))
            default:
                return nil
            }
        }
    }
}
