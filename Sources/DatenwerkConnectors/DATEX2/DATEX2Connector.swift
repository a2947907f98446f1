import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms

/// DATEX II (v2 and v3) traffic measurements: a `MeasuredDataPublication` joined with its `MeasurementSiteTable`.
///
/// - One station per measurement *channel*, `datex2:<site id>/<index>`: a site reports several values of one
///   kind (flow per lane and vehicle class at index 3, 4, 5, 6 …), and only the `index` into the site
///   table's `measurementSpecificCharacteristics` tells them apart. The station carries site id, index, and,
///   when the site table is given, the site name, location, lane, vehicle class and period.
/// - `TrafficSpeed` → `average_speed` (km/h); `TravelTimeData` → `travel_time` (s); `TrafficFlow`
///   (`vehicleFlowRate`, vehicles per hour) → `vehicle_count` over the measurement period
///   (rate × period / 3600), so a flow value needs a period (site table, `measurementOrCalculationPeriod`,
///   or `period_seconds`). Headway, occupancy and other types are outside the vocabulary and skipped.
/// - `measurementTimeDefault` (any offset, normalised to UTC) is taken as the END of the period.
/// - A value with `dataError` = true, or a known sentinel (speed 255 km/h, flow 15300 veh/h = 255 per
///   minute) is discarded: it goes to quarantine with its XML and the `reasonForDataError`, never into
///   the data. The other values of the same site are kept.
/// - Elements are matched by local name (any prefix, default namespace, SOAP envelope).
struct DATEX2Connector: ConfiguredConnector {
    let kind = "datex2"
    let summary = "DATEX II (v2/v3) MeasuredDataPublication with its MeasurementSiteTable: vehicle counts, average speed, travel time"

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true, "the MeasuredDataPublication (URL or files, `*` matches several)")
        static let sites = Setting<String>("sites", .location,
                                           "the MeasurementSiteTablePublication (site names, locations, lanes, periods); a SOAP envelope is fine")
        static let periodSeconds = Setting<Int>("period_seconds",
                                                "measurement period when neither the site table nor the value gives one (needed to turn flow rates into counts)")
        static let languages = DefaultedSetting("languages", default: ["de", "en"], "preferred languages for multilingual names, in order")
        static let keys = [url.key, sites.key, periodSeconds.key, languages.key] + XMLLimitKeys.keys()

        var url: String
        var sites: String?
        var periodSeconds: Int?
        var languages: [String]
        var limits: XMLDecoderOptions

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            sites = config[Self.sites]
            periodSeconds = config[Self.periodSeconds]
            languages = config[Self.languages]
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
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        var problems = XMLLimitKeys.check(config)
        if let period = config[Configuration.periodSeconds], period <= 0 {
            problems.append(ConfigProblem(key: Configuration.periodSeconds.name, "must be a positive number of seconds, got \(period)"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let mapping = try Mapping(periodSeconds: config.periodSeconds, languages: config.languages)
        return XMLDocumentRun(
            references: try config.sites.map(expandLocation) ?? [],
            locations: try expandLocation(config.url), session: context.session, mapping: mapping, limits: config.limits)
    }

    /// What the site table says about one site.
    struct Site {
        var name: String?
        var location: GeoPoint?
        var equipment: String?
        /// By `index`.
        var channels: [String: Channel] = [:]
    }

    struct Channel {
        var period: Double?
        var lane: String?
        var valueType: String?
        var vehicle: String?
    }

    /// The value kinds that map into the vocabulary: xsi:type → (element, value element, property).
    static let valueKinds: [String: (container: String, value: String, property: String)] = [
        "TrafficSpeed": ("averageVehicleSpeed", "speed", "average_speed"),
        "TrafficFlow": ("vehicleFlow", "vehicleFlowRate", "vehicle_count"),
        "TravelTimeData": ("travelTime", "duration", "travel_time"),
    ]

    /// Values that loop stations send instead of a measurement (255 is an all-ones byte).
    static let sentinels: [String: Double] = ["speed": 255, "vehicleFlowRate": 15300]

    struct Mapping: XMLRecordMapping {
        let recordElements: Set<String> = ["siteMeasurements"]
        let referenceElements: Set<String> = ["measurementSiteRecord"]
        let periodSeconds: Int?
        let languages: [String]
        let time: TimestampParser
        var sites: [String: Site] = [:]
        var stations = StationTracker()

        init(periodSeconds: Int?, languages: [String]) throws {
            self.periodSeconds = periodSeconds
            self.languages = languages
            time = try TimestampParser(format: "iso8601", zone: .utc)
        }

        mutating func reference(_ document: XMLDocument) throws {
            for record in document.records {
                let node = record.node
                guard let id = node.attributes["id"] else { continue }
                var site = Site()
                site.name = node.child("measurementSiteName")?.localizedText(languages)
                site.equipment = node.text("measurementEquipmentReference")
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
                    }
                    site.channels[index] = channel
                }
                sites[id] = site
            }
        }

        mutating func map(_ record: XMLRecord, into items: inout [StagedItem]) -> [RecordError] {
            let node = record.node
            let at = record.location
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
            for outer in node.children.filter({ $0.name == "measuredValue" || $0.name == "physicalQuantity" }) {
                let index = outer.attributes["index"] ?? "?"
                let field = "\(outer.name)[index=\(index)]"
                guard let basic = outer.child("measuredValue")?.child("basicData") ?? outer.child("basicData") else { continue }
                guard let type = basic.typeName, let kind = DATEX2Connector.valueKinds[type] else { continue }
                guard let container = basic.child(kind.container) else { continue }
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
                let end: Int64
                if let own = basic.text("measurementOrCalculationTime") {
                    do { end = try time.parse(own) } catch {
                        quarantine("measurementOrCalculationTime: \(error)")
                        continue
                    }
                } else if let defaultTime {
                    end = defaultTime
                } else {
                    problems.append(RecordError(at, field: "measurementTimeDefault", "missing measurement time"))
                    continue
                }
                let channel = site?.channels[index]
                let period = basic.text("measurementOrCalculationPeriod").flatMap(Double.init) ?? channel?.period ?? periodSeconds.map(Double.init)
                var result = value
                if kind.property == "vehicle_count" {
                    guard let period, period > 0 else {
                        quarantine("a flow rate (\(text) vehicles/h) needs a measurement period, and neither the site table (index \(index)) nor 'period_seconds' gives one")
                        continue
                    }
                    result = value * period / 3600
                }
                let key = "datex2:\(siteID)/\(index)"
                stations.emit(key, into: &items) {
                    var station = Station(key: key, name: "\(site?.name ?? siteID) #\(index)", kind: "traffic_counter", location: site?.location)
                    var properties: [JSONValue.Member] = [.init("site_id", .string(siteID)), .init("index", .string(index)), .init("measurement", .string(type))]
                    if let lane = channel?.lane { properties.append(.init("lane", .string(lane))) }
                    if let vehicle = channel?.vehicle { properties.append(.init("vehicle", .string(vehicle))) }
                    if let period { properties.append(.init("period_s", .number(period))) }
                    if let equipment = site?.equipment { properties.append(.init("equipment", .string(equipment))) }
                    station.properties = .object(properties)
                    return station
                }
                let start = period.map { end - Int64($0 * 1_000_000) }
                items.append(.observation(Observation(stationKey: key, property: kind.property, phenomenonStart: start ?? end, phenomenonEnd: start == nil ? nil : end, result: result)))
            }
            return problems
        }
    }
}
