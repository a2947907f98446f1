import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// OGC SensorThings API v1.1, read-only, at `/sta/v1.1/` (docs/sensorthings.md): the service root, the eight
/// entity sets, navigation paths, `$top`/`$skip`/`$count`/`$orderby`/`$select`/`$expand`/`$filter`,
/// `@iot.selfLink`, `@iot.navigationLink`, `@iot.nextLink`, `@iot.count`. The entities are the stations and series
/// of the public datasets (stations only in restricted datasets, or in no dataset, are not shown).
struct SensorThings: Sendable {
    static let prefix = "/sta/v1.1"
    /// `/sta/v1.1/*`, `/sta/v1.1/*/*`, … for ProblemMiddleware's 405/OPTIONS (paths up to 8 segments deep).
    static let routePatterns = ["/sta/v1.1"] + (1...8).map { "/sta/v1.1" + String(repeating: "/*", count: $0) }

    static let conformance = [
        "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
        "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
        "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    ]

    let datasets: [DatasetMetadata]
    let store: ObservationStore
    let queries: SensorThingsQueries
    let baseURL: @Sendable (Request) -> String

    init(pipelines: [PipelineSpec], store: ObservationStore, baseURL: @escaping @Sendable (Request) -> String) {
        var seen: Set<String> = []
        datasets = pipelines.compactMap(\.datasetMetadata).filter { seen.insert($0.id).inserted && $0.access == .open }
        self.store = store
        queries = SensorThingsQueries(connections: store.connections)
        self.baseURL = baseURL
    }

    func register(on router: Router<ServerRequestContext>) {
        router.read("/sta/v1.1") { request, _ in try await self.answer(request) }
        router.read("/sta/v1.1/**") { request, _ in try await self.answer(request) }
    }

    func answer(_ request: Request) async throws -> Response {
        let base = baseURL(request) + Self.prefix
        var path = String(request.uri.path.dropFirst(Self.prefix.count))
        while path.hasPrefix("/") { path.removeFirst() }
        path = path.removingPercentEncoding ?? path
        if path.isEmpty { return .json(serviceRoot(base)) }
        do {
            let resource = try STAResource.parse(path)
            let items = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            let options = try STAQueryOptions.parse(items, for: resource.set)
            let scope = try await visibleStations()
            return try await queries.transaction { session in
                try await answer(resource: resource, options: options, items: items, path: path, base: base, scope: scope, session: session)
            }
        } catch let error as STAQueryError {
            if error.kind == .notFound { return Self.notFound(path) }
            return .problem(.badRequest, error.description, parameter: error.option)
        } catch let error as SensorThingsQueries.EvaluationError {
            return .problem(.badRequest, error.description, parameter: "$filter")
        }
    }

    func answer(resource: STAResource, options: STAQueryOptions, items: [(String, String)], path: String, base: String, scope: [Int64],
                session: SensorThingsQueries.Session) async throws -> Response {
        var options = options
        for step in resource.along {
            let found = try await session.list(step.set, scope: scope, constraints: step.constraints, options: STAQueryOptions(), limit: 1, count: false)
            if found.entities.isEmpty { return Self.notFound(path) }
        }
        let context = Context(base: base, scope: scope, session: session)
        if resource.single {
            options.filter = nil
            options.skip = 0
            let found = try await session.list(resource.set, scope: scope, constraints: resource.constraints, options: options, limit: 1, count: false)
            guard let entity = found.entities.first else { return Self.notFound(path) }
            if let property = resource.property {
                let value = entity.members.first { $0.key == property }?.value ?? (property == "id" ? entity.key.json : .null)
                if resource.rawValue {
                    if value.isNull { return Self.notFound(path) }
                    let text = { if case .string(let s) = value { return s } else { return value.serialized } }()
                    return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
                }
                return .json(.object([.init(property, value)]))
            }
            return .json(try await render(entity, set: resource.set, options: options, context: context, depth: 0))
        }
        let page = try await session.list(resource.set, scope: scope, constraints: resource.constraints, options: options,
                                          limit: options.top + 1, count: options.count)
        var members: [JSONValue.Member] = []
        if let count = page.count { members.append(.init("@iot.count", .number(Double(count)))) }
        if options.top > 0, page.entities.count > options.top {
            members.append(.init("@iot.nextLink", .string(Self.nextLink(base + "/" + path, items: items, top: options.top, skip: options.skip + options.top))))
        }
        var values: [JSONValue] = []
        for entity in page.entities.prefix(options.top) {
            values.append(try await render(entity, set: resource.set, options: options, context: context, depth: 0))
        }
        members.append(.init("value", .array(values)))
        return .json(.object(members))
    }

    struct Context {
        var base: String
        var scope: [Int64]
        var session: SensorThingsQueries.Session
    }

    /// One entity as JSON: self link, id, the (selected) properties, navigation links, expanded navigations.
    func render(_ entity: STAEntity, set: STAEntitySet, options: STAQueryOptions, context: Context, depth: Int) async throws -> JSONValue {
        let selfLink = "\(context.base)/\(set.rawValue)(\(entity.key))"
        var members: [JSONValue.Member] = [.init("@iot.selfLink", .string(selfLink)), .init("@iot.id", entity.key.json)]
        let selected = options.select.map(Set.init)
        for member in entity.members where selected?.contains(member.key) ?? true { members.append(member) }
        for nav in set.navigation where selected?.contains(nav.name) ?? true {
            members.append(.init("\(nav.name)@iot.navigationLink", .string("\(selfLink)/\(nav.name)")))
        }
        for expand in options.expand {
            let constraint = set.constraint(navigating: expand.navigation, from: entity.key) ?? .nothing
            if expand.collection {
                let page = try await context.session.list(expand.target, scope: context.scope, constraints: [constraint], options: expand.options,
                                                  limit: expand.options.top + 1, count: expand.options.count)
                if let count = page.count { members.append(.init("\(expand.navigation)@iot.count", .number(Double(count)))) }
                var values: [JSONValue] = []
                for child in page.entities.prefix(expand.options.top) {
                    values.append(try await render(child, set: expand.target, options: expand.options, context: context, depth: depth + 1))
                }
                members.append(.init(expand.navigation, .array(values)))
                if expand.options.top > 0, page.entities.count > expand.options.top {
                    let link = Self.nextLink("\(selfLink)/\(expand.navigation)", items: Self.items(of: expand.options), top: expand.options.top,
                                             skip: expand.options.skip + expand.options.top)
                    members.append(.init("\(expand.navigation)@iot.nextLink", .string(link)))
                }
            } else {
                var single = expand.options
                single.filter = nil
                single.skip = 0
                let found = try await context.session.list(expand.target, scope: context.scope, constraints: [constraint], options: single, limit: 1, count: false)
                if let child = found.entities.first {
                    members.append(.init(expand.navigation, try await render(child, set: expand.target, options: single, context: context, depth: depth + 1)))
                } else {
                    members.append(.init(expand.navigation, .null))
                }
            }
        }
        return .object(members)
    }

    /// The stations of the public datasets (their snapshots are cached per dataset state).
    func visibleStations() async throws -> [Int64] {
        var ids: Set<Int64> = []
        for snapshot in try await store.snapshots(datasets) { ids.formUnion(snapshot.stations.map(\.id)) }
        return ids.sorted()
    }

    func serviceRoot(_ base: String) -> JSONValue {
        .object([
            .init("value", .array(STAEntitySet.allCases.map { .object([.init("name", .string($0.rawValue)), .init("url", .string("\(base)/\($0.rawValue)"))]) })),
            .init("serverSettings", .object([.init("conformance", .array(Self.conformance.map { .string($0) }))])),
        ])
    }

    static func notFound(_ path: String) -> Response {
        .problem(.notFound, "no SensorThings entity at \(ProblemMiddleware.shorten(path))")
    }

    /// The query options an `$expand` item was given, as query items (for its nextLink).
    static func items(of options: STAQueryOptions) -> [(String, String)] {
        Array(zip(options.given, options.givenValues))
    }

    /// The same request with `$top` and `$skip` for the next page; the other items as they came.
    static func nextLink(_ url: String, items: [(String, String)], top: Int, skip: Int) -> String {
        var parts = items.filter { $0.0 != "$top" && $0.0 != "$skip" }.map { "\(encode($0.0))=\(encode($0.1))" }
        parts += ["$top=\(top)", "$skip=\(skip)"]
        return url + "?" + parts.joined(separator: "&")
    }

    static let allowed: CharacterSet = {
        var set = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        set.insert(charactersIn: "-._~$,'():/")
        return set
    }()

    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
}
