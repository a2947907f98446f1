import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// The Things Stack v3 (The Things Network) uplinks: pushed by its webhook integration to
/// `POST /ingest/<pipeline>` on `datenwerk serve`, or read from captured messages (`url`) for replay and tests.
///
/// One station per end device (`ttn:<application id>:<device id>`). The device codec's `decoded_payload` is
/// whatever the vendor chose: keys are mixed-case and carry the unit in their name, values are numbers or
/// strings. So nothing is guessed: `fields` names the payload keys to keep and their property, `units` the
/// unit of each key where it is not the property's own. Gateway locations are never taken as the device's.
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
        static let keys = [fields.key, units.key, tokenEnv.key, applications.key, time.key, latitudeField.key, longitudeField.key, url.key]

        var fields: [String: String]
        var units: [String: String]
        var tokenEnv: String
        var applications: Set<String>?
        var time: TimeSource
        var latitudeField: String?
        var longitudeField: String?
        var url: String?

        init(_ config: ConnectorConfig) throws {
            fields = try config.required(Self.fields)
            units = config[Self.units] ?? [:]
            tokenEnv = config[Self.tokenEnv]
            applications = config[Self.applications].map(Set.init)
            time = config[Self.time]
            latitudeField = config[Self.latitudeField]
            longitudeField = config[Self.longitudeField]
            url = config[Self.url]
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
        var problems: [ConfigProblem] = []
        let fields = config[C.fields] ?? [:]
        let units = config[C.units] ?? [:]
        if fields.isEmpty { problems.append(ConfigProblem(key: "fields", "name at least one decoded_payload key and its property")) }
        for (key, property) in fields.sorted(by: { $0.key < $1.key }) {
            guard let known = Vocabulary.property(property) else {
                let hint = closestMatch(to: property, in: Vocabulary.properties.map(\.key)).map { "; did you mean '\($0)'?" } ?? ""
                problems.append(ConfigProblem(key: "fields", "'\(property)' (for \(key)) is not a known property\(hint)"))
                continue
            }
            if let unit = units[key] {
                do { _ = try Units.conversion(from: unit, to: known.unit) } catch {
                    problems.append(ConfigProblem(key: "units", "\(key): \(error)"))
                }
            }
        }
        for (property, keys) in Dictionary(grouping: fields.keys.sorted(), by: { fields[$0]! }).sorted(by: { $0.key < $1.key }) where keys.count > 1 {
            problems.append(ConfigProblem(key: "fields", "\(keys.joined(separator: " and ")) both map to \(property); a device has one value per property and time"))
        }
        for key in units.keys.sorted() where fields[key] == nil {
            problems.append(ConfigProblem(key: "units", "'\(key)' has a unit but is not in fields"))
        }
        if config.has(C.latitudeField) != config.has(C.longitudeField) {
            problems.append(ConfigProblem(key: config.has(C.latitudeField) ? C.longitudeField.name : C.latitudeField.name,
                                          "latitude_field and longitude_field go together"))
        }
        return problems
    }

    func tokenVariable(_ config: ConnectorConfig) -> String { config[Configuration.tokenEnv] }

    /// The same checks and mapping a run applies, on this one body: a message is stored whole or not at all.
    func admit(_ body: [UInt8], config: ConnectorConfig) -> PushAdmission {
        var mapping: TTNMapping
        do { mapping = try TTNMapping(Configuration(config)) } catch { return .reject("the pipeline cannot map messages: \(error)") }
        switch mapping.mapBody(body, origin: "") {
        case .mapped: return .accept
        case .ignored(let reason): return .ignore(reason)
        case .forbidden(let reason): return .forbidden(reason)
        case .rejected(let error):
            guard let field = error.field, !error.reason.contains(field) else { return .reject(error.reason) }
            return .reject("\(field): \(error.reason)")
        }
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let mapping = try TTNMapping(config)
        if let pushed = context.pushed {
            return PushedDocumentsRun(documents: pushed, mapping: mapping)
        }
        guard let url = config.url else {
            throw ExtractError("a ttn pipeline receives its uplinks through `datenwerk serve` (POST /ingest/\(context.pipeline)); set `url` to read captured messages instead")
        }
        return DocumentRun(locations: try expandLocation(url), session: context.session, decoder: { origin in
            .json(StreamingJSONDecoder(options: JSONDecoderOptions(), origin: origin))
        }, mapping: mapping)
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

struct TTNMapping: RecordMapping {
    struct Field {
        var key: String
        var property: String
        var conversion: Units.Conversion
    }

    let fields: [Field]
    let applications: Set<String>?
    let time: TTNConnector.TimeSource
    let latitudeField: String?
    let longitudeField: String?
    /// Uplinks are live data: times from 1900 to a day ahead, WGS84 positions, ids short enough to index.
    let plausibility = Plausibility.live()
    var stations = StationTracker()

    init(_ config: TTNConnector.Configuration) throws {
        var fields: [Field] = []
        for (key, property) in config.fields.sorted(by: { $0.key < $1.key }) {
            guard let known = Vocabulary.property(property) else { throw ExtractError("fields: '\(property)' is not a known property") }
            let unit = config.units[key] ?? known.unit
            fields.append(Field(key: key, property: property, conversion: try Units.conversion(from: unit, to: known.unit)))
        }
        self.fields = fields
        applications = config.applications
        time = config.time
        latitudeField = config.latitudeField
        longitudeField = config.longitudeField
    }

    /// Maps one message whole: when anything is wrong with it (a value, its time, its position, an id too long to
    /// store) nothing of it is staged and the problems are returned, so the message is kept whole in quarantine.
    mutating func map(_ r: Record, into items: inout [StagedItem]) -> [RecordError] {
        let at = r.location
        guard let device = r["end_device_ids.device_id"]?.text, !device.isEmpty else {
            return [RecordError(at, field: "end_device_ids.device_id", "end_device_ids.device_id is missing: not a The Things Stack v3 message")]
        }
        let application = r["end_device_ids.application_ids.application_id"]?.text ?? ""
        if let applications, !applications.contains(application) { return [] }
        guard let uplink = r["uplink_message"] else { return [] }   // join accepts, downlink events …
        guard case .object = uplink else {
            return [RecordError(at, field: "uplink_message", "is \(Self.describeKind(uplink)), not an object: not an uplink message")]
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
        let key = "ttn:\(application):\(device)"
        let payload = uplink["decoded_payload"]
        var station = Station(key: key, name: device, kind: "lorawan_device")
        var positionField = ""
        if let found = location(payload, uplink) {
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
        guard let payload, case .object(let members) = payload else {
            var detail = "no codec is configured for the device, or it failed"
            for name in ["decoded_payload_warnings", "errors"] {
                if case .array(let list) = uplink[name] ?? .null, !list.isEmpty {
                    detail += "; \(name): " + list.map(\.text).joined(separator: ", ")
                }
            }
            return [RecordError(at, field: "uplink_message.decoded_payload", "missing (\(detail)); the message is kept with its frm_payload")]
        }
        let quality: String? = r["simulated"] == .bool(true) ? "simulated" : nil
        var problems: [RecordError] = []
        var observations: [Observation] = []
        var found = 0
        for field in fields {
            guard let value = payload[field.key], !value.isNull else { continue }   // devices send different frames on different ports
            found += 1
            let name = "uplink_message.decoded_payload.\(field.key)"
            guard let number = value.number else {
                problems.append(RecordError(at, field: name, "'\(value.text)' is not a number (\(field.property))"))
                continue
            }
            let o = Observation(stationKey: key, property: field.property, phenomenonStart: phenomenon,
                                result: field.conversion.apply(number), quality: quality)
            if let problem = plausibility.check(o, range: Vocabulary.property(field.property)?.range) {
                problems.append(RecordError(at, field: name, problem.reason))
                continue
            }
            observations.append(o)
        }
        if found == 0, problems.isEmpty {
            let present = members.map(\.key).joined(separator: ", ")
            problems.append(RecordError(at, field: "uplink_message.decoded_payload",
                                        "none of the configured fields (\(fields.map(\.key).joined(separator: ", "))) is present; the payload has \(present)"))
        }
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
                        if let text = gateway[name]?.text, let t = try? TTNMapping.rfc3339.parse(text), t < best {
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
            do { return .success((try TTNMapping.rfc3339.parse(text), field)) } catch {
                return .failure(RecordError(SourceLocation(origin: ""), field: field, "\(error)"))
            }
        }
        return .failure(RecordError(SourceLocation(origin: ""), field: candidates.first?.0 ?? "received_at", "missing"))
    }

    /// The device's own position and where it came from: payload fields when configured, else
    /// `uplink_message.locations` (user-set first, then solved by the network). Never a gateway's position.
    /// (0, 0) from a tracker means "no fix" and is no position; anything else is checked by `Plausibility`.
    private func location(_ payload: JSONValue?, _ uplink: JSONValue) -> (GeoPoint, String)? {
        if let latitudeField, let longitudeField,
           let lat = payload?[latitudeField]?.number, let lon = payload?[longitudeField]?.number, !(lat == 0 && lon == 0) {
            return (GeoPoint(longitude: lon, latitude: lat), "uplink_message.decoded_payload")
        }
        guard case .object(let locations) = uplink["locations"] ?? .null else { return nil }
        let ordered = locations.sorted { ($0.key == "user" ? 0 : 1, $0.key) < ($1.key == "user" ? 0 : 1, $1.key) }
        for entry in ordered {
            if let lat = entry.value["latitude"]?.number, let lon = entry.value["longitude"]?.number {
                return (GeoPoint(longitude: lon, latitude: lat, altitude: entry.value["altitude"]?.number), "uplink_message.locations.\(entry.key)")
            }
        }
        return nil
    }

    // RFC 3339 with up to nanoseconds; digits past the microsecond are cut off.
    static let rfc3339 = try! TimestampParser(format: "iso8601", zone: .utc)
}

/// The result of one pushed body.
enum PushedBody {
    case mapped([StagedItem])
    /// A valid message without measurements (join accept, downlink event …).
    case ignored(String)
    /// From an application this pipeline does not take.
    case forbidden(String)
    case rejected(RecordError)
}

extension TTNMapping {
    /// One pushed body, checked and mapped whole: exactly one message object (an array, a string
    /// `uplink_message`, an implausible value are rejected, never half-stored).
    mutating func mapBody(_ body: [UInt8], origin: String) -> PushedBody {
        let at = SourceLocation(origin: origin, record: 1, path: "$")
        let message: JSONValue
        do { message = try JSONParser.parse(body) } catch {
            return .rejected(RecordError(at, "the body is not JSON: \(error)"))
        }
        guard case .object = message else {
            if case .array = message {
                return .rejected(RecordError(at, "the body is not a JSON object but an array: send one message per request, as The Things Stack does"))
            }
            return .rejected(RecordError(at, "the body is not a JSON object"))
        }
        let record = Record(json: message, location: at, raw: String(decoding: body, as: UTF8.self))
        guard let device = record["end_device_ids.device_id"]?.text, !device.isEmpty else {
            return .rejected(RecordError(at, field: "end_device_ids.device_id", "end_device_ids.device_id is missing: not a The Things Stack v3 message"))
        }
        let application = record["end_device_ids.application_ids.application_id"]?.text ?? ""
        if let applications, !applications.contains(application) {
            let shown = application.count > 64 ? String(application.prefix(64)) + "…" : application
            return .forbidden("application '\(shown)' is not in this pipeline's applications (\(applications.sorted().joined(separator: ", ")))")
        }
        guard record["uplink_message"] != nil else {
            return .ignored("\(TTNMessage.type(of: message)) messages carry no measurements")
        }
        var items: [StagedItem] = []
        let problems = map(record, into: &items)
        guard var first = problems.first else { return .mapped(items) }
        if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this message)" }
        return .rejected(first)
    }
}

/// The bodies handed over by the server (push ingest) or a quarantine replay: each is one message, mapped whole
/// (`TTNMapping.mapBody`); a rejected one is kept in quarantine with the whole body as its raw payload.
struct PushedDocumentsRun: ConnectorRun {
    var documents: [PushedDocument]
    var mapping: TTNMapping
    var bytesRead = 0
    var origins: [String] = []

    init(documents: [PushedDocument], mapping: TTNMapping) {
        self.documents = documents
        self.mapping = mapping
    }

    mutating func next() async throws -> ConnectorBatch? {
        guard !documents.isEmpty else { return nil }
        var items: [StagedItem] = []
        for document in documents {
            bytesRead += document.body.count
            origins.append(document.origin)
            let raw = String(decoding: document.body, as: UTF8.self)
            let outcome = mapping.mapBody(document.body, origin: document.origin)
            if case .rejected(let error) = outcome {
                items.append(.quarantined(QuarantinedRecord(error: error, raw: raw)))
            } else if let rejection = document.rejection {
                // Refused by the server although it maps (the database would not store it): kept with that reason.
                items.append(.quarantined(QuarantinedRecord(error: RecordError(SourceLocation(origin: document.origin, record: 1, path: "$"), rejection), raw: raw)))
            } else if case .mapped(let mapped) = outcome {
                items += mapped
            }
        }
        let records = documents.count
        documents = []
        return ConnectorBatch(items: items, recordsRead: records)
    }
}
