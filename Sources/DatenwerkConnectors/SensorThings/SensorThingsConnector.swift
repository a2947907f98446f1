import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// OGC SensorThings API v1.0/v1.1 (FROST-Server, …): Things with their Locations, Datastreams with
/// `unitOfMeasurement` and ObservedProperty, and their Observations.
///
/// Over HTTP it asks the service root for
/// `Datastreams?$expand=Thing($expand=Locations),ObservedProperty,Observations($filter=…;$orderby=phenomenonTime;$top=n)`
/// (or `Datastreams(id)?$expand=…` per configured id), follows `@iot.nextLink` of the collection and
/// `Observations@iot.nextLink` of each Datastream verbatim (relative links resolve against the page they came
/// from).
///
/// **Stations.** One station per Thing, keyed `<station_prefix>:<Thing @iot.id>`; the prefix defaults to the
/// PIPELINE name. A Thing's `@iot.id` is unique only on its own server (every FROST server starts at Thing 1), so
/// two municipalities' servers loaded into one installation must not share keys; ids are opaque text.
///
/// **What a Datastream becomes.** Its property: `properties` looked up by the Datastream's `@iot.id`, then its
/// `name`, then the ObservedProperty's `name`, then its `definition` (the most specific wins, so one Datastream
/// can be mapped apart from the others of its ObservedProperty). Its unit: `units` looked up the same way (an
/// override for servers whose `unitOfMeasurement` is wrong or empty), else `unitOfMeasurement` resolved by
/// `symbol`, then `name` (`Anzahl`, `Grad Celsius`), then `definition` (UCUM and QUDT IRIs such as
/// `http://qudt.org/vocab/unit/NUM`), through the shared table of unit spellings. The first of the three that
/// resolves decides; a unit that does not fit the property's dimension refuses the Datastream.
///
/// **Zero silent drops.** Every Observation read is counted: loaded; quarantined (a bad time or result; a refused
/// Datastream — unit unresolved, no Thing — is quarantined once, naming the Datastream, its unit fields and a
/// "did you mean", and stands for its expanded Observations); or skipped as `filtered` (not in `datastreams`),
/// `unmapped_property` (no `properties` entry), `already_loaded` (not after `since`) or `refused_series` (later
/// pages of a refused Datastream).
///
/// Saved responses (files) work too: `url` then names the files, and `datastream`/`thing`/`locations` give the
/// context that a saved `Datastreams(id)/Observations` page does not carry.
struct SensorThingsConnector: ConfiguredConnector {
    let kind = "sensorthings"
    let summary = "OGC SensorThings API v1.0/1.1 (FROST-Server …): Things, Locations, Datastreams and Observations, paged by @iot.nextLink"

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true,
                                         "the service root (https://…/v1.1), or saved responses (files, `*` matches several)")
        static let datastreams = Setting<[String]>("datastreams", "only these Datastream ids (@iot.id); default: all")
        static let properties = Setting<[String: String]>("properties", required: true,
                                                          "Datastream @iot.id or name, or ObservedProperty name or definition → vocabulary key (the most specific wins), e.g. {Temperature: air_temperature, \"42\": vehicle_count}")
        static let units = Setting<[String: String]>("units",
                                                     "Datastream @iot.id or name, or ObservedProperty name or definition → the unit to use instead of its unitOfMeasurement, e.g. {\"42\": \"1\"}")
        static let stationPrefix = Setting<String>("station_prefix", "station keys are <station_prefix>:<Thing @iot.id>; default: the pipeline name (Thing ids are unique only per server)")
        static let pageSize = DefaultedSetting("page_size", default: 1000, "Observations per page ($top); servers may cap it")
        static let since = Setting<String>("since", "only Observations with phenomenonTime after this instant (ISO 8601, e.g. 2025-01-01T00:00:00Z)")
        static let datastream = Setting<String>("datastream", .location, "for saved Observations pages: the Datastream entity they belong to (file or URL)")
        static let thing = Setting<String>("thing", .location, "for a saved Datastream without an expanded Thing: the Thing entity (file or URL)")
        static let locations = Setting<String>("locations", .location, "for a saved Thing without expanded Locations: its Location entity or collection (file or URL)")
        static let keys = [url.key, datastreams.key, properties.key, units.key, stationPrefix.key, pageSize.key, since.key, datastream.key, thing.key, locations.key]

        var url: String
        var datastreams: [String]?
        var properties: [String: String]
        var units: [String: String]
        var stationPrefix: String?
        var pageSize: Int
        /// `since` in µs.
        var since: Int64?
        /// Saved context documents, in the order they are read: locations, thing, datastream.
        var savedContext: [String]

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            datastreams = config[Self.datastreams]
            properties = try config.required(Self.properties)
            units = config[Self.units] ?? [:]
            stationPrefix = config[Self.stationPrefix]
            pageSize = config[Self.pageSize]
            since = try config[Self.since].map { try SensorThingsConnector.instant.parse($0) }
            savedContext = [config[Self.locations], config[Self.thing], config[Self.datastream]].compactMap { $0 }
        }
    }
    let sampleYAML = """
        version: 1
        name: sensorthings-hamburg-luft
        tenant: "02000000"
        schedule: "*/15 * * * *"
        source:
          kind: sensorthings
          # Any SensorThings v1.0/v1.1 service root, e.g. Hamburg's urban data platform (FROST-Server):
          url: https://iot.hamburg.de/v1.1
          datastreams: ["12345", "12346"]
          properties:
            Lufttemperatur: air_temperature
            "http://www.opengis.net/def/property/OGC/0/AirTemperature": air_temperature
            NO2: no2_concentration
          # Only where a Datastream's unitOfMeasurement is wrong or empty (by Datastream @iot.id or name):
          units:
            "12346": ug/m3
          page_size: 1000
          since: 2025-01-01T00:00:00Z
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        for (name, key) in (config[C.properties] ?? [:]).sorted(by: { $0.key < $1.key }) where Vocabulary.property(key) == nil {
            let known = Vocabulary.properties.map(\.key)
            let suggestion = closestMatch(to: key, in: known).map { "; did you mean '\($0)'?" } ?? ""
            problems.append(ConfigProblem(key: C.properties.name, "'\(name)' maps to '\(key)', which is not in the vocabulary\(suggestion)"))
        }
        for (name, unit) in (config[C.units] ?? [:]).sorted(by: { $0.key < $1.key }) where Units.canonicalSymbol(unit) == nil {
            problems.append(ConfigProblem(key: C.units.name, "'\(name)' has unit '\(unit)': \(Self.unknownUnit(unit))"))
        }
        if let prefix = config[C.stationPrefix], !StationPrefix.isValid(prefix) {
            problems.append(ConfigProblem(key: C.stationPrefix.name, StationPrefix.problem(prefix)))
        }
        if config.has(C.pageSize), config[C.pageSize] < 1 {
            problems.append(ConfigProblem(key: C.pageSize.name, "must be at least 1, not \(config[C.pageSize])"))
        }
        if let since = config[C.since], (try? Self.instant.parse(since)) == nil {
            problems.append(ConfigProblem(key: C.since.name, "'\(since)' is not an ISO 8601 instant such as 2025-01-01T00:00:00Z"))
        }
        if let url = config[C.url], !Self.isHTTP(url), config.has(C.pageSize) {
            problems.append(ConfigProblem(key: C.pageSize.name, "only applies to a service root URL, not to saved files"))
        }
        return problems
    }

    static let instant = try! TimestampParser(format: "iso8601", zone: .utc)

    /// Why `unit` is not a unit, with the shared table's (deterministic) "did you mean".
    static func unknownUnit(_ unit: String) -> String {
        do {
            _ = try Units.conversion(from: unit, to: "1")
            return "not a known unit"
        } catch {
            return error.reason
        }
    }


    static func isHTTP(_ location: String) -> Bool { location.hasPrefix("http://") || location.hasPrefix("https://") }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let url = config.url
        let mapping = Mapping(
            properties: config.properties, units: config.units, stationPrefix: config.stationPrefix ?? context.pipeline,
            datastreams: config.datastreams.map(Set.init),
            since: config.since, serviceRoot: Self.isHTTP(url) ? Self.trimmedRoot(url) : nil, pageSize: config.pageSize)
        var requests: [PageRequest<Context>] = []
        for location in config.savedContext {
            requests.append(PageRequest(location: location, recordPath: "$", context: .saved))
        }
        if Self.isHTTP(url) {
            if let ids = config.datastreams {
                for id in ids { requests.append(PageRequest(location: mapping.datastreamURL(id: id), recordPath: "$", context: .datastreams)) }
            } else {
                requests.append(PageRequest(location: mapping.datastreamsURL(), recordPath: "$.value", context: .datastreams))
            }
        } else {
            for file in try expandLocation(url) { requests.append(PageRequest(location: file, recordPath: "$", context: .saved)) }
        }
        return PagedDocumentRun(requests, session: context.session, mapping: mapping)
    }

    static func trimmedRoot(_ url: String) -> String {
        var root = url
        while root.hasSuffix("/") { root.removeLast() }
        return root
    }

    /// What the records of a document are.
    enum Context: Sendable {
        /// Datastreams with expanded Thing/Locations, ObservedProperty and Observations.
        case datastreams
        /// A page of the Observations of one Datastream.
        case observations(String)
        /// A saved file: the kind of each entity is told by its members.
        case saved
    }

    /// What the Observations of one Datastream become.
    struct Target {
        var stationKey: String
        var property: String
        var conversion: Units.Conversion
    }

    /// A Datastream's fate: its Observations load into a target, or are counted under a skip rule.
    enum Fate {
        case load(Target)
        case skip(SkipRule)
    }

    struct Mapping: PagedMapping {
        let properties: [String: String]
        let units: [String: String]
        let stationPrefix: String
        let datastreams: Set<String>?
        let since: Int64?
        let serviceRoot: String?
        let pageSize: Int
        var stations = StationTracker()
        var tally = ValueTally()
        /// Datastream id → where its Observations go, or the rule they are skipped under.
        var fates: [String: Fate] = [:]
        /// Context from saved files (`thing`, `locations`, `datastream` keys, or the last entity of its kind).
        var savedThing: JSONValue?
        var savedLocations: [JSONValue] = []
        var savedDatastream: String?

        init(properties: [String: String], units: [String: String] = [:], stationPrefix: String, datastreams: Set<String>?, since: Int64?,
             serviceRoot: String?, pageSize: Int) {
            self.properties = properties
            self.units = units
            self.stationPrefix = stationPrefix
            self.datastreams = datastreams
            self.since = since
            self.serviceRoot = serviceRoot
            self.pageSize = pageSize
        }

        // MARK: URLs

        /// `$filter`, `$orderby` and `$top` for Observations, written for use inside `$expand=Observations(…)` (`;`) or as a query (`&`).
        func observationOptions(separator: String) -> String {
            var options: [String] = []
            if let since { options.append("$filter=phenomenonTime%20gt%20" + TimestampParser.formatISO8601(since)) }
            options.append("$orderby=phenomenonTime")
            options.append("$top=\(pageSize)")
            return options.joined(separator: separator)
        }

        var expand: String {
            "$expand=Thing($expand=Locations),ObservedProperty,Observations(\(observationOptions(separator: ";")))"
        }

        func datastreamsURL() -> String { "\(serviceRoot ?? "")/Datastreams?\(expand)" }

        func datastreamURL(id: String) -> String { "\(serviceRoot ?? "")/Datastreams(\(Self.literal(id)))?\(expand)" }

        func observationsURL(id: String) -> String {
            "\(serviceRoot ?? "")/Datastreams(\(Self.literal(id)))/Observations?\(observationOptions(separator: "&"))"
        }

        /// An id in a resource path: bare when numeric, else an OData string literal.
        static func literal(_ id: String) -> String {
            if !id.isEmpty, id.allSatisfy(\.isNumber) { return id }
            let quoted = "'" + id.replacingOccurrences(of: "'", with: "''") + "'"
            return quoted.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? quoted
        }

        /// A next link as the server wrote it; a relative one resolves against the page it came from.
        static func resolve(_ link: String, against page: String) -> String {
            if link.hasPrefix("http://") || link.hasPrefix("https://") { return link }
            if SensorThingsConnector.isHTTP(page), let base = URL(string: page), let resolved = URL(string: link, relativeTo: base) { return resolved.absoluteString }
            return link
        }

        mutating func nextPage(after request: PageRequest<Context>, envelope: JSONValue, records: Int, headers: [(String, String)]) throws -> PageRequest<Context>? {
            var paginator = JSONLinkPaginator(path: "@iot.nextLink")
            guard SensorThingsConnector.isHTTP(request.location),
                  let next = paginator.next(after: PageResult(url: request.location, headers: headers, envelope: envelope, records: records)) else { return nil }
            return PageRequest(location: next, recordPath: "$.value", context: request.context)
        }

        // MARK: Records

        mutating func map(_ record: Record, context: Context, into items: inout [StagedItem], follow: inout [PageRequest<Context>]) -> [RecordError] {
            let entity = record.asJSON
            switch context {
            case .datastreams:
                return mapDatastream(entity, at: record.location, into: &items, follow: &follow)
            case .observations(let id):
                return mapObservation(entity, at: record.location, fate: fates[id], into: &items)
            case .saved:
                if case .array(let members) = entity["value"] ?? .null {
                    // A saved collection: each member on its own, located by its index.
                    for (index, member) in members.enumerated() {
                        var at = record.location
                        at.path = (at.path ?? "$") + ".value[\(index)]"
                        let before = tally
                        let firstItem = items.count
                        let found = mapSaved(member, at: at, into: &items, follow: &follow)
                        if var first = found.first {
                            if found.count > 1 { first.reason += " (and \(found.count - 1) more in this record)" }
                            let values = tally.unsettled(since: before, items: items, from: firstItem)
                            items.append(.quarantined(QuarantinedRecord(error: first, raw: member.serialized, values: values)))
                        }
                    }
                    return []
                }
                return mapSaved(entity, at: record.location, into: &items, follow: &follow)
            }
        }

        /// A saved entity, told by its members: Observation (`result`), Datastream (`unitOfMeasurement`),
        /// Location (`location`), Thing (`Datastreams…` or `Locations…`). Others (FeatureOfInterest,
        /// HistoricalLocation, Sensor) carry nothing for the common model.
        private mutating func mapSaved(_ entity: JSONValue, at: SourceLocation, into items: inout [StagedItem], follow: inout [PageRequest<Context>]) -> [RecordError] {
            if entity["result"] != nil || entity["phenomenonTime"] != nil && entity["unitOfMeasurement"] == nil {
                guard let id = savedDatastream else {
                    tally.read()
                    return [RecordError(at, field: "Datastream", "no Datastream for this Observation; set 'datastream' to the saved Datastream entity")]
                }
                return mapObservation(entity, at: at, fate: fates[id], into: &items)
            }
            if entity["unitOfMeasurement"] != nil {
                return mapDatastream(entity, at: at, into: &items, follow: &follow)
            }
            if entity["location"] != nil, entity["encodingType"] != nil {
                savedLocations.append(entity)
                return []
            }
            if entity["Datastreams@iot.navigationLink"] != nil || entity["Locations@iot.navigationLink"] != nil || entity["Locations"] != nil {
                savedThing = entity
                return []
            }
            return []
        }

        /// The first entry of `map` for this Datastream: by its @iot.id, its name, its ObservedProperty's name,
        /// then definition (the most specific first).
        static func lookup(_ map: [String: String], id: String, _ ds: JSONValue) -> String? {
            let observed = ds["ObservedProperty"]
            let keys = [id, ds["name"]?.stringValue, observed?["name"]?.stringValue, observed?["definition"]?.stringValue]
            return keys.lazy.compactMap { $0 }.compactMap { map[$0] }.first
        }

        /// The Datastream's unit as a UCUM code: the `units` override, else `unitOfMeasurement` by symbol, then
        /// name, then definition. Nil when none of them resolves.
        func unit(of ds: JSONValue, id: String) -> (code: String, from: String)? {
            if let override = Self.lookup(units, id: id, ds) {
                return Units.canonicalSymbol(override).map { ($0, "units: '\(override)'") }
            }
            let uom = ds["unitOfMeasurement"] ?? .null
            let symbol = uom["symbol"]?.stringValue ?? "", name = uom["name"]?.stringValue ?? "", definition = uom["definition"]?.stringValue ?? ""
            if let code = Units.canonicalSymbol(symbol) { return (code, "symbol '\(symbol)'") }
            if let code = Units.fromName(name) { return (code, "name '\(name)'") }
            if let code = Units.fromDefinition(definition) { return (code, "definition '\(definition)'") }
            return nil
        }

        /// The Datastream's `unitOfMeasurement` as a message shows it: `symbol 'Kfz', name 'Anzahl', definition '…'`.
        static func describeUnit(_ ds: JSONValue) -> String {
            let uom = ds["unitOfMeasurement"] ?? .null
            guard case .object = uom else { return "no unitOfMeasurement" }
            return ["symbol", "name", "definition"].map { "\($0) '\(uom[$0]?.stringValue ?? "")'" }.joined(separator: ", ")
        }

        private mutating func mapDatastream(_ ds: JSONValue, at: SourceLocation, into items: inout [StagedItem], follow: inout [PageRequest<Context>]) -> [RecordError] {
            // Its expanded Observations are the values this record offers, whatever becomes of the Datastream.
            let expanded: [JSONValue]
            if case .array(let observations) = ds["Observations"] ?? .null { expanded = observations } else { expanded = [] }
            guard let idValue = ds["@iot.id"], !idValue.isNull, case let id = idValue.text, !id.isEmpty else {
                tally.read(expanded.count)
                return [RecordError(at, field: "@iot.id", "Datastream without an id")]
            }
            savedDatastream = id
            let label = ds["name"]?.stringValue.map { "Datastream \(id) '\($0)'" } ?? "Datastream \(id)"
            /// Counts the expanded Observations under `rule`; later pages of this Datastream go the same way.
            func skip(_ rule: SkipRule) -> [RecordError] {
                fates[id] = .skip(rule)
                tally.readAndSkip(rule, expanded.count)
                return []
            }
            /// Refuses the Datastream: quarantined once with its text, standing for its expanded Observations.
            func refuse(_ field: String, _ reason: String) -> [RecordError] {
                fates[id] = .skip(.refusedSeries)
                tally.read(expanded.count)
                items.append(.quarantined(QuarantinedRecord(error: RecordError(at, field: field, reason), raw: ds.serialized, values: expanded.count)))
                return []
            }
            if let datastreams, !datastreams.contains(id) { return skip(.filtered) }
            // Not asked for: nothing wrong, but its values are counted.
            guard let property = Self.lookup(properties, id: id, ds), let canonical = Vocabulary.property(property) else { return skip(.unmappedProperty) }
            guard let unit = unit(of: ds, id: id) else {
                let symbol = ds["unitOfMeasurement"]?["symbol"]?.stringValue ?? ""
                let hint = symbol.isEmpty ? "" : " (symbol: \(SensorThingsConnector.unknownUnit(symbol)))"
                return refuse("unitOfMeasurement", "\(label) (\(property)): unit not recognised from \(Self.describeUnit(ds))\(hint); "
                    + "set it with units: {\"\(id)\": <unit>}")
            }
            let conversion: Units.Conversion
            do {
                conversion = try Units.conversion(from: unit.code, to: canonical.unit)
            } catch {
                return refuse("unitOfMeasurement", "\(label) (\(property)): its unit (\(unit.from) → \(unit.code)) does not fit \(property) in \(canonical.unit): \(error.reason)")
            }
            guard let thing = ds["Thing"] ?? savedThing, let thingID = thing["@iot.id"], !thingID.isNull else {
                return refuse("Thing", "\(label) has no expanded Thing (the navigation link is not trusted: servers and the spec get it wrong)")
            }
            let key = "\(stationPrefix):\(thingID.text)"
            emitStation(key, thing: thing, into: &items)
            let target = Target(stationKey: key, property: property, conversion: conversion)
            fates[id] = .load(target)
            if case .array = ds["Observations"] ?? .null {
                for (index, observation) in expanded.enumerated() {
                    var place = at
                    place.path = (at.path ?? "$") + ".Observations[\(index)]"
                    let found = mapObservation(observation, at: place, fate: .load(target), into: &items)
                    if var first = found.first {
                        if found.count > 1 { first.reason += " (and \(found.count - 1) more in this Observation)" }
                        items.append(.quarantined(QuarantinedRecord(error: first, raw: observation.serialized)))
                    }
                }
                // Nested paging: the rest of this Datastream's Observations.
                if let link = ds["Observations@iot.nextLink"]?.stringValue, !link.isEmpty, serviceRoot != nil {
                    follow.append(PageRequest(location: Self.resolve(link, against: at.origin), recordPath: "$.value", context: .observations(id)))
                }
            } else if serviceRoot != nil {
                // Observations not expanded: read them per Datastream.
                follow.append(PageRequest(location: observationsURL(id: id), recordPath: "$.value", context: .observations(id)))
            }
            return []
        }

        private mutating func emitStation(_ key: String, thing: JSONValue, into items: inout [StagedItem]) {
            let locations: [JSONValue]
            if case .array(let inline) = thing["Locations"] ?? .null { locations = inline } else { locations = savedLocations }
            stations.emit(key, into: &items) {
                var station = Station(key: key, name: thing["name"]?.stringValue, kind: "sensor_platform")
                var properties: [JSONValue.Member] = []
                if let description = thing["description"], !description.isNull { properties.append(.init("description", description)) }
                if let extra = thing["properties"], case .object(let members) = extra, !members.isEmpty { properties.append(.init("properties", extra)) }
                for location in locations {
                    if let point = Self.point(location["location"] ?? .null) {
                        station.location = point
                        if let name = location["name"]?.stringValue { properties.append(.init("location_name", .string(name))) }
                        break
                    }
                }
                station.properties = .object(properties)
                return station
            }
        }

        /// A GeoJSON Point, bare or inside a Feature, `[lon, lat(, alt)]` in WGS84.
        static func point(_ geojson: JSONValue) -> GeoPoint? {
            let geometry = geojson["type"]?.stringValue == "Feature" ? (geojson["geometry"] ?? .null) : geojson
            guard geometry["type"]?.stringValue == "Point", let c = geometry["coordinates"],
                  let lon = c[0]?.numberValue, let lat = c[1]?.numberValue,
                  (-180...180).contains(lon), (-90...90).contains(lat)
            else { return nil }
            return GeoPoint(longitude: lon, latitude: lat, altitude: c[2]?.numberValue)
        }

        /// One Observation: one value read; loaded, or a problem (quarantined by the caller), or skipped.
        private mutating func mapObservation(_ o: JSONValue, at: SourceLocation, fate: Fate?, into items: inout [StagedItem]) -> [RecordError] {
            tally.read()
            let target: Target
            switch fate {
            case .load(let t): target = t
            case .skip(let rule):
                tally.skip(rule)
                return []
            case nil:
                return [RecordError(at, field: "Datastream", "an Observation of a Datastream this run has not read")]
            }
            let time = o["phenomenonTime"]?.stringValue ?? ""
            let start: Int64, end: Int64?
            do {
                let parts = time.split(separator: "/", maxSplits: 1)
                guard let first = parts.first else { throw TimestampError(.mismatch, text: time, format: "iso8601", reason: "missing") }
                start = try SensorThingsConnector.instant.parse(first)
                end = try parts.count == 2 ? SensorThingsConnector.instant.parse(parts[1]) : nil
            } catch {
                return [RecordError(at, field: "phenomenonTime", time.isEmpty ? "missing" : "\(error)")]
            }
            if let since, start <= since {
                tally.skip(.alreadyLoaded)
                return []
            }
            let result = o["result"] ?? .null
            let value: Double
            switch result {
            case .number(let d): value = d
            case .string(let s):
                guard let d = Double(s.trimmingCharacters(in: .whitespaces)), d.isFinite else {
                    return [RecordError(at, field: "result", "'\(s)' is not a number")]
                }
                value = d
            case .null: return [RecordError(at, field: "result", "is null")]
            default: return [RecordError(at, field: "result", "\(result.serialized) is not a number")]
            }
            var quality: String?
            switch o["resultQuality"] ?? .null {
            case .string(let s): quality = s
            case let q: quality = q["quality"]?.stringValue
            }
            items.append(.observation(Observation(
                stationKey: target.stationKey, property: target.property, phenomenonStart: start, phenomenonEnd: end,
                result: target.conversion.apply(value), quality: quality)))
            return []
        }
    }
}
