import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// Municipal parking occupancy feeds → `parking_free_spaces` and `parking_capacity`.
///
/// One connector for the shapes German cities publish, chosen by `format`:
/// - `wfs-geojson` / `geojson`: a FeatureCollection; the geometry's own `crs` member, else the root `crs`
///   (both spellings, `urn:ogc:def:crs:EPSG::25832` and `EPSG:25832`), else `crs`, else WGS84. Projected
///   coordinates are `[easting, northing]`; they are transformed and kept as `sourceCoordinates`.
/// - `datex2`: DATEX II 2.x `ParkingStatusPublication` (MDM), joined with the `ParkingTablePublication`
///   in `static_url` through `parkingRecordReference/@id` = `parkingRecord/@id`.
/// - `ngsi-v2`: FIWARE `OffStreetParking` entities, normalized (`{type, value, metadata}`) or keyValues.
/// - `csv`: one row per site; free spaces, or occupied spaces subtracted from the capacity.
/// - `xml`: a flat custom XML, one element per site, the time in the record or once in the document.
///
/// Each feed's field names are defaults that keys such as `free_field` override. A site whose `state_field`
/// value is not in `reliable_states` (Freiburg `obs_state` ≠ 1, a `Stoerung`, DATEX `unknown`) still gets its
/// values, with quality `unreliable`.
///
/// Stations are `<station_prefix>:<site id>`; the prefix defaults to the PIPELINE name, because a city feed's site
/// ids (`P1`, `PH03`, a name) are unique only within that feed.
///
/// Zero silent drops: each count field a record holds (free, capacity, occupied; a capacity from the DATEX II
/// static table too) is a value read. Free spaces and capacity load; occupied spaces are turned into free spaces
/// with the capacity, or — when the record gives free spaces too, or no capacity — counted as
/// `unmapped_property`; an empty or null count is counted as `missing_value`; a record that fails (no id, no
/// time, a count that is not a number) is quarantined and stands for the values it held.
struct ParkingConnector: ConfiguredConnector {
    let kind = "parking"
    let summary = "Parking occupancy feeds (WFS GeoJSON, GeoJSON, DATEX II, FIWARE NGSI v2, CSV, XML): free spaces and capacity per site"

    /// The shape of the feed.
    enum Format: String, ConfigChoice {
        case wfsGeoJSON = "wfs-geojson", datex2, ngsiV2 = "ngsi-v2", csv, xml, geojson

        var isGeoJSON: Bool { self == .wfsGeoJSON || self == .geojson }
    }

    /// The CSV encodings the key accepts (labels as `TextEncoding(label:)` reads them).
    enum Encoding: String, ConfigChoice {
        case utf8 = "utf-8", latin1, windows1252 = "windows-1252"
    }

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true, "the feed (URL or files, `*` matches several)")
        static let format = Setting<Format>("format", required: true, "the shape of the feed")
        static let staticURL = Setting<String>("static_url", .location, "datex2: the ParkingTablePublication with names, locations and capacities")
        static let idField = Setting<String>("id_field", "the site id (default per format: park_id, id, Name, ID)")
        static let nameField = Setting<String>("name_field", "the site name (default per format: park_name, name, Name)")
        static let freeField = Setting<String>("free_field", "free spaces (default per format: obs_free, availableSpotNumber, Aktuell)")
        static let capacityField = Setting<String>("capacity_field", "total spaces (default per format: obs_max, totalSpotNumber, Capacity, Gesamt)")
        static let occupiedField = Setting<String>("occupied_field", "occupied spaces, when the feed gives those instead of free ones (csv default: OccupiedSites)")
        static let timeField = Setting<String>("time_field", "the observation time (default per format: obs_ts, observationDateTime, Timestamp, Zeitstempel)")
        static let timeFormat = Setting<String>("time_format", "pattern such as `dd.MM.yyyy HH:mm:ss`, or iso8601 / epoch_s / epoch_ms (default per format)")
        static let timezone = DefaultedSetting.timezone(default: "Europe/Berlin", "zone of local times without an offset")
        static let stateField = Setting<String>("state_field", "the site state (default per format: obs_state, status, OpeningState, Status, parkingSiteStatus)")
        static let reliableStates = Setting<[String]>("reliable_states", "states whose counts are live; others get quality `unreliable` (default per format)")
        static let geometryField = DefaultedSetting("geometry_field", default: "geometry", "geojson: the geometry to use, e.g. `properties.the_geom`")
        static let crs = DefaultedSetting("crs", default: 4326, "geojson: EPSG code when the document declares none")
        static let pageSize = DefaultedSetting("page_size", default: 100,
                                               "ngsi-v2 over HTTP: entities per request (`limit`/`offset` paging; Orion returns only 20 without it)")
        static let recordElement = DefaultedSetting("record_element", default: "Parkhaus", "xml: the element of one site")
        static let encoding = DefaultedSetting("encoding", default: Encoding.utf8, "csv: character encoding")
        static let delimiter = DefaultedSetting("delimiter", default: ";", "csv: field separator")
        static let stationPrefix = Setting<String>("station_prefix", "station keys are <station_prefix>:<site id>; default: the pipeline name (site ids are unique only per feed)")
        static let keys = [url.key, format.key, staticURL.key, idField.key, nameField.key, freeField.key, capacityField.key, occupiedField.key,
                           timeField.key, timeFormat.key, timezone.key, stateField.key, reliableStates.key, geometryField.key, crs.key,
                           pageSize.key, recordElement.key] + XMLLimitKeys.keys("xml, datex2: ") + [encoding.key, delimiter.key, stationPrefix.key]

        var url: String
        var format: Format
        var staticURL: String?
        /// The format's field names and time format with the configured ones over them.
        var fields: Fields
        var timezone: String
        var geometryField: String
        var crs: Int
        var pageSize: Int
        var recordElement: String
        var limits: XMLDecoderOptions
        var csv: CSVOptions
        var stationPrefix: String?

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            format = try config.required(Self.format)
            staticURL = config[Self.staticURL]
            fields = ParkingConnector.defaults(format)
            if let v = config[Self.idField] { fields.id = v }
            if let v = config[Self.nameField] { fields.name = v }
            if let v = config[Self.freeField] { fields.free = v }
            if let v = config[Self.capacityField] { fields.capacity = v }
            if let v = config[Self.occupiedField] { fields.occupied = v }
            if let v = config[Self.timeField] { fields.time = v }
            if let v = config[Self.timeFormat] { fields.timeFormat = v }
            if let v = config[Self.stateField] { fields.state = v }
            if let v = config[Self.reliableStates] { fields.reliable = v }
            timezone = config[Self.timezone]
            geometryField = config[Self.geometryField]
            crs = config[Self.crs]
            pageSize = config[Self.pageSize]
            recordElement = config[Self.recordElement]
            limits = XMLLimitKeys.options(config)
            csv = CSVOptions()
            csv.delimiter = config[Self.delimiter].utf8.first ?? UInt8(ascii: ";")
            csv.encoding = TextEncoding(label: config[Self.encoding].rawValue) ?? .utf8
            csv.trimFields = true
            stationPrefix = config[Self.stationPrefix]
        }
    }

    let sampleYAML = """
        version: 1
        name: parking-freiburg
        tenant: "08311000"
        schedule: "*/5 * * * *"
        source:
          kind: parking
          format: wfs-geojson
          # Stadt Freiburg parking guidance system (dl-de/by-2-0), EPSG:25832, local times.
          url: "https://geoportal.freiburg.de/wfs/gdm_pls/gdm_plslive?request=getfeature&service=wfs&version=1.1.0&typename=pls&outputformat=geojson"
        """

    /// Field names and time format a format uses unless the configuration says otherwise.
    struct Fields {
        var id: String
        var name: String?
        var free: String?
        var capacity: String?
        var occupied: String?
        var time: String?
        var timeFormat: String
        var state: String?
        var reliable: [String]?
    }

    static func defaults(_ format: Format) -> Fields {
        switch format {
        case .wfsGeoJSON:
            return Fields(id: "park_id", name: "park_name", free: "obs_free", capacity: "obs_max", time: "obs_ts", timeFormat: "yyyy-MM-dd HH:mm:ss", state: "obs_state", reliable: ["1"])
        case .ngsiV2:
            return Fields(id: "id", name: "name", free: "availableSpotNumber", capacity: "totalSpotNumber", time: "observationDateTime", timeFormat: "iso8601", state: "status", reliable: ["Offen", "Geschlossen", "open", "closed"])
        case .csv:
            return Fields(id: "Name", name: "Name", capacity: "Capacity", occupied: "OccupiedSites", time: "Timestamp", timeFormat: "epoch_ms", state: "OpeningState", reliable: ["Geöffnet", "Geschlossen"])
        case .xml:
            return Fields(id: "ID", name: "Name", free: "Aktuell", capacity: "Gesamt", time: "Zeitstempel", timeFormat: "dd.MM.yyyy HH:mm:ss", state: "Status", reliable: ["Offen", "Geschlossen"])
        case .datex2:
            return Fields(id: "id", timeFormat: "iso8601", state: "parkingSiteStatus",
                          reliable: ["spacesAvailable", "almostFull", "full", "fullAtEntrance", "enoughSpacesAvailable", "noMoreParkingSpacesAvailable", "closed"])
        case .geojson:
            return Fields(id: "id", name: "name", timeFormat: "iso8601")
        }
    }

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        let format = config[C.format]
        let here = "(here: \(format?.rawValue ?? ""))"
        if config.has(C.staticURL), format != .datex2 {
            problems.append(ConfigProblem(key: C.staticURL.name, "only used with format datex2 \(here)"))
        }
        for key in [C.geometryField.key, C.crs.key] where config.has(key) && format?.isGeoJSON != true {
            problems.append(ConfigProblem(key: key.name, "only used with format geojson or wfs-geojson \(here)"))
        }
        problems += XMLLimitKeys.check(config)
        for key in XMLLimitKeys.keys() where config.has(key) && format != .xml && format != .datex2 {
            problems.append(ConfigProblem(key: key.name, "only used with format xml or datex2 \(here)"))
        }
        if config.has(C.recordElement), format != .xml {
            problems.append(ConfigProblem(key: C.recordElement.name, "only used with format xml \(here)"))
        }
        for key in [C.encoding.key, C.delimiter.key] where config.has(key) && format != .csv {
            problems.append(ConfigProblem(key: key.name, "only used with format csv \(here)"))
        }
        if config.has(C.pageSize), format != .ngsiV2 {
            problems.append(ConfigProblem(key: C.pageSize.name, "only used with format ngsi-v2 \(here)"))
        }
        if config.has(C.pageSize), !(1...1000).contains(config[C.pageSize]) {
            problems.append(ConfigProblem(key: C.pageSize.name, "must be between 1 and 1000 (the NGSI v2 maximum), got \(config[C.pageSize])"))
        }
        if config.has(C.delimiter), config[C.delimiter].utf8.count != 1 {
            problems.append(ConfigProblem(key: C.delimiter.name, "must be one ASCII character, got '\(config[C.delimiter])'"))
        }
        if config.has(C.timezone), (try? LocalTimeResolver(zone: config[C.timezone])) == nil {
            problems.append(ConfigProblem(key: C.timezone.name, "unknown time zone '\(config[C.timezone])' (use an IANA name such as Europe/Berlin)"))
        }
        if config.has(C.crs), case let crs = config[C.crs], !CoordinateTransform.supportedEPSG.contains(crs) {
            problems.append(ConfigProblem(key: C.crs.name, "EPSG:\(crs) is not supported (supported: \(CoordinateTransform.supportedEPSG.map(String.init).joined(separator: ", ")))"))
        }
        if let prefix = config[C.stationPrefix], !StationPrefix.isValid(prefix) {
            problems.append(ConfigProblem(key: C.stationPrefix.name, StationPrefix.problem(prefix)))
        }
        if let pattern = config[C.timeFormat], (try? TimestampParser(format: pattern, zone: .utc)) == nil {
            problems.append(ConfigProblem(key: C.timeFormat.name, "'\(pattern)' is not a timestamp pattern (e.g. dd.MM.yyyy HH:mm:ss, iso8601, epoch_ms)"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let fields = config.fields
        let time = try TimestampParser(format: fields.timeFormat, zone: try LocalTimeResolver(zone: config.timezone))
        let common = Common(fields: fields, time: time, prefix: config.stationPrefix ?? context.pipeline)
        let locations = try expandLocation(config.url)
        switch config.format {
        case .datex2:
            return XMLDocumentRun(references: try config.staticURL.map(expandLocation) ?? [], locations: locations,
                                  session: context.session, mapping: DATEX2ParkingMapping(common: common), limits: config.limits)
        case .xml:
            return XMLDocumentRun(locations: locations, session: context.session,
                                  mapping: FlatXMLParkingMapping(common: common, element: config.recordElement), limits: config.limits)
        case .csv:
            let options = config.csv
            return DocumentRun(locations: locations, session: context.session, decoder: { .csv(CSVDecoder(options: options, origin: $0)) },
                                  mapping: RecordParkingMapping(common: common, shape: .flat))
        case .ngsiV2:
            var run = DocumentRun(locations: locations, session: context.session, decoder: { .json(StreamingJSONDecoder(options: JSONDecoderOptions(), origin: $0)) },
                                     mapping: RecordParkingMapping(common: common, shape: .ngsi))
            run.pageSize = config.pageSize
            return run
        case .wfsGeoJSON, .geojson:
            var options = JSONDecoderOptions()
            options.recordPath = "$.features"
            let shape = RecordParkingMapping.Shape.feature(geometry: config.geometryField, defaultEPSG: config.crs)
            return DocumentRun(locations: locations, session: context.session, decoder: { .json(StreamingJSONDecoder(options: options, origin: $0)) },
                                  mapping: RecordParkingMapping(common: common, shape: shape))
        }
    }
}

/// What every parking mapping shares: field names, time parsing, one station per site, the two observations.
struct Common {
    let fields: ParkingConnector.Fields
    let time: TimestampParser
    /// Station keys are `<prefix>:<site id>`.
    let prefix: String
    var stations = StationTracker()
    /// The books of the batch in progress.
    var tally = ValueTally()

    /// The station key of a site.
    func key(_ id: String) -> String { "\(prefix):\(id)" }

    /// Parses a count: a JSON number or a numeric string; nil when absent or empty. A field the record holds is a
    /// value read; an empty or null one is counted as `missing_value`.
    mutating func count(_ value: JSONValue?, field: String, at: SourceLocation) -> Result<Double?, RecordError> {
        guard let value else { return .success(nil) }
        guard !value.isNull, !value.text.trimmingCharacters(in: .whitespaces).isEmpty else {
            tally.readAndSkip(.missingValue)
            return .success(nil)
        }
        tally.read()
        guard let number = value.number, number.isFinite else { return .failure(RecordError(at, field: field, "'\(value.text)' is not a number")) }
        guard number >= 0 else { return .failure(RecordError(at, field: field, "\(JSONValue.format(number)) is negative")) }
        return .success(number)
    }

    /// The observations of one site: free spaces (given, or capacity − occupied) and capacity.
    mutating func emit(key: String, station: () -> Station, free: Double?, capacity: Double?, occupied: Double?, time text: String?, timeField: String,
                       state: String?, at: SourceLocation, into items: inout [StagedItem]) -> [RecordError] {
        var free = free
        if let occupied {
            if free == nil, let capacity {
                guard occupied <= capacity else {
                    return [RecordError(at, field: fields.occupied, "\(JSONValue.format(occupied)) occupied is more than the capacity \(JSONValue.format(capacity))")]
                }
                free = capacity - occupied
            } else {
                // Free spaces given too, or no capacity to subtract from: occupied spaces have no property.
                tally.skip(.unmappedProperty)
            }
        }
        stations.emit(key, into: &items, station)
        guard free != nil || capacity != nil else { return [] }
        guard let text, !text.isEmpty else { return [RecordError(at, field: timeField, "missing observation time")] }
        let start: Int64
        do { start = try time.parse(text) } catch { return [RecordError(at, field: timeField, "\(error)")] }
        var quality: String?
        if let state, let reliable = fields.reliable, !reliable.contains(state) { quality = "unreliable" }
        if let free { items.append(.observation(Observation(stationKey: key, property: "parking_free_spaces", phenomenonStart: start, result: free, quality: quality))) }
        if let capacity { items.append(.observation(Observation(stationKey: key, property: "parking_capacity", phenomenonStart: start, result: capacity, quality: quality))) }
        return []
    }
}

/// GeoJSON features, NGSI v2 entities and CSV rows: records from the shared JSON / CSV decoders.
struct RecordParkingMapping: RecordMapping {
    enum Shape {
        case feature(geometry: String, defaultEPSG: Int)
        case ngsi
        case flat
    }

    var common: Common
    let shape: Shape
    var tally: ValueTally? {
        get { common.tally }
        set { common.tally = newValue ?? ValueTally() }
    }
    /// The document around the records (GeoJSON root `crs`).
    var envelope: JSONValue = .null

    mutating func envelope(_ envelope: JSONValue) { self.envelope = envelope }

    /// A field's value: for NGSI v2 the attribute's `value` (normalized) or the attribute itself (keyValues);
    /// for features a member of `properties` (or a dotted path from the feature).
    func field(_ r: Record, _ name: String) -> JSONValue? { Self.field(r, name, shape: shape) }

    static func field(_ r: Record, _ name: String, shape: Shape) -> JSONValue? {
        switch shape {
        case .ngsi:
            if name == "id" || name == "type" { return r[name] }
            guard let attribute = r[name] else { return nil }
            if case .object = attribute, let value = attribute["value"] { return value }
            return attribute
        case .feature:
            return r["properties.\(name)"] ?? r[name]
        case .flat:
            return r[name]
        }
    }

    mutating func map(_ r: Record, into items: inout [StagedItem]) -> [RecordError] {
        let at = r.location
        let f = common.fields
        guard let id = field(r, f.id), !id.isNull, !id.text.isEmpty else { return [RecordError(at, field: f.id, "missing site id")] }
        var location: GeoPoint?
        var source: SourceCoordinates?
        switch shape {
        case .feature(let geometryField, let defaultEPSG):
            if let geometry = r[geometryField], !geometry.isNull {
                switch Self.point(geometry, rootCRS: envelope["crs"], defaultEPSG: defaultEPSG) {
                case .success(let p): (location, source) = p
                case .failure(let reason): return [RecordError(at, field: geometryField, reason.reason)]
                }
            }
        case .ngsi:
            if let coordinates = field(r, "location")?["coordinates"], let lon = coordinates[0]?.number, let lat = coordinates[1]?.number {
                location = GeoPoint(longitude: lon, latitude: lat)
            } else if let lat = field(r, "lat")?.number, let lon = field(r, "lon")?.number {
                location = GeoPoint(longitude: lon, latitude: lat)
            }   // entities without a position (Heidelberg P02) keep none
        case .flat:
            break
        }
        var numbers: [Double?] = []
        for name in [f.free, f.capacity, f.occupied] {
            guard let name else { numbers.append(nil); continue }
            switch common.count(field(r, name), field: name, at: at) {
            case .success(let n): numbers.append(n)
            case .failure(let e): return [e]
            }
        }
        let key = common.key(id.text)
        let name = f.name.flatMap { field(r, $0) }.map(\.text)
        let state = f.state.flatMap { field(r, $0) }.map(\.text)
        let shape = self.shape
        let time = f.time.flatMap { field(r, $0) }.map(\.text)
        return common.emit(key: key, station: {
            var station = Station(key: key, name: name, kind: "parking_site", location: location, sourceCoordinates: source)
            var properties: [JSONValue.Member] = []
            switch shape {
            case .ngsi:
                for attribute in ["type", "streetAddress", "parkingSiteId"] {
                    if let v = Self.field(r, attribute, shape: shape), !v.isNull { properties.append(.init(attribute, v)) }
                }
            case .feature:
                for attribute in ["art", "park_zone", "park_url"] {
                    if let v = Self.field(r, attribute, shape: shape), !v.isNull, !v.text.isEmpty { properties.append(.init(attribute, v)) }
                }
            case .flat:
                break
            }
            station.properties = .object(properties)
            return station
        }, free: numbers[0], capacity: numbers[1], occupied: numbers[2], time: time,
           timeField: f.time ?? "time", state: state, at: at, into: &items)
    }

    /// The EPSG code of a GeoJSON `crs` member (`urn:ogc:def:crs:EPSG::25832`, `EPSG:25832`, `…/EPSG/0/25832`, CRS84).
    static func epsg(_ crs: JSONValue?) -> Int? {
        guard let name = crs?["properties"]?["name"]?.text, !name.isEmpty else { return nil }
        if name.hasSuffix("CRS84") { return 4326 }
        let digits = name.reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }

    struct GeometryProblem: Error { var reason: String }

    /// A Point's WGS84 position, and its source coordinates when it was projected.
    static func point(_ geometry: JSONValue, rootCRS: JSONValue?, defaultEPSG: Int) -> Result<(GeoPoint, SourceCoordinates?), GeometryProblem> {
        guard geometry["type"]?.text == "Point" else { return .failure(GeometryProblem(reason: "only Point geometries are read, got '\(geometry["type"]?.text ?? "")'")) }
        guard let x = geometry["coordinates"]?[0]?.number, let y = geometry["coordinates"]?[1]?.number else {
            return .failure(GeometryProblem(reason: "coordinates are not two numbers"))
        }
        let epsg = epsg(geometry["crs"]) ?? epsg(rootCRS) ?? defaultEPSG
        do {
            // GeoJSON writes [lon, lat] even when the CRS is the EPSG:4326 URN, and [easting, northing] for UTM.
            let point = try CoordinateTransform.toWGS84(x: x, y: y, epsg: epsg)
            return .success((point, epsg == 4326 ? nil : SourceCoordinates(x: x, y: y, epsg: epsg)))
        } catch {
            return .failure(GeometryProblem(reason: "\(error)"))
        }
    }
}

/// Kaiserslautern-style XML: one element per site with child elements as fields; the time in the record or once per document.
struct FlatXMLParkingMapping: XMLRecordMapping {
    var common: Common
    var tally: ValueTally {
        get { common.tally }
        set { common.tally = newValue }
    }
    let element: String
    var recordElements: Set<String> { [element] }
    var documentTime: String?

    mutating func begin(_ document: XMLDocument) {
        documentTime = common.fields.time.flatMap { document.header(endingWith: $0) }
    }

    mutating func map(_ record: XMLRecord, into items: inout [StagedItem]) -> [RecordError] {
        let node = record.node
        let at = record.location
        let f = common.fields
        guard let id = node.text(f.id) else { return [RecordError(at, field: f.id, "missing site id")] }
        var numbers: [Double?] = []
        for name in [f.free, f.capacity, f.occupied] {
            guard let name else { numbers.append(nil); continue }
            switch common.count(node.at(name).map { JSONValue.string($0.text.trimmingCharacters(in: .whitespacesAndNewlines)) }, field: name, at: at) {
            case .success(let n): numbers.append(n)
            case .failure(let e): return [e]
            }
        }
        let key = common.key(id)
        let name = f.name.flatMap { node.text($0) }
        return common.emit(key: key, station: { Station(key: key, name: name, kind: "parking_site") },
                           free: numbers[0], capacity: numbers[1], occupied: numbers[2], time: f.time.flatMap { node.text($0) } ?? documentTime,
                           timeField: f.time ?? "time", state: f.state.flatMap { node.text($0) }, at: at, into: &items)
    }
}

/// DATEX II 2.x parking (MDM): `parkingRecordStatus` elements joined with the static `parkingRecord`s.
struct DATEX2ParkingMapping: XMLRecordMapping {
    var common: Common
    var tally: ValueTally {
        get { common.tally }
        set { common.tally = newValue }
    }
    let recordElements: Set<String> = ["parkingRecordStatus", "parkingRecord"]
    let referenceElements: Set<String> = ["parkingRecord"]
    var sites: [String: (name: String?, capacity: Double?, location: GeoPoint?, type: String?)] = [:]
    var publicationTime: String?

    static func site(_ node: XMLNode) -> (name: String?, capacity: Double?, location: GeoPoint?, type: String?) {
        var location: GeoPoint?
        if let point = node.descendant("pointCoordinates"), let lat = point.text("latitude").flatMap(Double.init), let lon = point.text("longitude").flatMap(Double.init) {
            location = GeoPoint(longitude: lon, latitude: lat)
        }
        return (node.child("parkingName")?.localizedText(["de", "en"]), node.text("parkingNumberOfSpaces").flatMap(Double.init), location, node.typeName)
    }

    mutating func reference(_ document: XMLDocument) throws {
        for record in document.records {
            if let id = record.node.attributes["id"] { sites[id] = Self.site(record.node) }
        }
    }

    mutating func begin(_ document: XMLDocument) {
        publicationTime = document.header(endingWith: "payloadPublication/publicationTime")
    }

    mutating func map(_ record: XMLRecord, into items: inout [StagedItem]) -> [RecordError] {
        let node = record.node
        let at = record.location
        if node.name == "parkingRecord" {
            // A static table given as `url`: stations only.
            guard let id = node.attributes["id"] else { return [RecordError(at, field: "parkingRecord.id", "missing id")] }
            let site = Self.site(node)
            sites[id] = site
            let key = common.key(id)
            common.stations.emit(key, into: &items) { Self.station(key, site) }
            return []
        }
        guard let id = node.child("parkingRecordReference")?.attributes["id"], !id.isEmpty else {
            return [RecordError(at, field: "parkingRecordReference.id", "missing reference to the parking record")]
        }
        let occupancy = node.child("parkingOccupancy")
        var numbers: [String: Double] = [:]
        for name in ["parkingNumberOfSpacesOverride", "parkingNumberOfVacantSpaces", "parkingNumberOfOccupiedSpaces"] {
            switch common.count(occupancy?.at(name).map { JSONValue.string($0.text.trimmingCharacters(in: .whitespacesAndNewlines)) },
                                field: "parkingOccupancy.\(name)", at: at) {
            case .success(let n): numbers[name] = n
            case .failure(let e): return [e]
            }
        }
        let site = sites[id]
        let key = common.key(id)
        var capacity = numbers["parkingNumberOfSpacesOverride"]
        if capacity == nil, let fromTable = site?.capacity {
            // The static table's capacity is a value of this status record.
            common.tally.read()
            capacity = fromTable
        }
        let timeText = node.text("parkingStatusOriginTime") ?? publicationTime
        return common.emit(key: key, station: { Self.station(key, site ?? (nil, nil, nil, nil)) },
                           free: numbers["parkingNumberOfVacantSpaces"], capacity: capacity, occupied: numbers["parkingNumberOfOccupiedSpaces"],
                           time: timeText, timeField: "parkingStatusOriginTime", state: node.text("parkingSiteStatus"), at: at, into: &items)
    }

    static func station(_ key: String, _ site: (name: String?, capacity: Double?, location: GeoPoint?, type: String?)) -> Station {
        var station = Station(key: key, name: site.name, kind: "parking_site", location: site.location)
        if let type = site.type { station.properties = .object([.init("datex2_type", .string(type))]) }
        return station
    }
}
