import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms

/// DATEX II (v2 and v3) traffic measurements: a `MeasuredDataPublication` joined with its `MeasurementSiteTable`.
///
/// - **Stations.** `<station_prefix>:<site id>` — the prefix defaults to the PIPELINE name: a site id is unique
///   only within its publisher's tables (two regional publishers may both number `MQ_0001`); pipelines that read
///   several publications of one publisher set the same `station_prefix` to share stations. A value whose index
///   the site table describes belongs to the site itself, or to `<site id>/<lane>` when it is restricted to one
///   lane of a site with several lanes (`specificLane`, `measurementSiteNumberOfLanes`). A value whose index the
///   site table does not describe (no `sites`, or an index missing from it) cannot be placed on a lane or a
///   vehicle class: it goes to a channel station `<site id>/<index>`.
/// - **Values.** `TrafficSpeed` → `average_speed` (km/h); `TravelTimeData` → `travel_time` (s);
///   `TrafficConcentration` (`occupancy/percentage`) → `occupancy` (%); `TrafficHeadway`
///   (`averageTimeHeadway/duration`) → `headway` (s); `TrafficFlow` (`vehicleFlowRate`, vehicles per hour) →
///   `vehicle_count` over the measurement period (rate × period / 3600), so a flow value needs a period (site
///   table, `measurementOrCalculationPeriod`, or `period_seconds`). Other types are counted as `unmapped_property`.
/// - **Vehicle classes.** A value the site table restricts to a vehicle class (`specificVehicleCharacteristics`:
///   `lengthCharacteristic`, `vehicleType`) is never `vehicle_count` (a per-site sum would count those vehicles
///   twice): a heavy class — `vehicleType` lorry, articulatedVehicle, bus, tanker, a length class open upwards
///   from at least 7.5 m (NDW `> 12.2 m`, TLS lorries `> 7.5 m`), a gross weight class open upwards from at
///   least 3.5 t — gives a flow as `heavy_vehicle_count`; any other class (cars `< 5.6 m`, a bounded middle
///   class, height, axles, fuel …, a heavy-class speed) is skipped and counted as `vehicle_class`. `anyVehicle`
///   is no restriction.
/// - **Time.** `measurementTimeDefault` (or a value's own `measurementOrCalculationTime`; any offset, normalised
///   to UTC) is the END of the measurement period unless `time_reference: start` says it is the start. The v2
///   schema leaves this open ("the time associated with the set of measurements") and publishers differ. `end` is
///   the default because it is what Datenwerk always assumed (upgrading shifts no stored series) and because a
///   loop's aggregate exists only once its period is over; if `measurementTimeDefault` + period is later than the
///   `publicationTime`, the publisher cannot mean the start. Ask the publisher, and set `time_reference` per feed.
/// - A value with `dataError` = true, or a known sentinel (speed 255 km/h, flow 15300 veh/h = 255 per
///   minute) is discarded: it goes to quarantine with its XML and the `reasonForDataError`, never into
///   the data. The other values of the same site are kept.
/// - **Zero silent drops.** Every `measuredValue` of a record is counted: loaded, quarantined, or skipped as
///   `unmapped_property`, `vehicle_class` or `missing_value` (no value element).
/// - Elements are matched by local name (any prefix, default namespace, SOAP envelope).
struct DATEX2Connector: ConfiguredConnector {
    let kind = "datex2"
    let summary = "DATEX II (v2/v3) MeasuredDataPublication with its MeasurementSiteTable: vehicle counts, average speed, travel time"

    /// What a DATEX II measurement time marks.
    enum TimeReference: String, ConfigChoice {
        case end, start
    }

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true, "the MeasuredDataPublication (URL or files, `*` matches several)")
        static let sites = Setting<String>("sites", .location,
                                           "the MeasurementSiteTablePublication (site names, locations, lanes, periods); a SOAP envelope is fine")
        static let periodSeconds = Setting<Int>("period_seconds",
                                                "measurement period when neither the site table nor the value gives one (needed to turn flow rates into counts)")
        static let languages = DefaultedSetting("languages", default: ["de", "en"], "preferred languages for multilingual names, in order")
        static let timeReference = DefaultedSetting("time_reference", default: TimeReference.end,
                                                    "whether measurementTimeDefault (and measurementOrCalculationTime) is the start or the end of the measurement period; the v2 schema does not say, publishers differ")
        static let stationPrefix = Setting<String>("station_prefix", "station keys are <station_prefix>:<site id>; default: the pipeline name (site ids are unique only per publisher)")
        static let keys = [url.key, sites.key, periodSeconds.key, languages.key, timeReference.key, stationPrefix.key] + XMLLimitKeys.keys()

        var url: String
        var sites: String?
        var periodSeconds: Int?
        var languages: [String]
        var timeReference: TimeReference
        var stationPrefix: String?
        var limits: XMLDecoderOptions

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            sites = config[Self.sites]
            periodSeconds = config[Self.periodSeconds]
            languages = config[Self.languages]
            timeReference = config[Self.timeReference]
            stationPrefix = config[Self.stationPrefix]
            limits = XMLLimitKeys.options(config)
        }
    }
    let sampleYAML = """
        version: 1
        name: ndw-traffic-speed
        tenant: "00000000"
        schedule: "* * * * *"
        source:
          kind: datex2
          # NDW open data (CC0): one-minute flows and speeds of all Dutch loops, gzip, DATEX II v2 in a SOAP envelope.
          url: https://opendata.ndw.nu/trafficspeed.xml.gz
          sites: https://opendata.ndw.nu/measurement.xml.gz
          languages: [nl, en]
          # Is measurementTimeDefault the start or the end of the measurement period? The schema does not say: ask the publisher.
          time_reference: end
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        var problems = XMLLimitKeys.check(config)
        if let period = config[Configuration.periodSeconds], period <= 0 {
            problems.append(ConfigProblem(key: Configuration.periodSeconds.name, "must be a positive number of seconds, got \(period)"))
        }
        if let prefix = config[Configuration.stationPrefix], !StationPrefix.isValid(prefix) {
            problems.append(ConfigProblem(key: Configuration.stationPrefix.name, StationPrefix.problem(prefix)))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let mapping = try Mapping(periodSeconds: config.periodSeconds, languages: config.languages, timeReference: config.timeReference,
                                  stationPrefix: config.stationPrefix ?? context.pipeline)
        return XMLDocumentRun(
            references: try config.sites.map(expandLocation) ?? [],
            locations: try expandLocation(config.url), session: context.session, mapping: mapping, limits: config.limits)
    }

    /// What the site table says about one site.
    struct Site {
        var name: String?
        var location: GeoPoint?
        var equipment: String?
        var lanes: Int?
        /// By `index`.
        var channels: [String: Channel] = [:]
    }

    struct Channel {
        var period: Double?
        var lane: String?
        var valueType: String?
        /// The vehicle restriction as text (station property), nil for none.
        var vehicle: String?
        var vehicleClass: VehicleClass = .all
    }

    /// What vehicles a channel counts.
    enum VehicleClass: Equatable {
        /// No restriction (or `anyVehicle`).
        case all
        /// Lorries, buses: a flow is `heavy_vehicle_count`.
        case heavy
        /// Any other restriction (cars, a bounded length class): no vocabulary property.
        case other

        /// Heavy vehicle types of the DATEX II `VehicleTypeEnum`.
        static let heavyTypes: Set<String> = ["lorry", "articulatedVehicle", "bus", "tanker", "heavyLorry", "heavyGoodsVehicle", "heavyVehicle"]
        /// A length class open upwards from at least this many metres is heavy traffic (TLS: lorries > 7.5 m).
        static let heavyLength = 7.5

        /// A weight class open upwards from at least this many tonnes is heavy traffic (German "Schwerverkehr": > 3.5 t).
        static let heavyWeight = 3.5

        static func of(_ vehicle: XMLNode) -> VehicleClass {
            let types = vehicle.children("vehicleType").map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { $0 != "anyVehicle" }
            // Any other restriction (height, axles, fuel, usage …) is a class without a property.
            if vehicle.children.contains(where: { !["vehicleType", "lengthCharacteristic", "grossWeightCharacteristic"].contains($0.name) }) { return .other }
            /// The open-upward lower bound of `characteristic`/`element` comparisons, or `.other` for a bounded or unreadable class.
            func bounds(_ characteristic: String, _ element: String) -> (lower: Double?, upper: Double?)? {
                var lower: Double?, upper: Double?
                for c in vehicle.children(characteristic) {
                    guard let limit = c.text(element).flatMap(Double.init) else { return nil }
                    switch c.text("comparisonOperator") ?? "" {
                    case "greaterThan", "greaterThanOrEqualTo": lower = max(lower ?? limit, limit)
                    case "lessThan", "lessThanOrEqualTo": upper = min(upper ?? limit, limit)
                    default: return nil
                    }
                }
                return (lower, upper)
            }
            guard let length = bounds("lengthCharacteristic", "vehicleLength"), let weight = bounds("grossWeightCharacteristic", "grossVehicleWeight") else { return .other }
            let lengthRestricted = length.lower != nil || length.upper != nil
            let weightRestricted = weight.lower != nil || weight.upper != nil
            if types.isEmpty && !lengthRestricted && !weightRestricted { return .all }
            if !types.isEmpty, !types.allSatisfy(heavyTypes.contains) { return .other }
            if lengthRestricted, !(length.upper == nil && (length.lower ?? 0) >= heavyLength) { return .other }
            if weightRestricted, !(weight.upper == nil && (weight.lower ?? 0) >= heavyWeight) { return .other }
            return .heavy
        }
    }

    /// The value kinds that map into the vocabulary: xsi:type → (element, value element, property).
    static let valueKinds: [String: (container: String, value: String, property: String)] = [
        "TrafficSpeed": ("averageVehicleSpeed", "speed", "average_speed"),
        "TrafficFlow": ("vehicleFlow", "vehicleFlowRate", "vehicle_count"),
        "TravelTimeData": ("travelTime", "duration", "travel_time"),
        "TrafficConcentration": ("occupancy", "percentage", "occupancy"),
        "TrafficHeadway": ("averageTimeHeadway", "duration", "headway"),
    ]

    /// Values that loop stations send instead of a measurement (255 is an all-ones byte).
    static let sentinels: [String: Double] = ["speed": 255, "vehicleFlowRate": 15300]

    struct Mapping: XMLRecordMapping {
        let recordElements: Set<String> = ["siteMeasurements"]
        let referenceElements: Set<String> = ["measurementSiteRecord"]
        let periodSeconds: Int?
        let languages: [String]
        let timeReference: TimeReference
        let stationPrefix: String
        let time: TimestampParser
        var sites: [String: Site] = [:]
        var stations = StationTracker()
        var tally = ValueTally()

        init(periodSeconds: Int?, languages: [String], timeReference: TimeReference = .end, stationPrefix: String) throws {
            self.periodSeconds = periodSeconds
            self.languages = languages
            self.timeReference = timeReference
            self.stationPrefix = stationPrefix
            time = try TimestampParser(format: "iso8601", zone: .utc)
        }

        mutating func reference(_ document: XMLDocument) throws {
            for record in document.records {
                let node = record.node
                guard let id = node.attributes["id"] else { continue }
                var site = Site()
                site.name = node.child("measurementSiteName")?.localizedText(languages)
                site.equipment = node.text("measurementEquipmentReference")
                site.lanes = node.text("measurementSiteNumberOfLanes").flatMap { Int($0) }
                if let point = node.descendant("pointCoordinates") ?? node.descendant("locationForDisplay"),
                   let lat = point.text("latitude").flatMap(Double.init), let lon = point.text("longitude").flatMap(Double.init)
                {
                    site.location = GeoPoint(longitude: lon, latitude: lat)
                }
                for outer in node.children("measurementSpecificCharacteristics") {
                    guard let index = outer.attributes["index"] else { continue }
                    let c = outer.child("measurementSpecificCharacteristics") ?? outer
                    var channel = Channel(period: c.text("period").flatMap(Double.init), lane: c.text("specificLane"), valueType: c.text("specificMeasurementValueType"))
                    if let vehicle = c.child("specificVehicleCharacteristics") {
                        var parts: [String] = []
                        if let type = vehicle.text("vehicleType") { parts.append(type) }
                        for length in vehicle.children("lengthCharacteristic") {
                            parts.append("length \(length.text("comparisonOperator") ?? "?") \(length.text("vehicleLength") ?? "?") m")
                        }
                        channel.vehicle = parts.isEmpty ? nil : parts.joined(separator: ", ")
                        channel.vehicleClass = VehicleClass.of(vehicle)
                    }
                    site.channels[index] = channel
                }
                sites[id] = site
            }
        }

        mutating func map(_ record: XMLRecord, into items: inout [StagedItem]) -> [RecordError] {
            let node = record.node
            let at = record.location
            let measured = node.children.filter { $0.name == "measuredValue" || $0.name == "physicalQuantity" }
            // Each measured value is a value offered, whatever becomes of it (a record that fails as a whole stands for all).
            tally.read(measured.count)
            guard let siteID = node.child("measurementSiteReference")?.attributes["id"], !siteID.isEmpty else {
                return [RecordError(at, field: "measurementSiteReference.id", "missing site reference")]
            }
            let defaultTime: Int64?
            if let text = node.text("measurementTimeDefault") {
                do { defaultTime = try time.parse(text) } catch { return [RecordError(at, field: "measurementTimeDefault", "\(error)")] }
            } else {
                defaultTime = nil
            }
            let site = sites[siteID]
            var problems: [RecordError] = []
            for outer in measured {
                let index = outer.attributes["index"] ?? "?"
                let field = "\(outer.name)[index=\(index)]"
                guard let basic = outer.child("measuredValue")?.child("basicData") ?? outer.child("basicData") else {
                    tally.skip(.missingValue)
                    continue
                }
                guard let type = basic.typeName, let kind = DATEX2Connector.valueKinds[type] else {
                    tally.skip(.unmappedProperty)
                    continue
                }
                guard let container = basic.child(kind.container) else {
                    tally.skip(.missingValue)
                    continue
                }
                let valueField = "\(field).\(kind.container).\(kind.value)"
                func quarantine(_ reason: String) {
                    items.append(.quarantined(QuarantinedRecord(error: RecordError(at, field: valueField, reason), raw: outer.xml)))
                }
                let text = container.text(kind.value) ?? container.descendant(kind.value).flatMap { $0.text.isEmpty ? nil : $0.text.trimmingCharacters(in: .whitespaces) }
                if container.text("dataError") == "true" {
                    let reason = container.child("reasonForDataError")?.localizedText(languages + ["en"]) ?? "no reason given"
                    quarantine("dataError = true (\(reason)); value \(text ?? "(none)") discarded")
                    continue
                }
                guard let text else {
                    problems.append(RecordError(at, field: valueField, "missing \(kind.value)"))
                    continue
                }
                guard let value = Double(text) else {
                    quarantine("'\(text)' is not a number")
                    continue
                }
                if let sentinel = DATEX2Connector.sentinels[kind.value], value == sentinel {
                    quarantine("\(JSONValue.format(value)) is the sensor's sentinel for 'no value'; discarded")
                    continue
                }
                let channel = site?.channels[index]
                // A value restricted to a vehicle class is never the all-vehicles property.
                var property = kind.property
                switch channel?.vehicleClass ?? .all {
                case .all: break
                case .heavy where kind.property == "vehicle_count": property = "heavy_vehicle_count"
                case .heavy, .other:
                    tally.skip(.vehicleClass)
                    continue
                }
                let stamp: Int64
                if let own = basic.text("measurementOrCalculationTime") {
                    do { stamp = try time.parse(own) } catch {
                        quarantine("measurementOrCalculationTime: \(error)")
                        continue
                    }
                } else if let defaultTime {
                    stamp = defaultTime
                } else {
                    problems.append(RecordError(at, field: "measurementTimeDefault", "missing measurement time"))
                    continue
                }
                let period = basic.text("measurementOrCalculationPeriod").flatMap(Double.init) ?? channel?.period ?? periodSeconds.map(Double.init)
                var result = value
                if kind.property == "vehicle_count" {
                    guard let period, period > 0 else {
                        quarantine("a flow rate (\(text) vehicles/h) needs a measurement period, and neither the site table (index \(index)) nor 'period_seconds' gives one")
                        continue
                    }
                    result = value * period / 3600
                }
                let key = stationKey(siteID, site: site, channel: channel, index: index)
                stations.emit(key, into: &items) {
                    var station = Station(key: key, name: site?.name ?? siteID, kind: "traffic_counter", location: site?.location)
                    var properties: [JSONValue.Member] = [.init("site_id", .string(siteID))]
                    if let channel {
                        if let lane = channel.lane, key.hasSuffix("/" + lane) {
                            station.name = "\(station.name ?? siteID) \(lane)"
                            properties.append(.init("lane", .string(lane)))
                        }
                    } else {
                        // A channel the site table does not describe: what it measures is known only by its index.
                        station.name = "\(station.name ?? siteID) #\(index)"
                        properties.append(.init("index", .string(index)))
                        properties.append(.init("measurement", .string(type)))
                        if let period { properties.append(.init("period_s", .number(period))) }
                    }
                    if let lanes = site?.lanes { properties.append(.init("lanes", .number(Double(lanes)))) }
                    if let equipment = site?.equipment { properties.append(.init("equipment", .string(equipment))) }
                    station.properties = .object(properties)
                    return station
                }
                let span = period.map { Int64($0 * 1_000_000) }
                let start: Int64, end: Int64?
                switch timeReference {
                case .end: (start, end) = span.map { (stamp - $0, stamp) } ?? (stamp, nil)
                case .start: (start, end) = (stamp, span.map { stamp + $0 })
                }
                items.append(.observation(Observation(stationKey: key, property: property, phenomenonStart: start, phenomenonEnd: end, result: result)))
            }
            return problems
        }

        /// The site itself; one of its lanes when the value is restricted to a lane of a site with several; a
        /// channel `<site>/<index>` when the site table does not describe the index.
        func stationKey(_ siteID: String, site: Site?, channel: Channel?, index: String) -> String {
            guard let channel else { return "\(stationPrefix):\(siteID)/\(index)" }
            if let lane = channel.lane, site?.lanes != 1 { return "\(stationPrefix):\(siteID)/\(lane)" }
            return "\(stationPrefix):\(siteID)"
        }
    }
}
