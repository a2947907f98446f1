import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// The Things Stack v3 (The Things Network) uplinks: pushed by its webhook integration to
/// `POST /ingest/<pipeline>` on `datenwerk serve`, or read from captured messages (`url`) for replay and tests.
///
/// One station per end device, `<station_prefix>:<application id>:<device id>`: device ids are only unique within
/// their application, and application ids only on their The Things Stack cluster (a city's own TTS and the public
/// community network may both hold an application `klima`), so the key starts with the pipeline's name unless
/// `station_prefix` says otherwise. The device codec's `decoded_payload` is whatever the vendor chose: keys are
/// mixed-case and carry the unit in their name, values are numbers or strings. So nothing is guessed: `fields`
/// names the payload keys to keep and their property, `units` the unit of each key where it is not the property's
/// own. Gateway locations are never taken as the device's.
///
/// Value accounting: every `decoded_payload` key but the position fields is a value read; a key not in `fields`
/// is skipped as `unmapped_property`, a configured key that is null as `missing_value`; an uplink of an
/// application not in `applications` (captured files only; a push gets 403) is skipped as `filtered`; a message
/// kept in quarantine stands for the values it offered.
struct TTNConnector: PushConnector, ConfiguredConnector {
    let kind = "ttn"
    let summary = "The Things Stack v3 (TTN) uplink webhooks, pushed to `datenwerk serve` (token in a header) or read from captured messages"

    /// Which time of an uplink is the phenomenon time.
    enum TimeSource: String, ConfigChoice {
        case network, application, gateway
    }

    struct Configuration: ConnectorConfiguration {
        static let fields = Setting<[String: String]>("fields", required: true,
                                                      "decoded_payload key → property, e.g. {TempC_SHT: air_temperature, Hum_SHT: relative_humidity}")
        static let units = Setting<[String: String]>("units",
                                                     "decoded_payload key → UCUM unit of its values where it differs from the property's (e.g. {BatV: V, Pressure_Pa: Pa})")
        static let tokenEnv = DefaultedSetting("token_env", default: "DATENWERK_TTN_TOKEN",
                                               "the environment variable holding the webhook token; the webhook sends it as `Authorization: Bearer <token>` or `X-Datenwerk-Token`")
        static let applications = Setting<[String]>("applications", "accept uplinks of these application ids only (default: any)")
        static let time = DefaultedSetting("time", default: TimeSource.network,
                                           "phenomenon time: the network server's reception (uplink_message.received_at), the application server's (received_at), or the earliest gateway time")
        static let latitudeField = Setting<String>("latitude_field", "decoded_payload key with the device latitude (GPS trackers); otherwise uplink_message.locations is used")
        static let longitudeField = Setting<String>("longitude_field", "decoded_payload key with the device longitude")
        static let url = Setting<String>("url", .location, "captured uplink messages (one JSON object or an array per file, `*` matches several) for `datenwerk run`")
        static let stationPrefix = LoRaWANKeys.stationPrefix
        static let keys = [fields.key, units.key, tokenEnv.key, applications.key, time.key, latitudeField.key, longitudeField.key, stationPrefix.key, url.key]

        var fields: [String: String]
        var units: [String: String]
        var tokenEnv: String
        var applications: Set<String>?
        var time: TimeSource
        var latitudeField: String?
        var longitudeField: String?
        var url: String?
        var stationPrefix: String?

        init(_ config: ConnectorConfig) throws {
            fields = try config.required(Self.fields)
            units = config[Self.units] ?? [:]
            tokenEnv = config[Self.tokenEnv]
            applications = config[Self.applications].map(Set.init)
            time = config[Self.time]
            latitudeField = config[Self.latitudeField]
            longitudeField = config[Self.longitudeField]
            url = config[Self.url]
            stationPrefix = config[Self.stationPrefix]
        }
    }

    static let defaultTokenVariable = Configuration.tokenEnv.defaultValue
    let sampleYAML = """
        version: 1
        name: ttn-klima-emden
        tenant: "03402000"
        source:
          kind: ttn
          # The Things Stack → Integrations → Webhooks: base URL https://datenwerk.example.de/ingest/ttn-klima-emden,
          # enable "Uplink message", add the header  Authorization: Bearer <the value of DATENWERK_TTN_TOKEN>.
          token_env: DATENWERK_TTN_TOKEN
          applications: [klima-emden]
          fields:
            TempC_SHT: air_temperature
            Hum_SHT: relative_humidity
            BatV: battery_voltage
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        return PayloadFields.check(fields: config[C.fields] ?? [:], units: config[C.units] ?? [:], hasLatitude: config.has(C.latitudeField),
                                   hasLongitude: config.has(C.longitudeField), payload: "decoded_payload")
            + LoRaWANKeys.check(stationPrefix: config[C.stationPrefix])
    }

    func tokenVariable(_ config: ConnectorConfig) -> String { config[Configuration.tokenEnv] }

    /// The same checks and mapping a run applies, on this one body: a message is stored whole or not at all.
    func admit(_ body: [UInt8], config: ConnectorConfig, pipeline: String) -> PushAdmission {
        var mapping: TTNMapping
        do { mapping = try TTNMapping(Configuration(config), pipeline: pipeline) } catch { return .reject("the pipeline cannot map messages: \(error)") }
        return mapping.admission(body)
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        try TTNMapping(config, pipeline: context.pipeline).run(context: context, url: config.url, kind: kind, messages: "messages")
    }
}

enum TTNMessage {
    /// The Things Stack sends every message type to one webhook; the top-level key says which it is.
    static let types = [
        "uplink_message", "uplink_normalized", "join_accept", "downlink_ack", "downlink_nack", "downlink_sent", "downlink_failed",
        "downlink_queued", "downlink_queue_invalidated", "location_solved", "service_data",
    ]

    static func type(of message: JSONValue) -> String {
        types.first { message[$0] != nil } ?? "unknown"
    }
}


struct TTNMapping: PushMessageMapping {
    static let sender = "The Things Stack"
    let payload: PayloadFields
    let applications: Set<String>?
    let time: TTNConnector.TimeSource
    /// The first part of every station key: `station_prefix`, else the pipeline's name.
    let prefix: String
    /// Uplinks are live data: times from 1900 to a day ahead, WGS84 positions, ids short enough to index.
    let plausibility = Plausibility.live()
    var stations = StationTracker()
    var tally: ValueTally? = ValueTally()

    init(_ config: TTNConnector.Configuration, pipeline: String) throws {
        payload = try PayloadFields(fields: config.fields, units: config.units, latitudeField: config.latitudeField, longitudeField: config.longitudeField,
                                    path: "uplink_message.decoded_payload")
        applications = config.applications
        time = config.time
        prefix = config.stationPrefix ?? pipeline
    }

    func classify(_ r: Record) -> PushMessageKind {
        guard let device = r["end_device_ids.device_id"]?.text, !device.isEmpty else {
            return .reject(RecordError(r.location, field: "end_device_ids.device_id", "end_device_ids.device_id is missing: not a The Things Stack v3 message"))
        }
        let application = r["end_device_ids.application_ids.application_id"]?.text ?? ""
        if let applications, !applications.contains(application) {
            let shown = application.count > 64 ? String(application.prefix(64)) + "…" : application
            return .forbid("application '\(shown)' is not in this pipeline's applications (\(applications.sorted().joined(separator: ", ")))",
                           values: payload.offered(r["uplink_message.decoded_payload"]))
        }
        guard r["uplink_message"] != nil else {
            return .ignore("\(TTNMessage.type(of: r.asJSON)) messages carry no measurements")
        }
        return .measurement
    }

    /// Maps one uplink whole: when anything is wrong with it (a value, its time, its position, an id too long to
    /// store) nothing of it is staged and the problems are returned, so the message is kept whole in quarantine.
    mutating func mapMeasurement(_ r: Record, into items: inout [StagedItem]) -> [RecordError] {
        let at = r.location
        let device = r["end_device_ids.device_id"]?.text ?? ""
        let application = r["end_device_ids.application_ids.application_id"]?.text ?? ""
        guard let uplink = r["uplink_message"], case .object = uplink else {
            return [RecordError(at, field: "uplink_message", "is \(Self.describeKind(r["uplink_message"] ?? .null)), not an object: not an uplink message")]
        }
        let phenomenon: Int64
        switch timestamp(r, uplink) {
        case .success(let (t, field)):
            if let problem = plausibility.check(time: t) { return [RecordError(at, field: field, problem.reason)] }
            phenomenon = t
        case .failure(var error):
            error.location = at
            return [error]
        }
        let key = "\(prefix):\(application):\(device)"
        let decoded = uplink["decoded_payload"]
        var station = Station(key: key, name: device, kind: "lorawan_device")
        var positionField = ""
        if let found = location(decoded, uplink) {
            station.location = found.0
            positionField = found.1
        }
        if let problem = plausibility.check(station) {
            let field: String = switch problem.part {
            case .longitude, .latitude, .altitude: positionField.isEmpty ? problem.part.rawValue : positionField + "." + problem.part.rawValue
            case .stationKey where device.utf8.count < application.utf8.count: "end_device_ids.application_ids.application_id"
            default: "end_device_ids.device_id"
            }
            return [RecordError(at, field: field, problem.reason)]
        }
        guard let decoded, case .object(let members) = decoded else {
            var detail = "no codec is configured for the device, or it failed"
            for name in ["decoded_payload_warnings", "errors"] {
                if case .array(let list) = uplink[name] ?? .null, !list.isEmpty {
                    detail += "; \(name): " + list.map(\.text).joined(separator: ", ")
                }
            }
            return [RecordError(at, field: "uplink_message.decoded_payload", "missing (\(detail)); the message is kept with its frm_payload")]
        }
        let quality: String? = r["simulated"] == .bool(true) ? "simulated" : nil
        let (observations, problems) = payload.observations(members, station: key, time: phenomenon, quality: quality, plausibility: plausibility,
                                                            at: at, tally: &tally)
        guard problems.isEmpty else { return problems }
        stations.emit(key, into: &items) {
            var properties: [JSONValue.Member] = [.init("application_id", .string(application))]
            for (name, path) in [("dev_eui", "end_device_ids.dev_eui"), ("join_eui", "end_device_ids.join_eui")] {
                if let v = r[path]?.text { properties.append(.init(name, .string(String(v.prefix(64))))) }
            }
            for name in ["brand_id", "model_id", "firmware_version", "band_id"] {
                if let v = uplink["version_ids"]?[name]?.text { properties.append(.init(name, .string(String(v.prefix(200))))) }
            }
            station.properties = .object(properties)
            return station
        }
        items += observations.map(StagedItem.observation)
        return []
    }

    static func describeKind(_ value: JSONValue) -> String {
        switch value {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
    }

    private func timestamp(_ r: Record, _ uplink: JSONValue) -> Result<(Int64, String), RecordError> {
        let candidates: [(String, JSONValue?)]
        switch time {
        case .application: candidates = [("received_at", r["received_at"])]
        case .gateway:
            var earliest: (String, JSONValue?)?
            var best = Int64.max
            if case .array(let gateways) = uplink["rx_metadata"] ?? .null {
                for (i, gateway) in gateways.enumerated() {
                    // `time` is the gateway's GPS time and optional; `received_at` is always there.
                    for name in ["time", "received_at"] {
                        if let text = gateway[name]?.text, let t = try? PayloadFields.rfc3339.parse(text), t < best {
                            best = t
                            earliest = ("uplink_message.rx_metadata.\(i).\(name)", gateway[name])
                        }
                    }
                }
            }
            candidates = [earliest ?? ("uplink_message.received_at", uplink["received_at"])]
        case .network: candidates = [("uplink_message.received_at", uplink["received_at"]), ("received_at", r["received_at"])]
        }
        for (field, value) in candidates {
            guard let text = value?.text, !text.isEmpty else { continue }
            do { return .success((try PayloadFields.rfc3339.parse(text), field)) } catch {
                return .failure(RecordError(SourceLocation(origin: ""), field: field, "\(error)"))
            }
        }
        return .failure(RecordError(SourceLocation(origin: ""), field: candidates.first?.0 ?? "received_at", "missing"))
    }

    /// The device's own position and where it came from: payload fields when configured, else
    /// `uplink_message.locations` (user-set first, then solved by the network). Never a gateway's position.
    /// (0, 0) from a tracker means "no fix" and is no position; anything else is checked by `Plausibility`.
    private func location(_ decoded: JSONValue?, _ uplink: JSONValue) -> (GeoPoint, String)? {
        if let point = payload.position(decoded) { return (point, "uplink_message.decoded_payload") }
        guard case .object(let locations) = uplink["locations"] ?? .null else { return nil }
        let ordered = locations.sorted { ($0.key == "user" ? 0 : 1, $0.key) < ($1.key == "user" ? 0 : 1, $1.key) }
        for entry in ordered {
            if let lat = entry.value["latitude"]?.number, let lon = entry.value["longitude"]?.number {
                return (GeoPoint(longitude: lon, latitude: lat, altitude: entry.value["altitude"]?.number), "uplink_message.locations.\(entry.key)")
            }
        }
        return nil
    }
}
