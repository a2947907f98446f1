import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The open-data side of `datenwerk serve`:
///
/// | route | answer |
/// |---|---|
/// | `GET /` (`?lang=en`) | the HTML catalog page |
/// | `GET /catalog` | DCAT-AP.de by `Accept` (Turtle default, RDF/XML, JSON-LD); `?page=N` |
/// | `GET /catalog.ttl`, `.rdf`, `.jsonld` | the same in one format |
/// | `GET /tenants` (`?lang=en`) | the tenants (municipalities, associations) with their datasets' count |
/// | `GET /tenants/{ags}/` | the HTML catalog page with only that tenant's datasets |
/// | `GET /tenants/{ags}/catalog` (`.ttl`, `.rdf`, `.jsonld`) | that tenant's DCAT-AP.de catalog, the tenant as publisher |
/// | `GET /datasets/{id}` | the dataset's DCAT record by `Accept`, or (a browser: `text/html` first) its page with charts |
/// | `GET /datasets/{id}/dcat.ttl` (`.rdf`, `.jsonld`) | the dataset's DCAT record (a catalog with only it) |
/// | `GET /datasets/{id}/datapackage.json` | Frictionless data package with the CSV's Table Schema |
/// | `GET /datasets/{id}/observations.{csv,geojson,ndjson}` | streamed observations (see `Downloads`) |
///
/// Datasets with `access: restricted` are left out of the catalog and the page; their record and files need
/// `Authorization: Bearer <token>` with `read:<dataset>`, `tenant:<ags>` or `admin`, or the legacy
/// `DATENWERK_DOWNLOAD_TOKEN` (`authorize`, docs/access.md).
struct Publishing: Sendable {
    let catalog: CatalogMetadata
    /// In pipeline order; ids unique (the first pipeline declaring an id wins).
    let datasets: [DatasetMetadata]
    let byID: [String: DatasetMetadata]
    /// Every tenant with a dataset, and those `tenants.yaml` declares; by AGS.
    let tenants: [String: Tenant]
    /// Dataset id → its pipeline's tenant (AGS).
    let tenantOf: [String: String]
    let store: ObservationStore
    /// The dataset pages' charts and the catalog page's sparklines.
    let charts: ChartQueries
    let configuration: DatenwerkServer.Configuration
    let downloadToken: String?
    let logger: Logger
    /// The guard of restricted datasets (API tokens, OIDC, the wrong-token limit); set by `DatenwerkServer`.
    var access: AccessControl?

    init(catalog: CatalogMetadata, pipelines: [PipelineSpec], store: ObservationStore, configuration: DatenwerkServer.Configuration,
         environment: [String: String], logger: Logger) {
        var datasets: [DatasetMetadata] = []
        var byID: [String: DatasetMetadata] = [:]
        var resolver = TenantResolver(logger: logger)
        var tenantOf: [String: String] = [:]
        for spec in pipelines {
            guard var dataset = spec.datasetMetadata else { continue }
            if let other = byID[dataset.id] {
                logger.warning("dataset id '\(dataset.id)' of pipeline '\(spec.name)' is already used by pipeline '\(other.pipeline)'; only the first is published")
                continue
            }
            let tenant = resolver.tenant(spec)
            tenantOf[dataset.id] = tenant.ags
            dataset = TenantResolver.published(dataset, by: tenant)
            byID[dataset.id] = dataset
            datasets.append(dataset)
        }
        self.catalog = catalog
        self.datasets = datasets
        self.byID = byID
        self.tenants = resolver.tenants
        self.tenantOf = tenantOf
        self.store = store
        self.charts = ChartQueries(connections: store.connections)
        self.configuration = configuration
        self.downloadToken = environment[configuration.downloadTokenVariable].flatMap { $0.isEmpty ? nil : $0 }
        self.logger = logger
    }

    var publicDatasets: [DatasetMetadata] { datasets.filter { $0.access == .open } }

    func register(on router: Router<ServerRequestContext>) {
        router.read("/") { request, _ in try await self.page(request) }
        router.read("/catalog") { request, _ in
            guard let format = Negotiation.rdfFormat(request.headers[.accept]) else {
                return Negotiation.notAcceptable()
            }
            return try await self.catalogDocument(request, format: format, negotiated: true)
        }
        for format in RDFFormat.allCases {
            router.read("/catalog.\(format.fileExtension)") { request, _ in
                try await self.catalogDocument(request, format: format, negotiated: false)
            }
        }
        router.read("/tenants") { request, _ in self.tenantsPage(request) }
        router.read("/tenants/:ags") { request, context in
            try await self.tenantPage(request, ags: try context.parameters.require("ags"))
        }
        router.read("/tenants/:ags/:file") { request, context in
            try await self.tenantFile(request, ags: try context.parameters.require("ags"), file: try context.parameters.require("file"))
        }
        router.read("/datasets/:id") { request, context in
            try await self.datasetResource(request, context: context, id: try context.parameters.require("id"))
        }
        router.read("/datasets/:id/:file") { request, context in
            try await self.datasetFile(request, context: context, id: try context.parameters.require("id"), file: try context.parameters.require("file"))
        }
    }

    // MARK: Base URL

    /// `--base-url`, or `http://<Host of the request>` (so links work on whatever port the server got).
    func baseURL(_ request: Request) -> String {
        if var base = configuration.baseURL {
            while base.hasSuffix("/") { base.removeLast() }
            return base
        }
        let authority = request.head.authority ?? "\(configuration.host):\(configuration.port)"
        return "http://\(authority)"
    }

    // MARK: HTML page

    func page(_ request: Request, tenant: Tenant? = nil) async throws -> Response {
        let language: CatalogPage.Language = request.uri.queryParameters["lang"].map { $0.lowercased() } == "en" ? .en : .de
        let datasets = tenant.map { publicDatasets(of: $0) } ?? publicDatasets
        let snapshots = try await store.snapshots(datasets)
        let charts = try await self.charts.lastWeek(datasets, snapshots: snapshots)
        let base = baseURL(request)
        let html = CatalogPage.render(catalog: tenant.map { tenantCatalog($0, base: base) } ?? catalog, baseURL: base,
                                      datasets: zip(datasets, snapshots).map { ($0, $1.facts, $1.stationPoints) }, language: language,
                                      charts: charts, path: tenant.map { "/tenants/\($0.ags)" } ?? "")
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentLanguage: language.rawValue, .cacheControl: "no-cache"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    // MARK: Catalog

    func catalogDocument(_ request: Request, format: RDFFormat, negotiated: Bool, tenant: Tenant? = nil) async throws -> Response {
        let base = baseURL(request)
        let all = tenant.map { publicDatasets(of: $0) } ?? publicDatasets
        let path = tenant.map { "/tenants/\($0.ags)/catalog" } ?? "/catalog"
        let pageSize = max(1, configuration.catalogPageSize)
        let pageParameter = request.uri.queryParameters["page"].map(String.init)
        var page = 1
        if let pageParameter {
            guard let n = Int(pageParameter.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                return .problem(.badRequest, "page must be a whole number from 1, found '\(ObservationFilter.shorten(pageParameter))'", parameter: "page")
            }
            page = n
        }
        let paged = pageParameter != nil || all.count > pageSize
        let paging = DCATPaging(page: page, pageSize: pageSize, totalItems: all.count)
        if page > paging.lastPage {
            return .problem(.notFound, "page \(page) does not exist; the catalog has \(paging.lastPage) page\(paging.lastPage == 1 ? "" : "s") (\(pageSize) datasets per page)",
                            parameter: "page")
        }
        let slice = paged ? Array(all.dropFirst((page - 1) * pageSize).prefix(pageSize)) : all
        // The catalog's dct:modified is the newest change of any public dataset, the same on every page.
        let states = try await store.states(pipelines: all.map(\.pipeline))
        let modified = states.values.compactMap(\.lastModifiedMicros).max()
        var entries: [(DatasetMetadata, DatasetFacts)] = []
        for dataset in slice {
            let snapshot = try await store.snapshot(dataset, state: states[dataset.pipeline] ?? DatasetState())
            entries.append((dataset, snapshot.facts))
        }
        var document = DCATCatalog(catalog: tenant.map { tenantCatalog($0, base: base) } ?? catalog, baseURL: base, datasets: entries,
                                   paging: paged ? paging : nil, catalogModifiedMicros: modified)
            .serving([.ogcAPIFeatures, .sensorThings])
        document.catalogPath = path
        document.servicePublisher = catalog.publisher
        var headers: HTTPFields = [.contentType: format.contentType, .cacheControl: "no-cache"]
        if negotiated {
            headers[.vary] = "Accept"
            headers[.contentLocation] = "\(base)\(path).\(format.fileExtension)" + (pageParameter != nil ? "?page=\(page)" : "")
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: document.render(format))))
    }

    // MARK: Datasets

    /// The dataset, or the answer to send instead: an unknown id 404; a restricted dataset needs `read:<dataset>`,
    /// `tenant:<ags>` or `admin` (an API token or OIDC token), or the legacy `DATENWERK_DOWNLOAD_TOKEN` (it reads
    /// every restricted dataset): 401 without a token or with a wrong one, 403 with a token of other scopes, 429
    /// after too many wrong ones (`AccessControl`, docs/access.md). Every answer about it is `private, no-store`.
    func authorize(_ request: Request, context: ServerRequestContext, id: String) async throws -> Result<DatasetMetadata, ResponseError> {
        let notFound: () -> ResponseError = {
            let known = self.publicDatasets.map(\.id)
            let hint = closestMatch(to: id, in: known).map { "; did you mean '\($0)'?" } ?? ""
            return ResponseError(.problem(.notFound, "no dataset '\(ObservationFilter.shorten(id))'\(hint) (the catalog at /catalog lists the published datasets)",
                                          headers: [.cacheControl: "private, no-store", .vary: "Authorization"]))
        }
        guard let dataset = byID[id] else { return .failure(notFound()) }
        guard dataset.access == .restricted else { return .success(dataset) }
        guard let access else {
            logger.error("restricted dataset '\(id)': no access control configured; answered 404")
            return .failure(notFound())
        }
        let legacy = downloadToken.map { [AccessControl.Alternative(label: configuration.downloadTokenVariable, secret: $0)] } ?? []
        let need = AccessNeed(.read, dataset.id, tenant: access.tenant(ofPipeline: dataset.pipeline))
        switch try await access.check(request, context: context, need: need, alternatives: legacy, restricted: true) {
        case .success: return .success(dataset)
        case .failure(let answer): return .failure(answer)
        }
    }

    func datasetResource(_ request: Request, context: ServerRequestContext, id: String) async throws -> Response {
        let dataset: DatasetMetadata
        switch try await authorize(request, context: context, id: id) {
        case .success(let d): dataset = d
        case .failure(let answer): return answer.response
        }
        guard let format = Negotiation.rdfFormat(request.headers[.accept], htmlFirst: true) else {
            return try await datasetPage(request, dataset)
        }
        var response = try await record(request, dataset, format: format)
        response.headers[.vary] = "Accept"
        return response
    }

    func datasetFile(_ request: Request, context: ServerRequestContext, id: String, file: String) async throws -> Response {
        let dataset: DatasetMetadata
        switch try await authorize(request, context: context, id: id) {
        case .success(let d): dataset = d
        case .failure(let answer): return answer.response
        }
        let (name, ext) = Self.split(file)
        switch name {
        case "observations":
            guard let format = ObservationFormat(fileExtension: ext) else { break }
            return try await Downloads(publishing: self).observations(request, dataset: dataset, format: format)
        case "datapackage" where ext == "json":
            let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: dataset.pipeline))
            let package = DataPackage.json(dataset: dataset, facts: snapshot.facts, catalog: catalog, baseURL: baseURL(request))
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: cacheControl(dataset)],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: package.prettySerialized)))
        case "dcat":
            guard let format = RDFFormat(fileExtension: ext), ext != "xml", ext != "json" else { break }
            return try await record(request, dataset, format: format)
        default:
            break
        }
        let files = ObservationFormat.allCases.map { "observations.\($0.fileExtension)" } + ["datapackage.json"] + RDFFormat.allCases.map { "dcat.\($0.fileExtension)" }
        return .problem(.notFound, "dataset '\(dataset.id)' has no file '\(file)'; its files: \(files.joined(separator: ", "))")
    }

    /// The dataset's page for people: the catalog page's entry with a chart per property (`DatasetPage`).
    func datasetPage(_ request: Request, _ dataset: DatasetMetadata) async throws -> Response {
        let language: CatalogPage.Language = request.uri.queryParameters["lang"].map { $0.lowercased() } == "en" ? .en : .de
        let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: dataset.pipeline))
        let chart = try await charts.lastWeek(dataset, snapshot: snapshot)
        let html = DatasetPage.render(catalog: catalog, baseURL: baseURL(request), dataset: dataset, facts: snapshot.facts,
                                      stations: snapshot.stationPoints, chart: chart, language: language)
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentLanguage: language.rawValue,
                                               .cacheControl: cacheControl(dataset), .vary: "Accept"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// The dataset's own DCAT-AP.de record: a catalog holding only this dataset.
    func record(_ request: Request, _ dataset: DatasetMetadata, format: RDFFormat) async throws -> Response {
        let state = try await store.state(pipeline: dataset.pipeline)
        let snapshot = try await store.snapshot(dataset, state: state)
        let base = baseURL(request)
        let document = DCATCatalog(catalog: catalog, baseURL: base, datasets: [(dataset, snapshot.facts)], catalogModifiedMicros: state.lastModifiedMicros)
            .serving(dataset.access == .open ? [.ogcAPIFeatures, .sensorThings] : [])   // /ogcapi and /sta serve only open datasets
            .render(format, collectionURL: "\(base)/datasets/\(dataset.id)/dcat.\(format.fileExtension)")
        return Response(status: .ok, headers: [.contentType: format.contentType, .cacheControl: cacheControl(dataset)],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: document)))
    }

    func cacheControl(_ dataset: DatasetMetadata) -> String {
        dataset.access == .restricted ? "private, no-cache" : "no-cache"
    }

    /// `observations.csv` → (`observations`, `csv`).
    static func split(_ file: String) -> (String, String) {
        guard let dot = file.lastIndex(of: ".") else { return (file, "") }
        return (String(file[..<dot]), String(file[file.index(after: dot)...]))
    }
}

/// A response to send instead of going on.
struct ResponseError: Error {
    var response: Response
    init(_ response: Response) { self.response = response }
}

/// `Accept` header negotiation (RFC 9110 §12.5.1) among the catalog's media types.
enum Negotiation {
    /// The best RDF format for `accept` (no header or `*/*`: Turtle); nil when none is acceptable, or —
    /// with `htmlFirst` — when the client prefers HTML (a browser).
    static func rdfFormat(_ accept: String?, htmlFirst: Bool = false) -> RDFFormat? {
        guard let accept, !accept.trimmingCharacters(in: .whitespaces).isEmpty else { return .turtle }
        var best: (quality: Double, specificity: Int, order: Int, format: RDFFormat?)?
        // Our preference order breaks ties: Turtle, then JSON-LD, then RDF/XML; HTML first when asked.
        var offers: [(String, RDFFormat?)] = RDFFormat.allCases.map { ($0.mediaType, $0) } + [("application/json", .jsonLD)]
        if htmlFirst { offers.insert(("text/html", nil), at: 0) }
        let ranges = accept.split(separator: ",").compactMap { item -> (type: String, q: Double)? in
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = parts.first, !type.isEmpty else { return nil }
            var q = 1.0
            for p in parts.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 0 }
            return (type, q)
        }
        for (order, offer) in offers.enumerated() {
            let (type, format) = offer
            let major = type.split(separator: "/").first.map(String.init) ?? ""
            // The most specific matching range decides the offer's quality.
            var match: (q: Double, specificity: Int)?
            for range in ranges {
                let specificity: Int
                if range.type == type { specificity = 3 } else if range.type == major + "/*" { specificity = 2 } else if range.type == "*/*" { specificity = 1 } else { continue }
                if match == nil || specificity > match!.specificity { match = (range.q, specificity) }
            }
            guard let match, match.q > 0 else { continue }
            if best == nil || match.q > best!.quality || (match.q == best!.quality && match.specificity > best!.specificity) {
                best = (match.q, match.specificity, order, format)
            }
        }
        return best?.format
    }

    static func notAcceptable() -> Response {
        .problem(.notAcceptable, "the catalog is available as text/turtle, application/rdf+xml and application/ld+json; "
                 + "ask for one of them in Accept, or use /catalog.ttl, /catalog.rdf or /catalog.jsonld")
    }
}
