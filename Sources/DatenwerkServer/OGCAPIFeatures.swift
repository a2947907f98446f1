import DatenwerkCore
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// OGC API – Features, Part 1: Core (OGC 17-069r4) at `/ogcapi` (docs/ogcapi.md), beside the catalog:
///
/// | route | answer |
/// |---|---|
/// | `GET /ogcapi` | landing page (links: self, service-desc, service-doc, conformance, data) |
/// | `GET /ogcapi/api` | the OpenAPI 3.0 definition (`application/vnd.oai.openapi+json;version=3.0`) |
/// | `GET /ogcapi/conformance` | core, geojson, html, oas30 |
/// | `GET /ogcapi/collections` | two per public dataset: `{dataset}-stations`, `{dataset}-observations` |
/// | `GET /ogcapi/collections/{id}` | one collection with its extent |
/// | `GET /ogcapi/collections/{id}/items` | a page of features (`limit`, `bbox`, `datetime`, `cursor` from next/prev links) |
/// | `GET /ogcapi/collections/{id}/items/{featureId}` | one feature |
///
/// JSON (GeoJSON for features) by default; HTML with `f=html` or when `Accept` prefers `text/html`. Every query
/// parameter is checked before the database is asked (`FeaturesQuery`): an unknown one, or a bad value, is a 400
/// naming it. Restricted datasets are not served here (like the catalog, they answer 404).
struct OGCAPIFeatures: Sendable {
    let publishing: Publishing
    let queries: FeatureQueries

    init(publishing: Publishing) {
        self.publishing = publishing
        self.queries = FeatureQueries(connections: publishing.store.connections)
    }

    static let routes = ["/ogcapi", "/ogcapi/api", "/ogcapi/conformance", "/ogcapi/collections", "/ogcapi/collections/*",
                         "/ogcapi/collections/*/items", "/ogcapi/collections/*/items/*"]

    func register(on router: Router<ServerRequestContext>) {
        router.read("/ogcapi") { request, _ in try await self.answer(request) { format, base in
            let (doc, _) = OGCFeatures.landing(base: base, catalog: self.publishing.catalog, format: format)
            return (doc, OGCFeatures.json, self.publishing.catalog.title)
        } }
        router.read("/ogcapi/api") { request, _ in try await self.answer(request) { _, base in
            let ids = try await self.collections().map(\.id)
            let doc = OGCFeatures.openAPIDocument(base: base, catalog: self.publishing.catalog, collectionIDs: ids)
            return (doc, OGCFeatures.openAPI, "API definition")
        } }
        router.read("/ogcapi/conformance") { request, _ in try await self.answer(request) { format, base in
            (OGCFeatures.conformance(base: base, format: format).0, OGCFeatures.json, "Conformance")
        } }
        router.read("/ogcapi/collections") { request, _ in try await self.answer(request) { format, base in
            (OGCFeatures.collections(base: base, try await self.collections(), format: format).0, OGCFeatures.json, "Collections")
        } }
        router.read("/ogcapi/collections/:collection") { request, context in
            let id = Self.decode(try context.parameters.require("collection"))
            return try await self.answer(request) { format, base in
                let (collection, _) = try await self.collection(id)
                return (OGCFeatures.collection(base: base, collection, format: format).0, OGCFeatures.json, collection.title)
            }
        }
        router.read("/ogcapi/collections/:collection/items") { request, context in
            try await self.items(request, id: Self.decode(try context.parameters.require("collection")))
        }
        router.read("/ogcapi/collections/:collection/items/:feature") { request, context in
            let id = Self.decode(try context.parameters.require("collection"))
            let feature = Self.decode(try context.parameters.require("feature"))
            return try await self.answer(request) { format, base in
                let (collection, snapshot) = try await self.collection(id)
                return (try await self.feature(collection, snapshot: snapshot, id: feature, base: base, format: format), OGCFeatures.geoJSON, feature)
            }
        }
    }

    // MARK: Answers

    /// A document in the format asked for (`f`, else `Accept`); only `f` is a known parameter here.
    func answer(_ request: Request, _ build: (FeaturesFormat, String) async throws -> (JSONValue, String, String)) async throws -> Response {
        do {
            let query = try FeaturesQuery(query: Self.items(request), allowed: ["f"])
            let format = query.format ?? Self.negotiate(request.headers[.accept])
            let (document, type, title) = try await build(format, publishing.baseURL(request))
            return Self.respond(document, type: type, format: format, title: title)
        } catch let error as FeaturesParameterError {
            return .problem(.badRequest, error.message, parameter: error.parameter)
        } catch let error as ResponseError {
            return error.response
        }
    }

    func items(_ request: Request, id: String) async throws -> Response {
        let query: FeaturesQuery
        do {
            query = try FeaturesQuery(query: Self.items(request))
        } catch {
            return .problem(.badRequest, error.message, parameter: error.parameter)
        }
        let collection: OGCFeatures.Collection
        let snapshot: DatasetSnapshot
        do {
            (collection, snapshot) = try await self.collection(id)
        } catch let error as ResponseError {
            return error.response
        }
        let format = query.format ?? Self.negotiate(request.headers[.accept])
        let base = publishing.baseURL(request)
        let url = "\(base)/ogcapi/collections/\(collection.id)/items"
        var features: [JSONValue] = []
        var next: FeaturesCursor?
        var previous: FeaturesCursor?
        var matched: Int?
        let boxes = query.bbox?.parts ?? []
        switch collection.kind {
        case .stations:
            var position: FeatureQueries.Position<String>?
            if let cursor = query.cursor { position = cursor.direction == .after ? .after(cursor.position) : .before(cursor.position) }
            let page = try await queries.stations(stationIDs: snapshot.stations.map(\.id), properties: snapshot.facts.properties.map(\.key), boxes: boxes,
                                                  from: query.datetime?.from, to: query.datetime?.to, position: position, limit: query.limit)
            features = page.items.map(OGCFeatures.stationFeature)
            if page.hasNext, let last = page.items.last { next = FeaturesCursor(.after, last.key) }
            if page.hasPrevious, let first = page.items.first { previous = FeaturesCursor(.before, first.key) }
            matched = page.numberMatched
        case .observations:
            var position: FeatureQueries.Position<ObservationKey>?
            if let cursor = query.cursor {
                guard let key = ObservationKey(position: cursor.position) else {
                    return .problem(.badRequest, "cursor is not a cursor of this collection; follow a next or prev link as it is", parameter: "cursor")
                }
                position = cursor.direction == .after ? .after(key) : .before(key)
            }
            var stationIDs: [Int64]?
            if !boxes.isEmpty { stationIDs = try await queries.stations(snapshot.stations.map(\.id), within: boxes) }
            let page = try await queries.observations(pipeline: collection.dataset.pipeline, stationIDs: stationIDs,
                                                      from: query.datetime?.from, to: query.datetime?.to, position: position, limit: query.limit)
            let stations = Dictionary(snapshot.stations.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let units = Dictionary(snapshot.facts.properties.map { ($0.key, $0.unit) }, uniquingKeysWith: { first, _ in first })
            features = page.items.map { row in
                let station = stations[row.key.stationID]
                return OGCFeatures.observationFeature(row, stationKey: station?.key ?? String(row.key.stationID), stationName: station?.name,
                                                      longitude: station?.longitude, latitude: station?.latitude, unit: units[row.key.property])
            }
            if page.hasNext, let last = page.items.last { next = FeaturesCursor(.after, last.key.position) }
            if page.hasPrevious, let first = page.items.first { previous = FeaturesCursor(.before, first.key.position) }
            // Exact and free (the snapshot's count) without a filter; with one, counting could read millions of rows: left out.
            matched = query.bbox == nil && query.datetime == nil ? snapshot.facts.observationCount : nil
        }
        let jsonType = OGCFeatures.geoJSON
        var links = [
            OGCFeatures.Link("\(url)?\(query.queryString(cursor: query.cursor))", format == .json ? "self" : "alternate", jsonType, "this page as GeoJSON"),
            OGCFeatures.Link("\(url)?\(query.queryString(cursor: query.cursor, format: .html))", format == .html ? "self" : "alternate", OGCFeatures.html, "this page as HTML"),
        ]
        let pageFormat: FeaturesFormat? = format == .html ? .html : nil
        let pageType = format == .html ? OGCFeatures.html : jsonType
        if let next { links.append(OGCFeatures.Link("\(url)?\(query.queryString(cursor: next, format: pageFormat))", "next", pageType, "the next page")) }
        if let previous { links.append(OGCFeatures.Link("\(url)?\(query.queryString(cursor: previous, format: pageFormat))", "prev", pageType, "the previous page")) }
        links.append(OGCFeatures.Link("\(base)/ogcapi/collections/\(collection.id)", "collection", OGCFeatures.json, collection.title))
        let nowMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let document = OGCFeatures.featureCollection(features, links: links, numberMatched: matched, nowMicros: nowMicros)
        return Self.respond(document, type: jsonType, format: format, title: collection.title)
    }

    func feature(_ collection: OGCFeatures.Collection, snapshot: DatasetSnapshot, id: String, base: String, format: FeaturesFormat) async throws -> JSONValue {
        let notFound = ResponseError(.problem(.notFound, "collection '\(collection.id)' has no feature '\(ObservationFilter.shorten(id))'"))
        var feature: JSONValue
        switch collection.kind {
        case .stations:
            guard FeaturesQuery.isKey(id),
                  let station = try await queries.station(key: id, stationIDs: snapshot.stations.map(\.id), properties: snapshot.facts.properties.map(\.key))
            else { throw notFound }
            feature = OGCFeatures.stationFeature(station)
        case .observations:
            guard let key = ObservationKey(featureID: id), let station = snapshot.stations.first(where: { $0.id == key.stationID }),
                  let row = try await queries.observation(pipeline: collection.dataset.pipeline, key: key) else { throw notFound }
            feature = OGCFeatures.observationFeature(row, stationKey: station.key, stationName: station.name, longitude: station.longitude,
                                                     latitude: station.latitude, unit: snapshot.facts.properties.first { $0.key == key.property }?.unit)
        }
        let url = "\(base)/ogcapi/collections/\(collection.id)/items/\(FeaturesQuery.percentEncode(id))"
        var links = OGCFeatures.selfLinks(url, format: format, jsonType: OGCFeatures.geoJSON)
        links.append(OGCFeatures.Link("\(base)/ogcapi/collections/\(collection.id)", "collection", OGCFeatures.json, collection.title))
        return OGCFeatures.feature(feature, links: links)
    }

    // MARK: Collections

    /// Two collections per public dataset, in the catalog's order.
    func collections() async throws -> [OGCFeatures.Collection] {
        let datasets = publishing.publicDatasets
        let snapshots = try await publishing.store.snapshots(datasets)
        return zip(datasets, snapshots).flatMap { dataset, snapshot in
            [OGCFeatures.Collection(kind: .stations, dataset: dataset, facts: snapshot.facts),
             OGCFeatures.Collection(kind: .observations, dataset: dataset, facts: snapshot.facts)]
        }
    }

    /// The collection `id` and its dataset's snapshot; a 404 (`ResponseError`) for anything else.
    func collection(_ id: String) async throws -> (OGCFeatures.Collection, DatasetSnapshot) {
        for kind in [OGCFeatures.Kind.stations, .observations] {
            let suffix = "-" + kind.rawValue
            guard id.hasSuffix(suffix) else { continue }
            let datasetID = String(id.dropLast(suffix.count))
            guard let dataset = publishing.byID[datasetID], dataset.access == .open else { break }
            let snapshot = try await publishing.store.snapshot(dataset, state: try await publishing.store.state(pipeline: dataset.pipeline))
            return (OGCFeatures.Collection(kind: kind, dataset: dataset, facts: snapshot.facts), snapshot)
        }
        let known = publishing.publicDatasets.flatMap { ["\($0.id)-stations", "\($0.id)-observations"] }
        let hint = closestMatch(to: id, in: known).map { "; did you mean '\($0)'?" } ?? ""
        throw ResponseError(.problem(.notFound, "no collection '\(ObservationFilter.shorten(id))'\(hint) (/ogcapi/collections lists them)"))
    }

    // MARK: Helpers

    static func items(_ request: Request) -> [(name: String, value: String)] {
        request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
    }

    /// A path segment as sent, percent-decoded (the router leaves `%3A` as it is).
    static func decode(_ segment: String) -> String { segment.removingPercentEncoding ?? segment }

    /// HTML when `Accept` ranks `text/html` above every JSON type this API serves; JSON otherwise (and without `Accept`).
    static func negotiate(_ accept: String?) -> FeaturesFormat {
        guard let accept, !accept.isEmpty else { return .json }
        var htmlQ = 0.0, jsonQ = 0.0, anyQ = 0.0
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = parts.first else { continue }
            var q = 1.0
            for p in parts.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)).flatMap { $0.isFinite ? $0 : nil } ?? 0 }
            switch type {
            case "text/html": htmlQ = max(htmlQ, q)
            case "application/json", "application/geo+json", "application/vnd.oai.openapi+json", "application/*": jsonQ = max(jsonQ, q)
            case "*/*", "text/*": anyQ = max(anyQ, q)
            default: break
            }
        }
        return htmlQ > max(jsonQ, anyQ) || (htmlQ > jsonQ && htmlQ == anyQ && htmlQ > 0) ? .html : .json
    }

    static func respond(_ document: JSONValue, type: String, format: FeaturesFormat, title: String) -> Response {
        let (body, contentType): (String, String)
        switch format {
        case .json: (body, contentType) = (document.serialized + "\n", type == OGCFeatures.openAPI ? type : type + "; charset=utf-8")
        case .html: (body, contentType) = (OGCFeatures.htmlPage(title: title, document), "text/html; charset=utf-8")
        }
        return Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "no-cache", .vary: "Accept"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
