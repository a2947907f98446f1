import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// ChirpStack v4 uplinks: pushed by an application's HTTP integration (payload encoding JSON) to
/// `POST /ingest/<pipeline>?event=up` on `datenwerk serve`, or read from captured events (`url`) for replay and tests.
///
/// Many Stadtwerke run their own LoRaWAN network server on ChirpStack. Its HTTP integration posts every event of
/// an application to one URL, the type only in the query (`?event=up|join|ack|txack|log|status|location|integration`).
/// The type is read from the body instead (each event type has fields of its own: an uplink `fCnt`, `fPort`,
/// `rxInfo`; a status event `margin`; a log event `level`, `code` …), so a body checked at the door, one mapped by a
/// run, and one replayed from quarantine (where no query is kept) are all judged alike. Only uplinks carry
/// measurements; every other event is answered 200 "ignored", with the reason.
///
/// One station per device, `<station_prefix>:<devEui>` (lower case; the prefix defaults to the pipeline's name,
/// because device names are only unique per tenant and one installation may take several network servers). The
/// device-profile codec's `object` is mapped per `fields`/`units` exactly as the `ttn` connector maps
/// `decoded_payload`. Phenomenon time: the event's `time` (set by the network server when it received the uplink;
/// fallback: the earliest `rxInfo[].nsTime`), or with `time: gateway` the earliest `rxInfo[].gwTime` (only gateways
/// with GNSS send it; else the network time). Gateway positions (`rxInfo[].location`) are never the device's: a
/// position comes only from payload fields named by `latitude_field`/`longitude_field`.
///
/// Value accounting as for `ttn`: every `object` key but the position fields is a value read; keys not in `fields`
/// are skipped as `unmapped_property`, null ones as `missing_value`, events of other applications (captured files)
/// as `filtered`.
struct ChirpStackConnector: PushConnector, ConfiguredConnector {
    let kind = "chirpstack"
    let summary = "ChirpStack v4 HTTP integration uplink events (JSON), pushed to `datenwerk serve` (token in a header) or read from captured events"

    /// Which time of an uplink is the phenomenon time.
    enum TimeSource: String, ConfigChoice {
        case network, gateway
    }

    struct Configuration: ConnectorConfiguration {
        static let fields = Setting<[String: String]>("fields", required: true,
                                                      "object key (the device-profile codec's output) → property, e.g. {temperature: air_temperature, humidity: relative_humidity}")
        static let units = Setting<[String: String]>("units",
                                                     "object key → UCUM unit of its values where it differs from the property's (e.g. {battery_mv: mV})")
        static let tokenEnv = DefaultedSetting("token_env", default: "DATENWERK_CHIRPSTACK_TOKEN",
                                               "the environment variable holding the token; set it in the HTTP integration's headers as `Authorization: Bearer <token>` or `X-Datenwerk-Token`")
        static let applications = Setting<[String]>("applications", "accept events of these applications only, by id (UUID) or name (default: any)")
        static let time = DefaultedSetting("time", default: TimeSource.network,
                                           "phenomenon time: the network server's reception (`time`, else the earliest rxInfo nsTime), or the earliest gateway GNSS time (rxInfo gwTime, else the network time)")
        static let latitudeField = Setting<String>("latitude_field", "object key with the device latitude (GPS trackers); gateway positions are never used")
        static let longitudeField = Setting<String>("longitude_field", "object key with the device longitude")
        static let stationPrefix = LoRaWANKeys.stationPrefix
        static let url = Setting<String>("url", .location, "captured events (one JSON object or an array per file, `*` matches several) for `datenwerk run`")
        static let keys = [fields.key, units.key, tokenEnv.key, applications.key, time.key, latitudeField.key, longitudeField.key, stationPrefix.key, url.key]

        var fields: [String: String]
        var units: [String: String]
        var tokenEnv: String
        var applications: Set<String>?
        var time: TimeSource
        var latitudeField: String?
        var longitudeField: String?
        var stationPrefix: String?
        var url: String?

        init(_ config: ConnectorConfig) throws {
            fields = try config.required(Self.fields)
            units = config[Self.units] ?? [:]
            tokenEnv = config[Self.tokenEnv]
            applications = config[Self.applications].map(Set.init)
            time = config[Self.time]
            latitudeField = config[Self.latitudeField]
            longitudeField = config[Self.longitudeField]
            stationPrefix = config[Self.stationPrefix]
            url = config[Self.url]
        }
    }

    let sampleYAML = """
        version: 1
        name: chirpstack-stadtwerke
        tenant: "05515000"
        source:
          kind: chirpstack
          # ChirpStack → Applications → <application> → Integrations → HTTP: payload encoding JSON,
          # event endpoint URL https://datenwerk.example.de/ingest/chirpstack-stadtwerke,
          # header  Authorization: Bearer <the value of DATENWERK_CHIRPSTACK_TOKEN>.
          token_env: DATENWERK_CHIRPSTACK_TOKEN
          applications: [Klima]
          fields:
            temperature: air_temperature
            humidity: relative_humidity
            battery: battery_voltage
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        return PayloadFields.check(fields: config[C.fields] ?? [:], units: config[C.units] ?? [:], hasLatitude: config.has(C.latitudeField),
                                   hasLongitude: config.has(C.longitudeField), payload: "object")
            + LoRaWANKeys.check(stationPrefix: config[C.stationPrefix])
    }

    func tokenVariable(_ config: ConnectorConfig) -> String { config[Configuration.tokenEnv] }

    /// The same checks and mapping a run applies, on this one body: an event is stored whole or not at all.
    func admit(_ body: [UInt8], config: ConnectorConfig, pipeline: String) -> PushAdmission {
        var mapping: ChirpStackMapping
        do { mapping = try ChirpStackMapping(Configuration(config), pipeline: pipeline) } catch { return .reject("the pipeline cannot map events: \(error)") }
        return mapping.admission(body)
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        try ChirpStackMapping(config, pipeline: context.pipeline).run(context: context, url: config.url, kind: kind, messages: "events")
    }
}

enum ChirpStackEvent {
    /// The fields that only one event type has (protobuf JSON names; ChirpStack emits every field of its event).
    static let markers: [(type: String, fields: [String])] = [
        ("integration", ["integrationName", "eventType"]),
        ("log", ["level", "code", "description"]),
        ("status", ["margin", "batteryLevel", "batteryLevelUnavailable", "externalPowerSource"]),
        ("txack", ["downlinkId", "gatewayId"]),
        ("ack", ["acknowledged", "queueItemId", "fCntDown"]),
        ("location", ["location"]),
        ("up", ["rxInfo", "fCnt", "fPort", "object", "data", "txInfo"]),
        ("join", ["devAddr"]),
    ]

    /// `up`, `join`, `ack`, `txack`, `log`, `status`, `location`, `integration`, or nil (not a ChirpStack v4 event).
    static func type(of r: Record) -> String? {
        markers.first { marker in marker.fields.contains { r[$0] != nil } }?.type
    }
}

struct ChirpStackMapping: PushMessageMapping {
    static let sender = "ChirpStack"
    let payload: PayloadFields
    let applications: Set<String>?
    let time: ChirpStackConnector.TimeSource
    let prefix: String
    /// Uplinks are live data: times from 1900 to a day ahead, WGS84 positions, ids short enough to index.
    let plausibility = Plausibility.live()
    var stations = StationTracker()
    var tally: ValueTally? = ValueTally()

    init(_ config: ChirpStackConnector.Configuration, pipeline: String) throws {
        payload = try PayloadFields(fields: config.fields, units: config.units, latitudeField: config.latitudeField, longitudeField: config.longitudeField,
                                    path: "object")
        applications = config.applications
        time = config.time
        prefix = config.stationPrefix ?? pipeline
    }

    func classify(_ r: Record) -> PushMessageKind {
        guard let eui = r["deviceInfo.devEui"]?.text, !eui.isEmpty else {
            if r["devEUI"] != nil || r["applicationID"] != nil {
                return .reject(RecordError(r.location, field: "deviceInfo.devEui",
                                           "deviceInfo.devEui is missing: this looks like a ChirpStack v3 event (devEUI, applicationID); this connector reads ChirpStack v4 events"))
            }
            return .reject(RecordError(r.location, field: "deviceInfo.devEui", "deviceInfo.devEui is missing: not a ChirpStack v4 event"))
        }
        if let applications {
            let id = r["deviceInfo.applicationId"]?.text ?? ""
            let name = r["deviceInfo.applicationName"]?.text ?? ""
            if !applications.contains(id), !applications.contains(name) {
                let shown = name.isEmpty ? id : "\(name)' ('\(id)"
                let clipped = shown.count > 100 ? String(shown.prefix(100)) + "…" : shown
                return .forbid("application '\(clipped)' is not in this pipeline's applications (\(applications.sorted().joined(separator: ", ")))",
                               values: payload.offered(r["object"]))
            }
        }
        guard let type = ChirpStackEvent.type(of: r) else {
            return .reject(RecordError(r.location, "not a ChirpStack v4 event (none of the fields of an uplink, join, ack, txack, log, status, location or integration event)"))
        }
        guard type == "up" else { return .ignore("\(type) events carry no measurements") }
        return .measurement
    }

    mutating func mapMeasurement(_ r: Record, into items: inout [StagedItem]) -> [RecordError] {
        let at = r.location
        let eui = (r["deviceInfo.devEui"]?.text ?? "").lowercased()
        let phenomenon: Int64
        switch timestamp(r) {
        case .success(let (t, field)):
            if let problem = plausibility.check(time: t) { return [RecordError(at, field: field, problem.reason)] }
            phenomenon = t
        case .failure(var error):
            error.location = at
            return [error]
        }
        let key = "\(prefix):\(eui)"
        let object = r["object"]
        let name = r["deviceInfo.deviceName"]?.text
        var station = Station(key: key, name: name.map { String($0.prefix(200)) } ?? eui, kind: "lorawan_device")
        station.location = payload.position(object)
        if let problem = plausibility.check(station) {
            let field: String = switch problem.part {
            case .longitude, .latitude, .altitude: "object." + problem.part.rawValue
            default: "deviceInfo.devEui"
            }
            return [RecordError(at, field: field, problem.reason)]
        }
        guard let object, case .object(let members) = object else {
            return [RecordError(at, field: "object",
                                "missing (the device profile has no codec, or it failed: see the device's log events, code UPLINK_CODEC); the event is kept with its data")]
        }
        let (observations, problems) = payload.observations(members, station: key, time: phenomenon, quality: nil, plausibility: plausibility,
                                                            at: at, tally: &tally)
        guard problems.isEmpty else { return problems }
        stations.emit(key, into: &items) {
            var properties: [JSONValue.Member] = [.init("dev_eui", .string(String(eui.prefix(64))))]
            for (property, path) in [("application_id", "deviceInfo.applicationId"), ("application_name", "deviceInfo.applicationName"),
                                     ("tenant_id", "deviceInfo.tenantId"), ("tenant_name", "deviceInfo.tenantName"),
                                     ("device_profile_name", "deviceInfo.deviceProfileName")] {
                if let v = r[path]?.text, !v.isEmpty { properties.append(.init(property, .string(String(v.prefix(200))))) }
            }
            if case .object(let tags) = r["deviceInfo.tags"] ?? .null, !tags.isEmpty {
                properties.append(.init("tags", .object(tags.prefix(50).map { .init(String($0.key.prefix(200)), .string(String($0.value.text.prefix(200)))) })))
            }
            station.properties = .object(properties)
            return station
        }
        items += observations.map(StagedItem.observation)
        return []
    }

    private func timestamp(_ r: Record) -> Result<(Int64, String), RecordError> {
        var candidates: [(String, String)] = []
        func earliest(_ name: String) -> (String, String)? {
            guard case .array(let gateways) = r["rxInfo"] ?? .null else { return nil }
            var best: (Int64, String, String)?
            for (i, gateway) in gateways.enumerated() {
                if let text = gateway[name]?.text, !text.isEmpty, let t = try? PayloadFields.rfc3339.parse(text), t < best?.0 ?? .max {
                    best = (t, "rxInfo.\(i).\(name)", text)
                }
            }
            return best.map { ($0.1, $0.2) }
        }
        if time == .gateway, let gw = earliest("gwTime") { candidates.append(gw) }
        if let text = r["time"]?.text, !text.isEmpty, r["time"]?.isNull == false { candidates.append(("time", text)) }
        if let ns = earliest("nsTime") { candidates.append(ns) }
        guard let (field, text) = candidates.first else {
            return .failure(RecordError(SourceLocation(origin: ""), field: "time", "missing (and no rxInfo nsTime)"))
        }
        do { return .success((try PayloadFields.rfc3339.parse(text), field)) } catch {
            return .failure(RecordError(SourceLocation(origin: ""), field: field, "\(error)"))
        }
    }
}
