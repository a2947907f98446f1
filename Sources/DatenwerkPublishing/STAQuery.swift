import DatenwerkCore
import DatenwerkTransforms
import Foundation

// OGC SensorThings API v1.1 (OGC 18-088), read-only: the entity model, resource paths and query options
// (`$top`, `$skip`, `$count`, `$orderby`, `$select`, `$expand`, `$filter`) parsed into typed values. No I/O:
// DatenwerkPostgres compiles these values to parameterised SQL (SensorThingsQueries), DatenwerkServer answers.
//
// Every limit is an error, never a trap: an option longer than `STALimits.optionLength`, a `$filter` nested
// deeper than `STALimits.depth` or with more than `STALimits.tokens` tokens, a number that is not a finite
// double, a time outside years 1…9999 — each a `STAQueryError` naming the option (the server answers 400).

/// The limits of the query parser.
package enum STALimits {
    /// Characters of one query option's value (a `$filter`, an `$expand`, …).
    package static let optionLength = 32_768
    /// Nesting of a `$filter` (parentheses, `not`, unary minus, function arguments) and of `$expand`.
    package static let depth = 32
    /// Tokens of one `$filter`.
    package static let tokens = 2000
    /// Levels of nested `$expand`.
    package static let expandDepth = 4
    /// Largest `$top` (larger values are reduced to it, as FROST-Server does); the default is `defaultTop`.
    package static let maxTop = 10_000
    package static let defaultTop = 100
    /// Largest `$skip`.
    package static let maxSkip = 1_000_000_000
    /// Points of one WKT geometry literal.
    package static let geometryPoints = 10_000
}

/// A query option or path that cannot be answered: the server's 400 (or 404 for `notFound`).
package struct STAQueryError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        case syntax, tooLong, tooDeep, number, unknownProperty, type, unsupported, notFound
    }
    package var kind: Kind
    /// The query option (`$filter`) or `path`.
    package var option: String
    package var message: String
    package init(_ kind: Kind, _ option: String, _ message: String) {
        self.kind = kind
        self.option = option
        self.message = message
    }
    package var description: String { "\(option): \(message)" }
}

// MARK: - Entity model

/// An entity's `@iot.id`: a number, or (Observations) a string.
package enum STAKey: Sendable, Hashable, CustomStringConvertible {
    case int(Int64)
    case string(String)

    /// How the key is written in a path: numbers bare, strings quoted with `''` for a quote.
    package var description: String {
        switch self {
        case .int(let n): return String(n)
        case .string(let s): return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
        }
    }

    package var json: JSONValue {
        switch self {
        case .int(let n): return .number(Double(n))
        case .string(let s): return .string(s)
        }
    }
}

/// The ids (docs/sensorthings.md): a station's id is the id of its Thing, Location, HistoricalLocation and
/// FeatureOfInterest; a property's id is a 22-bit number from the MD5 of its key (`STAIds.propertyBits`); a
/// series' id (its Datastream and Sensor) is `station id × 2²² + property id`; an Observation's id is the string
/// `"<datastream id>:<phenomenon start in microseconds since 1970 UTC>"`. All are computed from the stored natural
/// keys, so they survive restarts, re-runs and reloads.
package enum STAIds {
    package static let propertyBits: Int64 = 22
    package static let propertyMask: Int64 = (1 << 22) - 1

    package static func datastream(station: Int64, property: Int64) -> Int64 { station << propertyBits | property }
    package static func station(ofDatastream id: Int64) -> Int64 { id >> propertyBits }
    package static func property(ofDatastream id: Int64) -> Int64 { id & propertyMask }

    package static func observation(datastream: Int64, startMicros: Int64) -> String { "\(datastream):\(startMicros)" }

    /// The datastream and start of an Observation id, nil when `id` is not one.
    package static func observation(_ id: String) -> (datastream: Int64, startMicros: Int64)? {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 19, parts[1].count <= 20,
              let d = Int64(parts[0]), d >= 0, let t = Int64(parts[1]) else { return nil }
        return (d, t)
    }
}

/// The type of a property in `$filter` expressions.
package enum STAType: Sendable, Equatable {
    case number, string, time, geometry, bool, json, null
}

/// The eight entity sets of the sensing profile.
package enum STAEntitySet: String, Sendable, CaseIterable {
    case things = "Things", locations = "Locations", historicalLocations = "HistoricalLocations"
    case datastreams = "Datastreams", sensors = "Sensors", observedProperties = "ObservedProperties"
    case observations = "Observations", featuresOfInterest = "FeaturesOfInterest"

    /// Properties in the order they are written, with their `$filter` type.
    package var properties: [(name: String, type: STAType)] {
        switch self {
        case .things: return [("id", .number), ("name", .string), ("description", .string), ("properties", .json)]
        case .locations:
            return [("id", .number), ("name", .string), ("description", .string), ("encodingType", .string), ("location", .geometry), ("properties", .json)]
        case .historicalLocations: return [("id", .number), ("time", .time)]
        case .datastreams:
            return [("id", .number), ("name", .string), ("description", .string), ("unitOfMeasurement", .json),
                    ("observationType", .string), ("observedArea", .geometry), ("phenomenonTime", .time), ("resultTime", .time), ("properties", .json)]
        case .sensors:
            return [("id", .number), ("name", .string), ("description", .string), ("encodingType", .string), ("metadata", .string), ("properties", .json)]
        case .observedProperties:
            return [("id", .number), ("name", .string), ("definition", .string), ("description", .string), ("properties", .json)]
        case .observations:
            return [("id", .string), ("phenomenonTime", .time), ("result", .number), ("resultTime", .time), ("resultQuality", .string),
                    ("validTime", .time), ("parameters", .json)]
        case .featuresOfInterest:
            return [("id", .number), ("name", .string), ("description", .string), ("encodingType", .string),
                    ("feature", .geometry), ("properties", .json)]
        }
    }

    package func type(of property: String) -> STAType? { properties.first { $0.name == property }?.type }

    /// Navigation properties: name, target set, and whether it is a collection.
    package var navigation: [(name: String, target: STAEntitySet, collection: Bool)] {
        switch self {
        case .things: return [("Locations", .locations, true), ("HistoricalLocations", .historicalLocations, true), ("Datastreams", .datastreams, true)]
        case .locations: return [("Things", .things, true), ("HistoricalLocations", .historicalLocations, true)]
        case .historicalLocations: return [("Thing", .things, false), ("Locations", .locations, true)]
        case .datastreams:
            return [("Thing", .things, false), ("Sensor", .sensors, false), ("ObservedProperty", .observedProperties, false), ("Observations", .observations, true)]
        case .sensors: return [("Datastreams", .datastreams, true)]
        case .observedProperties: return [("Datastreams", .datastreams, true)]
        case .observations: return [("Datastream", .datastreams, false), ("FeatureOfInterest", .featuresOfInterest, false)]
        case .featuresOfInterest: return [("Observations", .observations, true)]
        }
    }

    package func navigation(_ name: String) -> (target: STAEntitySet, collection: Bool)? {
        navigation.first { $0.name == name }.map { ($0.target, $0.collection) }
    }

    /// Observations have string ids, every other set numbers.
    package var stringKeys: Bool { self == .observations }

    /// The rows a navigation from the entity `key` of this set leads to, in the target set.
    package func constraint(navigating name: String, from key: STAKey) -> STAConstraint? {
        switch (self, name, key) {
        case (.things, "Locations", .int(let s)), (.things, "HistoricalLocations", .int(let s)),
             (.locations, "Things", .int(let s)), (.locations, "HistoricalLocations", .int(let s)),
             (.historicalLocations, "Thing", .int(let s)), (.historicalLocations, "Locations", .int(let s)):
            return .key(.int(s))
        case (.things, "Datastreams", .int(let s)): return .station(s)
        case (.datastreams, "Thing", .int(let d)): return .key(.int(STAIds.station(ofDatastream: d)))
        case (.datastreams, "Sensor", .int(let d)), (.sensors, "Datastreams", .int(let d)): return .key(.int(d))
        case (.datastreams, "ObservedProperty", .int(let d)): return .key(.int(STAIds.property(ofDatastream: d)))
        case (.datastreams, "Observations", .int(let d)): return .datastream(d)
        case (.observedProperties, "Datastreams", .int(let p)): return .property(p)
        case (.observations, "Datastream", .string(let id)):
            return STAIds.observation(id).map { .key(.int($0.datastream)) } ?? .nothing
        case (.observations, "FeatureOfInterest", .string(let id)):
            return STAIds.observation(id).map { .key(.int(STAIds.station(ofDatastream: $0.datastream))) } ?? .nothing
        case (.featuresOfInterest, "Observations", .int(let s)): return .station(s)
        default: return nil
        }
    }
}

/// A condition a path or an `$expand` puts on the rows of an entity set.
package enum STAConstraint: Sendable, Hashable {
    /// The entity with this id.
    case key(STAKey)
    /// Rows of the station (Datastreams of a Thing, Observations of a FeatureOfInterest).
    case station(Int64)
    /// Observations of the Datastream.
    case datastream(Int64)
    /// Datastreams of the ObservedProperty.
    case property(Int64)
    /// No row (an id that cannot exist).
    case nothing
}

// MARK: - Paths

/// A resource path below the service root, resolved: the entity set whose rows answer it, the constraints that
/// select them, whether one entity (not a collection) is asked, and the entities on the way that must exist.
package struct STAResource: Sendable, Equatable {
    package var set: STAEntitySet
    package var constraints: [STAConstraint]
    package var single: Bool
    /// Entities along the path (set and constraints); a missing one makes the path a 404.
    package var along: [STAStep]
    /// `Things(1)/name`: only this property; `/$value`: its bare value.
    package var property: String?
    package var rawValue = false

    package struct STAStep: Sendable, Equatable {
        package var set: STAEntitySet
        package var constraints: [STAConstraint]
    }

    /// Parses `Things`, `Things(1)`, `Things(1)/Datastreams`, `Datastreams(5)/Observations`,
    /// `Observations('5:0')/Datastream/Thing`, `Things(1)/name`, `Things(1)/name/$value`.
    package static func parse(_ path: String) throws(STAQueryError) -> STAResource {
        guard path.count <= STALimits.optionLength else { throw STAQueryError(.tooLong, "path", "the path is too long") }
        let segments = try splitPath(path)
        guard let first = segments.first else { throw STAQueryError(.notFound, "path", "no entity set named") }
        guard let set = STAEntitySet(rawValue: first.name) else {
            throw STAQueryError(.notFound, "path", "no entity set named '\(short(first.name))'")
        }
        var resource = STAResource(set: set, constraints: [], single: false, along: [])
        if let key = first.key {
            resource.constraints = [.key(try parseKey(key, for: set))]
            resource.single = true
        }
        var index = 1
        while index < segments.count {
            let segment = segments[index]
            index += 1
            if let nav = resource.set.navigation(segment.name) {
                guard resource.single, case .key(let key) = resource.constraints.last else {
                    throw STAQueryError(.syntax, "path", "'\(segment.name)' must follow one entity, e.g. \(resource.set.rawValue)(1)/\(segment.name)")
                }
                resource.along.append(STAStep(set: resource.set, constraints: resource.constraints))
                let constraint = resource.set.constraint(navigating: segment.name, from: key) ?? .nothing
                resource.set = nav.target
                resource.constraints = [constraint]
                resource.single = !nav.collection
                if let keyText = segment.key {
                    guard nav.collection else { throw STAQueryError(.syntax, "path", "'\(segment.name)' is one entity; it takes no id") }
                    resource.constraints.append(.key(try parseKey(keyText, for: nav.target)))
                    resource.single = true
                }
                if !nav.collection, case .key = constraint {
                    // A single navigation gives the target's own id: `Datastreams(5)/Thing/Datastreams` works.
                    resource.constraints = [constraint]
                }
                continue
            }
            guard resource.single, segment.key == nil, resource.set.type(of: segment.name) != nil else {
                if segment.name == "$ref" { throw STAQueryError(.unsupported, "path", "$ref is not supported") }
                throw STAQueryError(.notFound, "path", "\(resource.set.rawValue) has no property or navigation '\(short(segment.name))'")
            }
            resource.property = segment.name
            if index < segments.count {
                guard segments[index].name == "$value", segments[index].key == nil, index + 1 == segments.count else {
                    throw STAQueryError(.notFound, "path", "nothing after '\(segment.name)' but $value")
                }
                resource.rawValue = true
                index += 1
            }
        }
        return resource
    }

    private struct Segment { var name: String; var key: String? }

    /// Splits at `/` outside quotes; `Name(key)` → name and key text.
    private static func splitPath(_ path: String) throws(STAQueryError) -> [Segment] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for ch in path {
            if ch == "'" { quoted.toggle() }
            if ch == "/" && !quoted {
                if !current.isEmpty { parts.append(current) }
                current = ""
            } else {
                current.append(ch)
            }
        }
        if quoted { throw STAQueryError(.syntax, "path", "an id's quote is not closed") }
        if !current.isEmpty { parts.append(current) }
        guard parts.count <= 16 else { throw STAQueryError(.tooDeep, "path", "the path has too many segments") }
        return try parts.map { part throws(STAQueryError) -> Segment in
            guard let open = part.firstIndex(of: "(") else { return Segment(name: part, key: nil) }
            guard part.hasSuffix(")") else { throw STAQueryError(.syntax, "path", "'\(short(part))' is not Name(id)") }
            let name = String(part[..<open])
            let key = String(part[part.index(after: open)..<part.index(before: part.endIndex)])
            return Segment(name: name, key: key)
        }
    }

    /// `1` for numeric sets, `'…'` for Observations; a key of the wrong kind names no entity (404).
    static func parseKey(_ text: String, for set: STAEntitySet) throws(STAQueryError) -> STAKey {
        if text.hasPrefix("'"), text.hasSuffix("'"), text.count >= 2 {
            let inner = String(text.dropFirst().dropLast())
            guard set.stringKeys else { throw STAQueryError(.notFound, "path", "\(set.rawValue) ids are numbers") }
            return .string(inner.replacingOccurrences(of: "''", with: "'"))
        }
        guard !set.stringKeys else { throw STAQueryError(.notFound, "path", "\(set.rawValue) ids are strings in quotes") }
        guard text.count <= 20, let n = Int64(text) else { throw STAQueryError(.notFound, "path", "'\(short(text))' is not an id") }
        return .int(n)
    }
}

func short(_ text: String) -> String { text.count > 60 ? String(text.prefix(60)) + "…" : text }

// MARK: - Query options

package struct STAOrder: Sendable, Equatable {
    package var property: String
    package var descending: Bool
}

package struct STAExpand: Sendable, Equatable {
    /// The navigation property of the parent set.
    package var navigation: String
    package var target: STAEntitySet
    package var collection: Bool
    package var options: STAQueryOptions
}

/// The query options of one request (or of one `$expand` item).
package struct STAQueryOptions: Sendable, Equatable {
    package var top = STALimits.defaultTop
    package var topGiven = false
    package var skip = 0
    package var count = false
    package var orderBy: [STAOrder] = []
    /// nil: every property and navigation link.
    package var select: [String]?
    package var expand: [STAExpand] = []
    package var filter: STAExpression?
    /// The options as given (name → text), in order: for the `@iot.nextLink` of an expanded collection.
    package var given: [String] = []
    package var givenValues: [String] = []

    package init() {}

    /// The options of a request on `set` from its query items (decoded); items not starting with `$` are
    /// ignored, an unknown `$option` is an error.
    package static func parse(_ items: [(String, String)], for set: STAEntitySet, depth: Int = 0) throws(STAQueryError) -> STAQueryOptions {
        var options = STAQueryOptions()
        var seen: Set<String> = []
        for (name, value) in items where name.hasPrefix("$") {
            guard seen.insert(name).inserted else { throw STAQueryError(.syntax, name, "is given twice") }
            options.given.append(name)
            options.givenValues.append(value)
            guard value.count <= STALimits.optionLength else {
                throw STAQueryError(.tooLong, name, "is longer than \(STALimits.optionLength) characters")
            }
            switch name {
            case "$top":
                options.top = min(try integer(value, name, max: Int.max), STALimits.maxTop)
                options.topGiven = true
            case "$skip": options.skip = try integer(value, name, max: STALimits.maxSkip)
            case "$count":
                switch value {
                case "true": options.count = true
                case "false": options.count = false
                default: throw STAQueryError(.syntax, name, "must be true or false")
                }
            case "$orderby": options.orderBy = try parseOrderBy(value, set: set)
            case "$select": options.select = try parseSelect(value, set: set)
            case "$expand": options.expand = try parseExpand(value, set: set, depth: depth)
            case "$filter":
                let expression = try STAFilterParser.parse(value)
                guard try STAFilterParser.check(expression, set: set) == .bool else {
                    throw STAQueryError(.type, name, "must be a condition (true or false), e.g. result gt 10")
                }
                options.filter = expression
            case "$resultFormat", "$ref":
                throw STAQueryError(.unsupported, name, "is not supported by this server")
            default:
                throw STAQueryError(.syntax, name, "is not a query option (use $top, $skip, $count, $orderby, $select, $expand, $filter)")
            }
        }
        return options
    }

    private static func integer(_ text: String, _ name: String, max: Int) throws(STAQueryError) -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 19, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(trimmed) else {
            throw STAQueryError(.number, name, "must be a whole number ≥ 0")
        }
        guard n <= max else { throw STAQueryError(.number, name, "must be at most \(max)") }
        return n
    }

    static func parseOrderBy(_ text: String, set: STAEntitySet) throws(STAQueryError) -> [STAOrder] {
        var result: [STAOrder] = []
        for item in text.split(separator: ",") {
            let words = item.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let property = words.first, words.count <= 2 else { throw STAQueryError(.syntax, "$orderby", "'\(short(String(item)))' is not 'property [asc|desc]'") }
            guard let type = set.type(of: property), [.number, .string, .time].contains(type) else {
                throw STAQueryError(.unknownProperty, "$orderby", "\(set.rawValue) cannot be ordered by '\(short(property))'")
            }
            var descending = false
            if words.count == 2 {
                switch words[1].lowercased() {
                case "asc": descending = false
                case "desc": descending = true
                default: throw STAQueryError(.syntax, "$orderby", "'\(short(words[1]))' is not asc or desc")
                }
            }
            result.append(STAOrder(property: property, descending: descending))
        }
        guard !result.isEmpty, result.count <= 8 else { throw STAQueryError(.syntax, "$orderby", "needs 1 to 8 properties") }
        return result
    }

    static func parseSelect(_ text: String, set: STAEntitySet) throws(STAQueryError) -> [String] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.count <= 32 else { throw STAQueryError(.syntax, "$select", "needs 1 to 32 names") }
        for name in names where set.type(of: name) == nil && set.navigation(name) == nil {
            throw STAQueryError(.unknownProperty, "$select", "\(set.rawValue) has no property '\(short(name))'")
        }
        return names
    }

    /// `A,B($top=1;$orderby=x desc),C/D($select=id)`: items split at top-level commas; `A/B` expands B inside A.
    static func parseExpand(_ text: String, set: STAEntitySet, depth: Int) throws(STAQueryError) -> [STAExpand] {
        guard depth < STALimits.expandDepth else { throw STAQueryError(.tooDeep, "$expand", "nests deeper than \(STALimits.expandDepth) levels") }
        var result: [STAExpand] = []
        for item in try splitTopLevel(text, at: ",", option: "$expand") {
            let path = try splitTopLevel(item, at: "/", option: "$expand")
            guard !path.isEmpty, path.count <= STALimits.expandDepth else { throw STAQueryError(.syntax, "$expand", "'\(short(item))' is not a navigation path") }
            try insert(path[...], into: &result, set: set, depth: depth)
        }
        guard result.count <= 16 else { throw STAQueryError(.syntax, "$expand", "expands more than 16 navigations") }
        return result
    }

    private static func insert(_ path: ArraySlice<String>, into list: inout [STAExpand], set: STAEntitySet, depth: Int) throws(STAQueryError) {
        guard let head = path.first else { return }
        guard depth < STALimits.expandDepth else { throw STAQueryError(.tooDeep, "$expand", "nests deeper than \(STALimits.expandDepth) levels") }
        var name = head.trimmingCharacters(in: .whitespaces)
        var optionText: String?
        if let open = name.firstIndex(of: "(") {
            guard name.hasSuffix(")") else { throw STAQueryError(.syntax, "$expand", "'\(short(name))': options must end with ')'") }
            optionText = String(name[name.index(after: open)..<name.index(before: name.endIndex)])
            name = String(name[..<open])
        }
        guard let nav = set.navigation(name) else {
            throw STAQueryError(.unknownProperty, "$expand", "\(set.rawValue) has no navigation '\(short(name))'")
        }
        var items: [(String, String)] = []
        if let optionText {
            for part in try splitTopLevel(optionText, at: ";", option: "$expand") {
                guard let eq = part.firstIndex(of: "=") else { throw STAQueryError(.syntax, "$expand", "'\(short(part))' is not $option=value") }
                items.append((part[..<eq].trimmingCharacters(in: .whitespaces), String(part[part.index(after: eq)...])))
            }
        }
        let index: Int
        if let existing = list.firstIndex(where: { $0.navigation == name }) {
            index = existing
            if !items.isEmpty { list[index].options = try parse(items, for: nav.target, depth: depth + 1) }
        } else {
            list.append(STAExpand(navigation: name, target: nav.target, collection: nav.collection,
                                  options: try parse(items, for: nav.target, depth: depth + 1)))
            index = list.count - 1
        }
        try insert(path.dropFirst(), into: &list[index].options.expand, set: nav.target, depth: depth + 1)
    }

    /// Splits at `separator` outside parentheses and quotes; unbalanced parentheses are an error.
    static func splitTopLevel(_ text: String, at separator: Character, option: String) throws(STAQueryError) -> [String] {
        var parts: [String] = []
        var current = ""
        var level = 0
        var quoted = false
        for ch in text {
            if ch == "'" { quoted.toggle() }
            if !quoted {
                if ch == "(" {
                    level += 1
                    guard level <= STALimits.depth else { throw STAQueryError(.tooDeep, option, "nests deeper than \(STALimits.depth) parentheses") }
                }
                if ch == ")" {
                    level -= 1
                    guard level >= 0 else { throw STAQueryError(.syntax, option, "has a ')' without '('") }
                }
                if ch == separator && level == 0 {
                    parts.append(current)
                    current = ""
                    continue
                }
            }
            current.append(ch)
        }
        guard level == 0, !quoted else { throw STAQueryError(.syntax, option, "has an unclosed '(' or quote") }
        parts.append(current)
        return parts.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }
}

// MARK: - $filter

package enum STAComparison: String, Sendable, CaseIterable { case eq, ne, gt, ge, lt, le }
package enum STAArithmetic: String, Sendable, CaseIterable { case add, sub, mul, div, mod }

/// The functions `$filter` knows, with their argument and result types.
package enum STAFunction: String, Sendable, CaseIterable {
    case substringof, startswith, endswith, contains = "contains"
    case length, tolower, toupper, trim, concat, indexof
    case year, month, day, hour, minute, second
    case round, floor, ceiling
    case geoIntersects = "geo.intersects", stWithin = "st_within", stIntersects = "st_intersects", stContains = "st_contains"
    case geoDistance = "geo.distance"

    package var signature: (arguments: [STAType], result: STAType) {
        switch self {
        case .substringof, .startswith, .endswith, .contains: return ([.string, .string], .bool)
        case .length: return ([.string], .number)
        case .tolower, .toupper, .trim: return ([.string], .string)
        case .concat: return ([.string, .string], .string)
        case .indexof: return ([.string, .string], .number)
        case .year, .month, .day, .hour, .minute, .second: return ([.time], .number)
        case .round, .floor, .ceiling: return ([.number], .number)
        case .geoIntersects, .stWithin, .stIntersects, .stContains: return ([.geometry, .geometry], .bool)
        case .geoDistance: return ([.geometry, .geometry], .number)
        }
    }
}

/// A WKT geometry literal, re-written canonically from its parsed coordinates (never the text as sent).
package struct STAGeometry: Sendable, Equatable {
    package var wkt: String
}

/// A `$filter` expression.
package indirect enum STAExpression: Sendable, Equatable {
    case integer(Int64)
    case number(Double)
    case string(String)
    case bool(Bool)
    case null
    /// An ISO 8601 instant, microseconds since 1970 UTC.
    case time(Int64)
    case geometry(STAGeometry)
    case property(String)
    case compare(STAComparison, STAExpression, STAExpression)
    case and(STAExpression, STAExpression)
    case or(STAExpression, STAExpression)
    case not(STAExpression)
    case arithmetic(STAArithmetic, STAExpression, STAExpression)
    case negate(STAExpression)
    case function(STAFunction, [STAExpression])
}

package enum STAFilterParser {
    enum Token: Equatable {
        case open, close, comma, minus
        case word(String)
        case string(String)
        case number(String)
        case time(Int64)
        case geometry(STAGeometry)
    }

    /// Parses a `$filter` value into an expression (not yet checked against an entity set: `check`).
    package static func parse(_ text: String) throws(STAQueryError) -> STAExpression {
        guard text.utf8.count <= STALimits.optionLength else { throw STAQueryError(.tooLong, "$filter", "is longer than \(STALimits.optionLength) characters") }
        var parser = Parser(tokens: try tokenize(text))
        let expression = try parser.parseOr(depth: 0)
        guard parser.position == parser.tokens.count else {
            throw STAQueryError(.syntax, "$filter", "unexpected \(parser.describe(parser.tokens[parser.position])) after a complete expression")
        }
        return expression
    }

    static func tokenize(_ text: String) throws(STAQueryError) -> [Token] {
        let bytes = Array(text.utf8)
        var tokens: [Token] = []
        var i = 0
        var level = 0
        func isWordByte(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2E || b == 0x2F }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        while i < bytes.count {
            guard tokens.count < STALimits.tokens else { throw STAQueryError(.tooLong, "$filter", "has more than \(STALimits.tokens) tokens") }
            let b = bytes[i]
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            case 0x28:
                level += 1
                guard level <= STALimits.depth else { throw STAQueryError(.tooDeep, "$filter", "nests deeper than \(STALimits.depth) levels") }
                tokens.append(.open); i += 1
            case 0x29: level -= 1; tokens.append(.close); i += 1
            case 0x2C: tokens.append(.comma); i += 1
            case 0x2D: tokens.append(.minus); i += 1
            case 0x27:
                let (value, next) = try readString(bytes, from: i)
                tokens.append(.string(value))
                i = next
            case _ where isDigit(b):
                var j = i
                // An instant: 2024-10-27T01:00:00Z (digits, -, :, ., T, Z, +).
                if j + 4 < bytes.count, bytes[i..<i + 4].allSatisfy(isDigit), bytes[i + 4] == 0x2D {
                    while j < bytes.count, isDigit(bytes[j]) || [0x2D, 0x3A, 0x2E, 0x54, 0x5A, 0x2B].contains(bytes[j]) { j += 1 }
                    let literal = String(decoding: bytes[i..<j], as: UTF8.self)
                    guard let micros = STATime.parse(literal) else { throw STAQueryError(.syntax, "$filter", "'\(short(literal))' is not an ISO 8601 instant such as 2024-10-27T01:00:00Z") }
                    tokens.append(.time(micros))
                } else {
                    while j < bytes.count, isDigit(bytes[j]) || bytes[j] == 0x2E || bytes[j] == 0x65 || bytes[j] == 0x45
                            || ((bytes[j] == 0x2B || bytes[j] == 0x2D) && (bytes[j - 1] == 0x65 || bytes[j - 1] == 0x45)) { j += 1 }
                    tokens.append(.number(String(decoding: bytes[i..<j], as: UTF8.self)))
                }
                i = j
            case _ where isWordByte(b):
                var j = i
                while j < bytes.count, isWordByte(bytes[j]) { j += 1 }
                let word = String(decoding: bytes[i..<j], as: UTF8.self)
                if j < bytes.count, bytes[j] == 0x27, ["geography", "geometry"].contains(word.lowercased()) {
                    let (value, next) = try readString(bytes, from: j)
                    tokens.append(.geometry(try STAWKT.parse(value)))
                    i = next
                } else {
                    guard word.count <= 128 else { throw STAQueryError(.tooLong, "$filter", "a name is longer than 128 characters") }
                    tokens.append(.word(word))
                    i = j
                }
            default:
                throw STAQueryError(.syntax, "$filter", "unexpected character '\(String(decoding: [b], as: UTF8.self))' at \(i + 1)")
            }
        }
        return tokens
    }

    private static func readString(_ bytes: [UInt8], from start: Int) throws(STAQueryError) -> (String, Int) {
        var j = start + 1
        var value: [UInt8] = []
        while true {
            guard j < bytes.count else { throw STAQueryError(.syntax, "$filter", "a string starting at \(start + 1) is not closed") }
            if bytes[j] == 0x27 {
                if j + 1 < bytes.count, bytes[j + 1] == 0x27 { value.append(0x27); j += 2; continue }
                return (String(decoding: value, as: UTF8.self), j + 1)
            }
            value.append(bytes[j])
            j += 1
        }
    }

    struct Parser {
        var tokens: [Token]
        var position = 0

        func describe(_ token: Token) -> String {
            switch token {
            case .open: return "'('"
            case .close: return "')'"
            case .comma: return "','"
            case .minus: return "'-'"
            case .word(let w): return "'\(short(w))'"
            case .string: return "a string"
            case .number(let n): return "number \(short(n))"
            case .time: return "a time"
            case .geometry: return "a geometry"
            }
        }

        var peek: Token? { position < tokens.count ? tokens[position] : nil }

        mutating func word(_ options: [String]) -> String? {
            if case .word(let w) = peek, options.contains(w) { position += 1; return w }
            return nil
        }

        func guardDepth(_ depth: Int) throws(STAQueryError) {
            guard depth <= STALimits.depth else { throw STAQueryError(.tooDeep, "$filter", "nests deeper than \(STALimits.depth) levels") }
        }

        mutating func parseOr(depth: Int) throws(STAQueryError) -> STAExpression {
            try guardDepth(depth)
            var left = try parseAnd(depth: depth)
            while word(["or"]) != nil { left = .or(left, try parseAnd(depth: depth)) }
            return left
        }

        mutating func parseAnd(depth: Int) throws(STAQueryError) -> STAExpression {
            var left = try parseNot(depth: depth)
            while word(["and"]) != nil { left = .and(left, try parseNot(depth: depth)) }
            return left
        }

        mutating func parseNot(depth: Int) throws(STAQueryError) -> STAExpression {
            if word(["not"]) != nil {
                try guardDepth(depth + 1)
                return .not(try parseNot(depth: depth + 1))
            }
            return try parseComparison(depth: depth)
        }

        mutating func parseComparison(depth: Int) throws(STAQueryError) -> STAExpression {
            let left = try parseAdditive(depth: depth)
            if let op = word(STAComparison.allCases.map(\.rawValue)) {
                let right = try parseAdditive(depth: depth)
                if case .word(let w) = peek, STAComparison(rawValue: w) != nil {
                    throw STAQueryError(.syntax, "$filter", "comparisons do not chain ('\(w)' after '\(op)'); use and")
                }
                return .compare(STAComparison(rawValue: op)!, left, right)
            }
            return left
        }

        mutating func parseAdditive(depth: Int) throws(STAQueryError) -> STAExpression {
            var left = try parseMultiplicative(depth: depth)
            while let op = word(["add", "sub"]) { left = .arithmetic(STAArithmetic(rawValue: op)!, left, try parseMultiplicative(depth: depth)) }
            return left
        }

        mutating func parseMultiplicative(depth: Int) throws(STAQueryError) -> STAExpression {
            var left = try parseUnary(depth: depth)
            while let op = word(["mul", "div", "mod"]) { left = .arithmetic(STAArithmetic(rawValue: op)!, left, try parseUnary(depth: depth)) }
            return left
        }

        mutating func parseUnary(depth: Int) throws(STAQueryError) -> STAExpression {
            if peek == .minus {
                position += 1
                try guardDepth(depth + 1)
                if case .number(let text) = peek {
                    position += 1
                    return try number("-" + text)
                }
                return .negate(try parseUnary(depth: depth + 1))
            }
            return try parsePrimary(depth: depth)
        }

        mutating func number(_ text: String) throws(STAQueryError) -> STAExpression {
            guard text.count <= 40 else { throw STAQueryError(.number, "$filter", "the number '\(short(text))' is too long") }
            if text.dropFirst(text.hasPrefix("-") ? 1 : 0).allSatisfy(\.isNumber) {
                guard let n = Int64(text) else { throw STAQueryError(.number, "$filter", "the number \(short(text)) is too large") }
                return .integer(n)
            }
            guard let d = Double(text), d.isFinite else { throw STAQueryError(.number, "$filter", "'\(short(text))' is not a finite number") }
            return .number(d)
        }

        mutating func parsePrimary(depth: Int) throws(STAQueryError) -> STAExpression {
            guard let token = peek else { throw STAQueryError(.syntax, "$filter", "the expression ends too early") }
            position += 1
            switch token {
            case .open:
                try guardDepth(depth + 1)
                let inner = try parseOr(depth: depth + 1)
                guard peek == .close else { throw STAQueryError(.syntax, "$filter", "a '(' is not closed") }
                position += 1
                return inner
            case .string(let s): return .string(s)
            case .number(let n): return try number(n)
            case .time(let t): return .time(t)
            case .geometry(let g): return .geometry(g)
            case .word(let w):
                switch w {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "null": return .null
                default: break
                }
                if peek == .open {
                    guard let function = STAFunction(rawValue: w.lowercased()) else {
                        throw STAQueryError(.unsupported, "$filter", "unknown function '\(short(w))'")
                    }
                    try guardDepth(depth + 1)
                    position += 1
                    var arguments: [STAExpression] = []
                    if peek != .close {
                        arguments.append(try parseOr(depth: depth + 1))
                        while peek == .comma {
                            position += 1
                            arguments.append(try parseOr(depth: depth + 1))
                            guard arguments.count <= 8 else { throw STAQueryError(.syntax, "$filter", "\(w) has too many arguments") }
                        }
                    }
                    guard peek == .close else { throw STAQueryError(.syntax, "$filter", "the arguments of \(w) are not closed with ')'") }
                    position += 1
                    guard arguments.count == function.signature.arguments.count else {
                        throw STAQueryError(.syntax, "$filter", "\(w) takes \(function.signature.arguments.count) argument(s), not \(arguments.count)")
                    }
                    return .function(function, arguments)
                }
                if ["and", "or", "not"].contains(w) || STAComparison(rawValue: w) != nil || STAArithmetic(rawValue: w) != nil {
                    throw STAQueryError(.syntax, "$filter", "'\(w)' needs a value before it")
                }
                return .property(w)
            default:
                throw STAQueryError(.syntax, "$filter", "unexpected \(describe(token))")
            }
        }
    }

    /// The expression's type on `set`; unknown properties and mismatched types are errors.
    @discardableResult
    package static func check(_ expression: STAExpression, set: STAEntitySet) throws(STAQueryError) -> STAType {
        func need(_ got: STAType, _ wanted: STAType, _ what: String) throws(STAQueryError) {
            guard got == wanted || got == .null else { throw STAQueryError(.type, "$filter", "\(what) needs a \(wanted), not a \(got)") }
        }
        switch expression {
        case .integer, .number: return .number
        case .string: return .string
        case .bool: return .bool
        case .null: return .null
        case .time: return .time
        case .geometry: return .geometry
        case .property(let name):
            guard let type = set.type(of: name) else {
                throw STAQueryError(.unknownProperty, "$filter", "\(set.rawValue) has no property '\(short(name))' to filter on")
            }
            guard type != .json else { throw STAQueryError(.unsupported, "$filter", "'\(name)' is an object; filtering inside it is not supported") }
            return type
        case .compare(let op, let l, let r):
            let lt = try check(l, set: set), rt = try check(r, set: set)
            guard lt == rt || lt == .null || rt == .null else {
                throw STAQueryError(.type, "$filter", "\(op.rawValue) compares a \(lt) with a \(rt)")
            }
            guard lt != .geometry, rt != .geometry else { throw STAQueryError(.type, "$filter", "geometries are compared with geo.intersects or st_within") }
            if lt == .bool || rt == .bool || lt == .null || rt == .null {
                guard op == .eq || op == .ne else { throw STAQueryError(.type, "$filter", "\(op.rawValue) does not order booleans or null") }
            }
            return .bool
        case .and(let l, let r), .or(let l, let r):
            try need(try check(l, set: set), .bool, "and/or")
            try need(try check(r, set: set), .bool, "and/or")
            return .bool
        case .not(let e):
            try need(try check(e, set: set), .bool, "not")
            return .bool
        case .arithmetic(let op, let l, let r):
            try need(try check(l, set: set), .number, op.rawValue)
            try need(try check(r, set: set), .number, op.rawValue)
            return .number
        case .negate(let e):
            try need(try check(e, set: set), .number, "-")
            return .number
        case .function(let f, let arguments):
            for (argument, wanted) in zip(arguments, f.signature.arguments) {
                try need(try check(argument, set: set), wanted, f.rawValue)
            }
            return f.signature.result
        }
    }
}

// MARK: - Times and geometries

package enum STATime {
    /// `YYYY-MM-DDThh:mm[:ss[.f…]](Z|±hh:mm)` → microseconds since 1970 UTC; nil for anything else (years 1…9999).
    package static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 17, b.count <= 40 else { return nil }
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for k in from..<from + count {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                n = n * 10 + Int(b[k] - 0x30)
            }
            return n
        }
        guard let year = num(0, 4), b[4] == 0x2D, let month = num(5, 2), b[7] == 0x2D, let day = num(8, 2), b[10] == 0x54,
              let hour = num(11, 2), b[13] == 0x3A, let minute = num(14, 2) else { return nil }
        var i = 16
        var second = 0, micros = 0
        if i < b.count, b[i] == 0x3A {
            guard let s = num(i + 1, 2) else { return nil }
            second = s
            i += 3
            if i < b.count, b[i] == 0x2E {
                i += 1
                var digits = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                    if digits < 6 { micros = micros * 10 + Int(b[i] - 0x30) }
                    digits += 1
                    i += 1
                }
                guard digits > 0, digits <= 9 else { return nil }
                for _ in 0..<max(0, 6 - digits) { micros *= 10 }
            }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A, i + 1 == b.count {
            offset = 0
        } else if b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, let oh = num(i + 1, 2), b[i + 3] == 0x3A, let om = num(i + 4, 2), oh <= 23, om <= 59 {
            offset = (oh * 60 + om) * (b[i] == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= CivilTime.daysInMonth(month, year: year), hour <= 23, minute <= 59, second <= 59 else { return nil }
        let seconds = CivilTime.days(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset * 60)
        return seconds * 1_000_000 + Int64(micros)
    }

    /// Microseconds since 1970 UTC as `2024-10-27T01:00:00Z` (fractions only when present): the downloads' form.
    package static func format(_ micros: Int64) -> String { ByteWriting.timestamp(micros: micros) }
}

/// WKT literals of `geography'…'` / `geometry'…'`: POINT, LINESTRING, POLYGON (+ MULTI…), longitude latitude.
package enum STAWKT {
    package static func parse(_ text: String) throws(STAQueryError) -> STAGeometry {
        let upper = text.uppercased().trimmingCharacters(in: .whitespaces)
        guard let open = upper.firstIndex(of: "(") else { throw STAQueryError(.syntax, "$filter", "'\(short(text))' is not WKT") }
        var kind = upper[..<open].trimmingCharacters(in: .whitespaces)
        if kind.hasPrefix("SRID=4326;") { kind = String(kind.dropFirst(10)) }
        let body = String(upper[open...])
        var points = 0
        var cursor = body.startIndex
        func fail(_ why: String) -> STAQueryError { STAQueryError(.syntax, "$filter", "WKT \(kind): \(why)") }
        func skipSpace() { while cursor < body.endIndex, body[cursor] == " " { cursor = body.index(after: cursor) } }
        func expect(_ ch: Character) throws(STAQueryError) {
            skipSpace()
            guard cursor < body.endIndex, body[cursor] == ch else { throw fail("expected '\(ch)'") }
            cursor = body.index(after: cursor)
        }
        func point() throws(STAQueryError) -> String {
            var values: [Double] = []
            for _ in 0..<2 {
                skipSpace()
                let start = cursor
                while cursor < body.endIndex, "0123456789.-+E".contains(body[cursor]) { cursor = body.index(after: cursor) }
                guard let v = Double(body[start..<cursor]), v.isFinite, body.distance(from: start, to: cursor) <= 30 else { throw fail("a coordinate is not a number") }
                values.append(v)
            }
            guard abs(values[0]) <= 180, abs(values[1]) <= 90 else { throw fail("longitude/latitude out of range") }
            points += 1
            guard points <= STALimits.geometryPoints else { throw fail("more than \(STALimits.geometryPoints) points") }
            return "\(values[0]) \(values[1])"
        }
        func list<T>(_ item: () throws(STAQueryError) -> T) throws(STAQueryError) -> [T] {
            try expect("(")
            var items = [try item()]
            skipSpace()
            while cursor < body.endIndex, body[cursor] == "," {
                cursor = body.index(after: cursor)
                items.append(try item())
                skipSpace()
            }
            try expect(")")
            return items
        }
        func line(minimum: Int, closed: Bool) throws(STAQueryError) -> String {
            let pts = try list(point)
            guard pts.count >= minimum else { throw fail("needs at least \(minimum) points") }
            if closed, pts.first != pts.last { throw fail("a ring must end where it starts") }
            return "(" + pts.joined(separator: ",") + ")"
        }
        func polygon() throws(STAQueryError) -> String {
            "(" + (try list { () throws(STAQueryError) -> String in try line(minimum: 4, closed: true) }).joined(separator: ",") + ")"
        }
        let wkt: String
        switch kind {
        case "POINT": wkt = "POINT(" + (try list(point)).joined() + ")"
            guard points == 1 else { throw fail("a point has one position") }
        case "LINESTRING": wkt = "LINESTRING" + (try line(minimum: 2, closed: false))
        case "POLYGON": wkt = "POLYGON" + (try polygon())
        case "MULTIPOINT": wkt = "MULTIPOINT" + (try line(minimum: 1, closed: false))
        case "MULTILINESTRING":
            wkt = "MULTILINESTRING(" + (try list { () throws(STAQueryError) -> String in try line(minimum: 2, closed: false) }).joined(separator: ",") + ")"
        case "MULTIPOLYGON": wkt = "MULTIPOLYGON(" + (try list(polygon)).joined(separator: ",") + ")"
        default: throw STAQueryError(.unsupported, "$filter", "WKT type '\(short(kind))' is not supported (POINT, LINESTRING, POLYGON, MULTI…)")
        }
        skipSpace()
        guard cursor == body.endIndex else { throw fail("text after the geometry") }
        return STAGeometry(wkt: wkt)
    }
}

/// One entity read from the database: its id and its properties in the order they are written (no links).
package struct STAEntity: Sendable {
    package var key: STAKey
    package var members: [JSONValue.Member]
    package init(key: STAKey, members: [JSONValue.Member]) {
        self.key = key
        self.members = members
    }
}
