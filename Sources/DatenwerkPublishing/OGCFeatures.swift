import DatenwerkCore
import Foundation

/// A station as a feature of a `{dataset}-stations` collection: where it is and the latest value of each
/// property the dataset observes there.
package struct StationFeature: Sendable, Hashable {
    package struct Latest: Sendable, Hashable {
        package var property: String
        package var value: Double
        package var startMicros: Int64

        package init(property: String, value: Double, startMicros: Int64) {
            self.property = property
            self.value = value
            self.startMicros = startMicros
        }
    }

    package var key: String
    package var name: String?
    package var longitude: Double?
    package var latitude: Double?
    /// First and latest phenomenon start of its series (µs since 1970).
    package var firstMicros: Int64
    package var lastMicros: Int64
    package var latest: [Latest]

    package init(key: String, name: String?, longitude: Double?, latitude: Double?, firstMicros: Int64, lastMicros: Int64, latest: [Latest]) {
        self.key = key
        self.name = name
        self.longitude = longitude
        self.latitude = latitude
        self.firstMicros = firstMicros
        self.lastMicros = lastMicros
        self.latest = latest
    }
}

/// The natural key of an observation (the primary key of `datenwerk.observations`), which is also its feature id:
/// `<station row>.<property>.<phenomenon start, µs since 1970>` (e.g. `12.air_temperature.1717200000000000`).
package struct ObservationKey: Sendable, Hashable {
    package var stationID: Int64
    package var property: String
    package var startMicros: Int64

    package init(stationID: Int64, property: String, startMicros: Int64) {
        self.stationID = stationID
        self.property = property
        self.startMicros = startMicros
    }

    package var featureID: String { "\(stationID).\(property).\(startMicros)" }
    /// The cursor position (`FeaturesCursor`): the same fields, the property last (it may hold any character).
    package var position: String { "\(stationID),\(startMicros),\(property)" }

    /// Reads a feature id; nil for anything else (the property may contain dots: the first and last dot split).
    package init?(featureID: String) {
        guard featureID.utf8.count <= 300, let first = featureID.firstIndex(of: "."), let last = featureID.lastIndex(of: "."), first < last,
              let station = Int64(featureID[..<first]), station >= 1,
              let start = Int64(featureID[featureID.index(after: last)...]), FeaturesTime.plausible.contains(start) else { return nil }
        let property = String(featureID[featureID.index(after: first)..<last])
        guard ObservationFilter.isKey(property) else { return nil }
        self.init(stationID: station, property: property, startMicros: start)
    }

    package init?(position: String) {
        let parts = position.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let station = Int64(parts[0]), station >= 1, let start = Int64(parts[1]), FeaturesTime.plausible.contains(start),
              ObservationFilter.isKey(parts[2]) else { return nil }
        self.init(stationID: station, property: String(parts[2]), startMicros: start)
    }
}

/// An observation row of a `{dataset}-observations` collection (its station comes from the dataset's snapshot).
package struct ObservationFeatureRow: Sendable, Hashable {
    package var key: ObservationKey
    package var endMicros: Int64?
    package var result: Double
    package var quality: String?

    package init(key: ObservationKey, endMicros: Int64?, result: Double, quality: String?) {
        self.key = key
        self.endMicros = endMicros
        self.result = result
        self.quality = quality
    }
}

enum FeaturesTime {
    /// Times a forged id or cursor may name: 1800…2200.
    static let plausible: ClosedRange<Int64> = -5_364_662_400_000_000...7_258_118_400_000_000
}

/// The documents of OGC API – Features, Part 1: Core (OGC 17-069r4) at `<base>/ogcapi`: landing page, conformance,
/// collections, items and single features as JSON / GeoJSON, the same as HTML, and the OpenAPI 3.0 definition.
/// Request-independent: the server passes the base URL, the collections and the rows; nothing here does I/O.
package enum OGCFeatures {
    package static let geoJSON = "application/geo+json"
    package static let json = "application/json"
    package static let html = "text/html"
    package static let openAPI = "application/vnd.oai.openapi+json;version=3.0"
    package static let crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

    package static let conformanceClasses = [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    ]

    /// What a collection serves.
    package enum Kind: String, Sendable { case stations, observations }

    /// One collection: a dataset's stations or its observations.
    package struct Collection: Sendable {
        package var id: String
        package var kind: Kind
        package var dataset: DatasetMetadata
        package var facts: DatasetFacts

        package init(kind: Kind, dataset: DatasetMetadata, facts: DatasetFacts) {
            self.id = "\(dataset.id)-\(kind.rawValue)"
            self.kind = kind
            self.dataset = dataset
            self.facts = facts
        }

        package var title: String {
            switch kind {
            case .stations: return "\(dataset.title) – Messstellen"
            case .observations: return "\(dataset.title) – Messwerte"
            }
        }

        package var description: String {
            let units = facts.properties.map { "\($0.key) [\($0.unit)]" }.joined(separator: ", ")
            switch kind {
            case .stations:
                return "Stations of '\(dataset.id)' as points, with the latest value of each property (and its time as <property>_time). Properties: \(units)."
            case .observations:
                return "Every observation of '\(dataset.id)', one point feature each at its station; datetime filters phenomenon_start. Properties: \(units)."
            }
        }
    }

    // MARK: Links

    package struct Link: Sendable {
        package var href: String
        package var rel: String
        package var type: String
        package var title: String

        package init(_ href: String, _ rel: String, _ type: String, _ title: String) {
            self.href = href
            self.rel = rel
            self.type = type
            self.title = title
        }

        var json: JSONValue {
            .object([.init("href", .string(href)), .init("rel", .string(rel)), .init("type", .string(type)), .init("title", .string(title))])
        }
    }

    /// `self` in `format` and `alternate` in the other (`f=` links, so a browser can follow them too).
    package static func selfLinks(_ url: String, format: FeaturesFormat, jsonType: String = json) -> [Link] {
        let sep = url.contains("?") ? "&" : "?"
        let jsonLink = Link(url + sep + "f=json", format == .json ? "self" : "alternate", jsonType, "this document as JSON")
        let htmlLink = Link(url + sep + "f=html", format == .html ? "self" : "alternate", html, "this document as HTML")
        return format == .json ? [Link(url, "self", jsonType, "this document"), htmlLink] : [Link(url, "self", html, "this document"), jsonLink]
    }

    // MARK: Documents

    package static func landing(base: String, catalog: CatalogMetadata, format: FeaturesFormat) -> (JSONValue, [Link]) {
        let api = base + "/ogcapi"
        let links = selfLinks(api + "/", format: format) + [
            Link(api + "/api", "service-desc", openAPI, "the API definition (OpenAPI 3.0)"),
            Link(api + "/api?f=html", "service-doc", html, "the API definition, readable"),
            Link(api + "/conformance", "conformance", json, "the conformance classes implemented"),
            Link(api + "/collections", "data", json, "the collections: each dataset's stations and observations"),
            Link(base + "/catalog", "describedby", "text/turtle", "the DCAT-AP.de catalog of the datasets"),
        ]
        let doc: JSONValue = .object([
            .init("title", .string(catalog.title)),
            .init("description", .string("OGC API – Features of \(catalog.title): \(catalog.description)")),
            .init("links", .array(links.map(\.json))),
        ])
        return (doc, links)
    }

    package static func conformance(base: String, format: FeaturesFormat) -> (JSONValue, [Link]) {
        let links = selfLinks(base + "/ogcapi/conformance", format: format)
        return (.object([.init("conformsTo", .array(conformanceClasses.map { .string($0) })), .init("links", .array(links.map(\.json)))]), links)
    }

    package static func collections(base: String, _ collections: [Collection], format: FeaturesFormat) -> (JSONValue, [Link]) {
        let links = selfLinks(base + "/ogcapi/collections", format: format)
        return (.object([
            .init("links", .array(links.map(\.json))),
            .init("collections", .array(collections.map { collection(base: base, $0, format: .json, nested: true).0 })),
        ]), links)
    }

    package static func collection(base: String, _ c: Collection, format: FeaturesFormat, nested: Bool = false) -> (JSONValue, [Link]) {
        let url = base + "/ogcapi/collections/" + c.id
        var links = nested ? [Link(url, "self", json, "this collection")] : selfLinks(url, format: format)
        links += [
            Link(url + "/items", "items", geoJSON, "the features as GeoJSON"),
            Link(url + "/items?f=html", "items", html, "the features as HTML"),
            Link(base + "/datasets/" + c.dataset.id, "describedby", "text/turtle", "the dataset's DCAT-AP.de record"),
            Link(base + "/datasets/" + c.dataset.id + "/observations.geojson", "enclosure", geoJSON, "all observations as one GeoJSON download"),
        ]
        var extent: [JSONValue.Member] = []
        if let b = c.facts.bbox, b.isValid {
            extent.append(.init("spatial", .object([
                .init("bbox", .array([.array([b.minLongitude, b.minLatitude, b.maxLongitude, b.maxLatitude].map { .number($0) })])),
                .init("crs", .string(crs84)),
            ])))
        }
        if c.facts.firstMicros != nil || c.facts.lastMicros != nil {
            let ends: [JSONValue] = [c.facts.firstMicros, c.facts.lastMicros].map { $0.map { .string(ByteWriting.timestamp(micros: $0)) } ?? .null }
            extent.append(.init("temporal", .object([
                .init("interval", .array([.array(ends)])),
                .init("trs", .string("http://www.opengis.net/def/uom/ISO-8601/0/Gregorian")),
            ])))
        }
        var members: [JSONValue.Member] = [
            .init("id", .string(c.id)), .init("title", .string(c.title)), .init("description", .string(c.description)),
            .init("links", .array(links.map(\.json))),
        ]
        if !extent.isEmpty { members.append(.init("extent", .object(extent))) }
        members += [.init("itemType", .string("feature")), .init("crs", .array([.string(crs84)])), .init("storageCrs", .string(crs84))]
        return (.object(members), links)
    }

    // MARK: Features

    static func point(_ longitude: Double?, _ latitude: Double?) -> JSONValue {
        guard let longitude, let latitude, longitude.isFinite, latitude.isFinite else { return .null }
        return .object([.init("type", .string("Point")), .init("coordinates", .array([.number(longitude), .number(latitude)]))])
    }

    package static func stationFeature(_ s: StationFeature) -> JSONValue {
        var properties: [JSONValue.Member] = [.init("key", .string(s.key)), .init("name", s.name.map { .string($0) } ?? .null)]
        for latest in s.latest {
            properties.append(.init(latest.property, latest.value.isFinite ? .number(latest.value) : .null))   // NaN: suppressed (docs/privacy.md)
            properties.append(.init(latest.property + "_time", .string(ByteWriting.timestamp(micros: latest.startMicros))))
        }
        properties.append(.init("first_time", .string(ByteWriting.timestamp(micros: s.firstMicros))))
        properties.append(.init("last_time", .string(ByteWriting.timestamp(micros: s.lastMicros))))
        return .object([
            .init("type", .string("Feature")), .init("id", .string(s.key)),
            .init("geometry", point(s.longitude, s.latitude)), .init("properties", .object(properties)),
        ])
    }

    /// An observation at its station (`key`, `name`, position from the dataset's snapshot).
    package static func observationFeature(_ o: ObservationFeatureRow, stationKey: String, stationName: String?, longitude: Double?, latitude: Double?, unit: String?) -> JSONValue {
        let name: JSONValue = stationName.map { .string($0) } ?? .null
        let unitValue: JSONValue = unit.map { .string($0) } ?? .null
        let end: JSONValue = o.endMicros.map { .string(ByteWriting.timestamp(micros: $0)) } ?? .null
        let quality: JSONValue = o.quality.map { .string($0) } ?? .null
        let properties: [JSONValue.Member] = [
            .init("station", .string(stationKey)), .init("station_name", name),
            .init("property", .string(o.key.property)), .init("unit", unitValue),
            .init("phenomenon_start", .string(ByteWriting.timestamp(micros: o.key.startMicros))),
            .init("phenomenon_end", end), .init("result", o.result.isFinite ? .number(o.result) : .null), .init("quality", quality),
        ]
        return .object([
            .init("type", .string("Feature")), .init("id", .string(o.key.featureID)),
            .init("geometry", point(longitude, latitude)), .init("properties", .object(properties)),
        ])
    }

    /// A page of items: `links` (self, alternate, next, prev, collection), `numberMatched` when known, `numberReturned`, `timeStamp`.
    package static func featureCollection(_ features: [JSONValue], links: [Link], numberMatched: Int?, nowMicros: Int64) -> JSONValue {
        var members: [JSONValue.Member] = [.init("type", .string("FeatureCollection")), .init("features", .array(features)), .init("links", .array(links.map(\.json)))]
        if let numberMatched { members.append(.init("numberMatched", .number(Double(numberMatched)))) }
        members.append(.init("numberReturned", .number(Double(features.count))))
        members.append(.init("timeStamp", .string(ByteWriting.timestamp(micros: nowMicros - nowMicros % 1_000_000))))
        return .object(members)
    }

    /// A single feature with its links.
    package static func feature(_ feature: JSONValue, links: [Link]) -> JSONValue {
        guard case .object(var members) = feature else { return feature }
        members.append(.init("links", .array(links.map(\.json))))
        return .object(members)
    }
}
