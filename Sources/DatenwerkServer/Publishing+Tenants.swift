import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The per-tenant views of the catalog: `/tenants`, `/tenants/{ags}/` and `/tenants/{ags}/catalog[.ttl|.rdf|.jsonld]`.
/// A tenant's catalog holds its pipelines' public datasets with the tenant as publisher; `/catalog` holds them all.
extension Publishing {
    /// The tenant's public datasets, in pipeline order.
    func publicDatasets(of tenant: Tenant) -> [DatasetMetadata] {
        publicDatasets.filter { tenantOf[$0.id] == tenant.ags }
    }

    /// The installation's catalog as the tenant's: its name in the title, the tenant as publisher (and contact, if
    /// `tenants.yaml` gives one), its page as homepage. Licence, languages and contributor ID stay the installation's.
    func tenantCatalog(_ tenant: Tenant, base: String) -> CatalogMetadata {
        var c = catalog
        c.title = "\(catalog.title) – \(tenant.name)"
        c.titleEN = catalog.titleEN.map { "\($0) – \(tenant.name)" }
        c.description = "Die offenen Daten von \(tenant.name) (Gemeindeschlüssel \(tenant.ags)) im Katalog „\(catalog.title)“."
        c.descriptionEN = "The open data of \(tenant.name) (municipality key \(tenant.ags)) in the catalogue “\(catalog.titleEN ?? catalog.title)”."
        c.publisher = TenantResolver.publisher(of: tenant) ?? catalog.publisher
        c.contact = tenant.contact ?? catalog.contact
        c.homepage = "\(base)/tenants/\(tenant.ags)/"
        return c
    }

    /// The tenant, or a 404 problem naming the known ones.
    func knownTenant(_ ags: String) -> Result<Tenant, ResponseError> {
        if let tenant = tenants[ags] { return .success(tenant) }
        let known = tenants.keys.sorted()
        let hint = closestMatch(to: ags, in: known).map { "; did you mean '\($0)'?" } ?? ""
        let what = Tenant.isKeyShaped(ags) ? "no tenant '\(ags)' publishes here" : "'\(ObservationFilter.shorten(ags))' is not a tenant key (8 digits)"
        return .failure(ResponseError(.problem(.notFound, "\(what)\(hint) (/tenants lists the municipalities and associations of this catalog)")))
    }

    func tenantsPage(_ request: Request) -> Response {
        let language: CatalogPage.Language = request.uri.queryParameters["lang"].map { $0.lowercased() } == "en" ? .en : .de
        let open = publicDatasets
        let list = tenants.values.sorted { $0.ags < $1.ags }.map { tenant in (tenant, datasets: open.filter { tenantOf[$0.id] == tenant.ags }.count) }
        let html = TenantsPage.render(catalog: catalog, baseURL: baseURL(request), tenants: list, language: language)
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentLanguage: language.rawValue, .cacheControl: "no-cache"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    func tenantPage(_ request: Request, ags: String) async throws -> Response {
        switch knownTenant(ags) {
        case .success(let tenant): return try await page(request, tenant: tenant)
        case .failure(let answer): return answer.response
        }
    }

    /// `catalog` (by `Accept`, like `/catalog`) or `catalog.ttl|rdf|jsonld`.
    func tenantFile(_ request: Request, ags: String, file: String) async throws -> Response {
        let tenant: Tenant
        switch knownTenant(ags) {
        case .success(let t): tenant = t
        case .failure(let answer): return answer.response
        }
        if file == "catalog" {
            guard let format = Negotiation.rdfFormat(request.headers[.accept]) else { return Negotiation.notAcceptable() }
            return try await catalogDocument(request, format: format, negotiated: true, tenant: tenant)
        }
        let (name, ext) = Self.split(file)
        if name == "catalog", let format = RDFFormat(fileExtension: ext), ext != "xml", ext != "json" {
            return try await catalogDocument(request, format: format, negotiated: false, tenant: tenant)
        }
        let files = ["catalog"] + RDFFormat.allCases.map { "catalog.\($0.fileExtension)" }
        return .problem(.notFound, "tenant '\(tenant.ags)' has no file '\(ObservationFilter.shorten(file))'; its files: \(files.joined(separator: ", ")) (and its page /tenants/\(tenant.ags)/)")
    }
}

/// Finds each pipeline's tenant (the `tenants.yaml` nearest to its file, as `datenwerk validate` does, else the
/// bundled Gemeindeverzeichnis) and collects the tenants of an installation.
struct TenantResolver {
    let logger: Logger
    private(set) var tenants: [String: Tenant] = [:]
    /// By the folder of a pipeline file.
    private var directories: [String: TenantDirectory] = [:]

    init(logger: Logger) { self.logger = logger }

    mutating func tenant(_ spec: PipelineSpec) -> Tenant {
        let folder = (spec.file as NSString).deletingLastPathComponent
        let directory: TenantDirectory
        if let known = directories[folder] { directory = known } else {
            do {
                directory = try TenantDirectory.near(spec.file)
            } catch {
                logger.warning("pipeline '\(spec.name)': \(TenantDirectory.fileName) cannot be read (\(error)); using the bundled Gemeindeverzeichnis")
                directory = TenantDirectory()
            }
            directories[folder] = directory
            for ags in directory.declaredOrder where tenants[ags] == nil { tenants[ags] = directory.tenant(ags) }
        }
        // The pipeline was validated against the same directory; an unknown key still gets a tenant of its own.
        let tenant = directory.tenant(spec.tenant) ?? Tenant(ags: spec.tenant, name: spec.tenant, level: .association)
        if tenants[tenant.ags] == nil { tenants[tenant.ags] = tenant }
        return tenants[tenant.ags] ?? tenant
    }

    /// The tenant's DCAT publisher: its `tenants.yaml` publisher (or name), else its name in the Gemeindeverzeichnis;
    /// none for undeclared nationwide data (`00000000`), which the installation publishes itself.
    static func publisher(of tenant: Tenant) -> Agent? {
        tenant.level == .federal && !tenant.declared ? nil : tenant.publisher
    }

    /// The dataset as published: without a publisher (contact) of its own, the tenant's.
    static func published(_ dataset: DatasetMetadata, by tenant: Tenant) -> DatasetMetadata {
        var d = dataset
        if d.publisher == nil { d.publisher = publisher(of: tenant) }
        if d.contact == nil, let contact = tenant.contact { d.contact = contact }
        return d
    }
}
