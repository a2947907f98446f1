import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

// What the LoRaWAN push connectors (`ttn`, `chirpstack`) share: the `fields`/`units` mapping of a device codec's
// decoded payload, the station prefix rule, one pushed body checked and mapped whole, and the run over pushed
// bodies. Each network server's own envelope (where the device, the time, the payload are) stays in its connector.

/// The keys both LoRaWAN connectors declare the same way.
enum LoRaWANKeys {
    /// Device ids of a network server are only unique on that server (TTN: per application; ChirpStack device
    /// names per tenant), so station keys start with the pipeline's name unless a prefix is set.
    static let stationPrefix = Setting<String>("station_prefix",
                                               "first part of every station key (default: the pipeline's name): device ids are only unique on their network server, so two installations' devices never share a station")

    /// `station_prefix` holds letters, digits, `.`, `_` and `-` (it is the first part of a `prefix:id` key).
    static func check(stationPrefix: String?) -> [ConfigProblem] {
        guard let stationPrefix else { return [] }
        if !StationPrefix.isValid(stationPrefix) {
            return [ConfigProblem(key: "station_prefix",
                                  "'\(stationPrefix)' must be letters, digits, '.', '_' or '-' (it starts every station key: '<prefix>:<device>')")]
        }
        return []
    }
}

/// The codec output of a device (TTN `decoded_payload`, ChirpStack `object`) mapped per the pipeline's `fields` and
/// `units`: nothing is guessed from key names, which are the vendor's choice (mixed case, units in the name).
struct PayloadFields {
    struct Field {
        var key: String
        var property: String
        var conversion: Units.Conversion
    }

    let fields: [Field]
    let latitudeField: String?
    let longitudeField: String?
    /// Where the payload sits in a message, for field names in errors (`uplink_message.decoded_payload`).
    let path: String

    init(fields configured: [String: String], units: [String: String], latitudeField: String?, longitudeField: String?, path: String) throws {
        var fields: [Field] = []
        for (key, property) in configured.sorted(by: { $0.key < $1.key }) {
            guard let known = Vocabulary.property(property) else { throw ExtractError("fields: '\(property)' is not a known property") }
            let unit = units[key] ?? known.unit
            fields.append(Field(key: key, property: property, conversion: try Units.conversion(from: unit, to: known.unit)))
        }
        self.fields = fields
        self.latitudeField = latitudeField
        self.longitudeField = longitudeField
        self.path = path
    }

    /// The checks across `fields`, `units`, `latitude_field` and `longitude_field`, each naming its key.
    static func check(fields: [String: String], units: [String: String], hasLatitude: Bool, hasLongitude: Bool, payload: String) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if fields.isEmpty { problems.append(ConfigProblem(key: "fields", "name at least one \(payload) key and its property")) }
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
        if hasLatitude != hasLongitude {
            problems.append(ConfigProblem(key: hasLatitude ? "longitude_field" : "latitude_field", "latitude_field and longitude_field go together"))
        }
        return problems
    }

    /// The device's own position from the payload (GPS trackers), when configured; (0, 0) means "no fix".
    func position(_ payload: JSONValue?) -> GeoPoint? {
        guard let latitudeField, let longitudeField,
              let lat = payload?[latitudeField]?.number, let lon = payload?[longitudeField]?.number, !(lat == 0 && lon == 0) else { return nil }
        return GeoPoint(longitude: lon, latitude: lat)
    }

    /// Values the payload offers: every key but the position fields (a key not in `fields` is a value the
    /// pipeline does not take, counted as `unmapped_property`).
    func offered(_ payload: JSONValue?) -> Int {
        guard case .object(let members) = payload ?? .null else { return 0 }
        return members.filter { $0.key != latitudeField && $0.key != longitudeField }.count
    }

    /// The observations of one payload, in `fields` order, and the problems (a value that is not a number or out of
    /// range): with any problem the caller stores nothing of the message. Every value the payload offers is counted
    /// in `tally`: configured ones as read (null ones skipped as `missing_value`), the others as `unmapped_property`.
    func observations(_ members: [JSONValue.Member], station: String, time: Int64, quality: String?, plausibility: Plausibility,
                      at location: SourceLocation, tally: inout ValueTally?) -> ([Observation], [RecordError]) {
        var problems: [RecordError] = []
        var observations: [Observation] = []
        let configured = Set(fields.map(\.key))
        for member in members where member.key != latitudeField && member.key != longitudeField && !configured.contains(member.key) {
            tally?.readAndSkip(.unmappedProperty)
        }
        let payload = JSONValue.object(members)
        var found = 0
        for field in fields {
            guard let value = payload[field.key] else { continue }   // devices send different frames on different ports
            tally?.read()
            if value.isNull {
                tally?.skip(.missingValue)
                continue
            }
            found += 1
            let name = "\(path).\(field.key)"
            guard let number = value.number else {
                problems.append(RecordError(location, field: name, "'\(value.text)' is not a number (\(field.property))"))
                continue
            }
            let o = Observation(stationKey: station, property: field.property, phenomenonStart: time,
                                result: field.conversion.apply(number), quality: quality)
            if let problem = plausibility.check(o, range: Vocabulary.property(field.property)?.range) {
                problems.append(RecordError(location, field: name, problem.reason))
                continue
            }
            observations.append(o)
        }
        if found == 0, problems.isEmpty {
            let present = members.map(\.key).joined(separator: ", ")
            problems.append(RecordError(location, field: path,
                                        "none of the configured fields (\(fields.map(\.key).joined(separator: ", "))) is present; the payload has \(present)"))
        }
        return (observations, problems)
    }

    // RFC 3339 with up to nanoseconds; digits past the microsecond are cut off.
    static let rfc3339 = try! TimestampParser(format: "iso8601", zone: .utc)
}

/// What a push mapping makes of a decoded message before mapping its values.
enum PushMessageKind {
    /// A message with measurements: map it.
    case measurement
    /// A valid message without measurements (a join, a downlink event …).
    case ignore(String)
    /// From an application this pipeline does not take; `values` is what its payload offered (counted as `filtered`).
    case forbid(String, values: Int)
    /// Not a message of this network server at all.
    case reject(RecordError)
}

/// A network server's messages, one per pushed body (The Things Stack, ChirpStack).
protocol PushMessageMapping: RecordMapping {
    /// Who sends one message per request, for the error about arrays ("as The Things Stack does").
    static var sender: String { get }
    /// The message's kind: measurements, nothing to store, another application, or not a message of this server.
    func classify(_ r: Record) -> PushMessageKind
    /// Maps one measurement message whole: with any problem nothing of it is staged and the problems come back.
    mutating func mapMeasurement(_ r: Record, into items: inout [StagedItem]) -> [RecordError]
}

extension PushMessageMapping {
    /// A message read from captured files (`url`): ignored types and other applications leave nothing (the latter
    /// counted as `filtered`); a message that is no message of this server is quarantined.
    mutating func map(_ r: Record, into items: inout [StagedItem]) -> [RecordError] {
        switch classify(r) {
        case .measurement: return mapMeasurement(r, into: &items)
        case .ignore: return []
        case .forbid(_, let values):
            tally?.readAndSkip(.filtered, values)
            return []
        case .reject(let error): return [error]
        }
    }

    /// One pushed body, checked and mapped whole: exactly one message object (an array, a message of another
    /// server, an implausible value are rejected, never half-stored). Values are counted in `tally`; a rejected
    /// body names how many of them it stands for.
    mutating func mapBody(_ body: [UInt8], origin: String) -> PushedBody {
        let at = SourceLocation(origin: origin, record: 1, path: "$")
        let message: JSONValue
        do { message = try JSONParser.parse(body) } catch {
            tally?.read()
            return .rejected(RecordError(at, "the body is not JSON: \(error)"), values: 1)
        }
        guard case .object = message else {
            tally?.read()
            if case .array = message {
                return .rejected(RecordError(at, "the body is not a JSON object but an array: send one message per request, as \(Self.sender) does"), values: 1)
            }
            return .rejected(RecordError(at, "the body is not a JSON object"), values: 1)
        }
        let record = Record(json: message, location: at, raw: String(decoding: body, as: UTF8.self))
        switch classify(record) {
        case .ignore(let reason): return .ignored(reason)
        case .forbid(let reason, let values):
            tally?.readAndSkip(.filtered, values)
            return .forbidden(reason)
        case .reject(let error):
            tally?.read()
            return .rejected(error, values: 1)
        case .measurement: break
        }
        let before = tally
        var items: [StagedItem] = []
        let problems = mapMeasurement(record, into: &items)
        guard var first = problems.first else { return .mapped(items) }
        if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this message)" }
        var values = 1
        if let before, var books = tally {
            values = books.unsettled(since: before, items: [], from: 0)
            tally = books
        }
        return .rejected(first, values: values)
    }

    /// What `admit` answers for a body: the same checks and mapping a run applies, on this one body.
    mutating func admission(_ body: [UInt8]) -> PushAdmission {
        switch mapBody(body, origin: "") {
        case .mapped: return .accept
        case .ignored(let reason): return .ignore(reason)
        case .forbidden(let reason): return .forbidden(reason)
        case .rejected(let error, _):
            guard let field = error.field, !error.reason.contains(field) else { return .reject(error.reason) }
            return .reject("\(field): \(error.reason)")
        }
    }
}

/// The result of one pushed body.
enum PushedBody {
    case mapped([StagedItem])
    /// A valid message without measurements (join accept, downlink event …).
    case ignored(String)
    /// From an application this pipeline does not take.
    case forbidden(String)
    /// Kept whole in quarantine; it stands for `values` values.
    case rejected(RecordError, values: Int)
}

/// The bodies handed over by the server (push ingest) or a quarantine replay: each is one message, mapped whole
/// (`PushMessageMapping.mapBody`); a rejected one is kept in quarantine with the whole body as its raw payload.
extension PushMessageMapping {
    /// The run of a LoRaWAN push connector: the bodies `datenwerk serve` received, or captured messages read from
    /// `url` (files or HTTP) as one JSON document each.
    func run(context: ConnectorContext, url: String?, kind: String, messages: String) throws -> any ConnectorRun {
        if let pushed = context.pushed {
            return PushedDocumentsRun(documents: pushed, mapping: self)
        }
        guard let url else {
            throw ExtractError("a \(kind) pipeline receives its uplinks through `datenwerk serve` (POST /ingest/\(context.pipeline)); set `url` to read captured \(messages) instead")
        }
        return DocumentRun(locations: try expandLocation(url), session: context.session, decoder: { origin in
            .json(StreamingJSONDecoder(options: JSONDecoderOptions(), origin: origin))
        }, mapping: self)
    }
}

struct PushedDocumentsRun<Mapping: PushMessageMapping>: ConnectorRun {
    var documents: [PushedDocument]
    var mapping: Mapping
    var bytesRead = 0
    var origins: [String] = []

    init(documents: [PushedDocument], mapping: Mapping) {
        self.documents = documents
        self.mapping = mapping
        if self.mapping.tally == nil { self.mapping.tally = ValueTally() }
    }

    mutating func next() async throws -> ConnectorBatch? {
        guard !documents.isEmpty else { return nil }
        var items: [StagedItem] = []
        for document in documents {
            bytesRead += document.body.count
            origins.append(document.origin)
            let raw = String(decoding: document.body, as: UTF8.self)
            let outcome = mapping.mapBody(document.body, origin: document.origin)
            if case .rejected(let error, let values) = outcome {
                items.append(.quarantined(QuarantinedRecord(error: error, raw: raw, values: values)))
            } else if let rejection = document.rejection {
                // Refused by the server although it maps (the database would not store it): kept with that reason,
                // standing for the observations it would have given.
                var values = 0
                if case .mapped(let mapped) = outcome { values = ValueTally.settled(mapped) }
                if case .ignored = outcome { mapping.tally?.read(); values = 1 }
                if case .forbidden = outcome { mapping.tally?.read(); values = 1 }
                items.append(.quarantined(QuarantinedRecord(error: RecordError(SourceLocation(origin: document.origin, record: 1, path: "$"), rejection),
                                                            raw: raw, values: values)))
            } else if case .mapped(let mapped) = outcome {
                items += mapped
            }
        }
        let records = documents.count
        documents = []
        let books = mapping.tally ?? ValueTally()
        mapping.tally = ValueTally()
        return ConnectorBatch(items: items, recordsRead: records, valuesRead: books.valuesRead, skipped: books.skipped)
    }
}
