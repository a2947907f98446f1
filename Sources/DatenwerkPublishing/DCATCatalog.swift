import DatenwerkCore

/// The serialisations of the DCAT-AP.de catalog.
package enum RDFFormat: String, Sendable, CaseIterable {
    case turtle, rdfXML, jsonLD

    package var mediaType: String {
        switch self {
        case .turtle: return "text/turtle"
        case .rdfXML: return "application/rdf+xml"
        case .jsonLD: return "application/ld+json"
        }
    }

    /// The `Content-Type` to send (all three are UTF-8).
    package var contentType: String { mediaType + "; charset=utf-8" }

    /// `ttl`, `rdf`, `jsonld` (the `/catalog.<ext>` suffixes).
    package var fileExtension: String {
        switch self {
        case .turtle: return "ttl"
        case .rdfXML: return "rdf"
        case .jsonLD: return "jsonld"
        }
    }

    package init?(fileExtension: String) {
        switch fileExtension.lowercased() {
        case "ttl": self = .turtle
        case "rdf", "xml": self = .rdfXML
        case "jsonld", "json": self = .jsonLD
        default: return nil
        }
    }

    /// The format for a media type (`text/turtle`, `application/rdf+xml`, `application/ld+json`, `application/json`).
    package init?(mediaType: String) {
        let bare = mediaType.split(separator: ";").first.map { $0.trimmingCharacters() } ?? ""
        switch bare.lowercased() {
        case "text/turtle", "application/x-turtle": self = .turtle
        case "application/rdf+xml", "application/xml", "text/xml": self = .rdfXML
        case "application/ld+json", "application/json": self = .jsonLD
        default: return nil
        }
    }
}

/// Which slice of the catalog a document holds. Pages are numbered from 1.
package struct DCATPaging: Sendable, Hashable {
    package var page: Int
    package var pageSize: Int
    /// All datasets of the catalog, not only this page's.
    package var totalItems: Int

    package init(page: Int, pageSize: Int, totalItems: Int) {
        self.page = page
        self.pageSize = pageSize
        self.totalItems = totalItems
    }

    package var lastPage: Int { max(1, (totalItems + max(pageSize, 1) - 1) / max(pageSize, 1)) }
}

/// One page of the DCAT-AP.de catalog (profile de-2.0 with the GovData conventions), built once as
/// triples and written as Turtle, RDF/XML or JSON-LD.
///
/// IRIs: the catalog is `<base>/catalog`, a dataset `<base>/datasets/<id>`, its distributions
/// `<base>/datasets/<id>/distributions/<csv|geojson|ndjson>`, downloads `<base>/datasets/<id>/observations.<ext>`,
/// organisations `<base>/organizations/<slug of name>`; landing page `<base>/#<id>`.
/// Pages carry hydra paging (`hydra:PagedCollection` with next/nextPage, first, last, totalItems,
/// itemsPerPage) as ckanext-dcat reads and writes it. Everything that repeats on several pages
/// (catalog, publishers) is an IRI with the same values on every page, so merged pages stay valid:
/// pass the same `catalogModifiedMicros` (the newest change over *all* datasets) for every page.
package struct DCATCatalog: Sendable {
    package var catalog: CatalogMetadata
    package var baseURL: String
    package var datasets: [(DatasetMetadata, DatasetFacts)]
    package var paging: DCATPaging?
    package var catalogModifiedMicros: Int64?
    /// Also state the class of every referenced vocabulary IRI (`dct:LicenseDocument`, `dct:Frequency`, …),
    /// which the EU DCAT-AP 3.0.1 shapes require; harmless for DCAT-AP.de 2.0.
    package var typeReferencedResources = true
    /// Standard APIs serving every dataset (`dcat:DataService`): one more distribution per dataset with `dcat:accessService`.
    package var services: [DCATDataService] = []
    /// Where the catalog lives under the base URL: `/catalog`, or a tenant's `/tenants/<ags>/catalog`.
    package var catalogPath = "/catalog"
    /// The publisher of the data services (the installation's); nil: the catalog's publisher. A tenant's catalog
    /// names the tenant as its publisher, while the APIs stay the installation's (the same IRI in every catalog).
    package var servicePublisher: Agent?

    package init(
        catalog: CatalogMetadata, baseURL: String, datasets: [(DatasetMetadata, DatasetFacts)],
        paging: DCATPaging? = nil, catalogModifiedMicros: Int64? = nil
    ) {
        self.catalog = catalog
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.datasets = datasets
        self.paging = paging
        self.catalogModifiedMicros = catalogModifiedMicros
    }

    /// The document in `format`. `collectionURL` is where this format is served without `?page=`
    /// (default `<catalog IRI>.<ext>`, e.g. `<base>/catalog.ttl`); page links append `?page=N` to it.
    package func render(_ format: RDFFormat, collectionURL: String? = nil) -> String {
        let graph = graph(collectionURL: collectionURL ?? "\(catalogIRI).\(format.fileExtension)")
        switch format {
        case .turtle: return TurtleWriter.write(graph)
        case .rdfXML: return RDFXMLWriter.write(graph)
        case .jsonLD: return JSONLDWriter.write(graph)
        }
    }

    /// The URL of page `n` of a collection URL.
    package static func pageURL(_ collectionURL: String, page: Int) -> String {
        collectionURL + (collectionURL.contains("?") ? "&" : "?") + "page=\(page)"
    }

    /// The catalog's IRI.
    package var catalogIRI: String { baseURL + catalogPath }

    package func datasetIRI(_ id: String) -> String { "\(baseURL)/datasets/\(id)" }

    package func downloadURL(_ id: String, _ format: ObservationFormat) -> String {
        "\(baseURL)/datasets/\(id)/observations.\(format.fileExtension)"
    }

    // MARK: Building the graph

    package func graph(collectionURL: String) -> RDFGraph {
        var b = Builder()
        let catalogNode = RDFTerm.iri(iri(catalogIRI))
        let catalogPublisher = agentNode(catalog.publisher, into: &b)
        let languages = catalog.languages.compactMap { LanguageCode.iri($0) }

        b.add(catalogNode, NS.type, .iri(NS.dcat + "Catalog"))
        b.add(catalogNode, NS.dct + "title", .text(clean(catalog.title), "de"))
        if let en = catalog.titleEN { b.add(catalogNode, NS.dct + "title", .text(clean(en), "en")) }
        b.add(catalogNode, NS.dct + "description", .text(clean(catalog.description), "de"))
        if let en = catalog.descriptionEN { b.add(catalogNode, NS.dct + "description", .text(clean(en), "en")) }
        b.add(catalogNode, NS.dct + "publisher", catalogPublisher)
        let homepage = iri(catalog.homepage ?? baseURL + "/")
        b.add(catalogNode, NS.foaf + "homepage", .iri(homepage))
        b.document(homepage)
        for language in languages {
            b.add(catalogNode, NS.dct + "language", .iri(language))
            b.typed(language, NS.dct + "LinguisticSystem")
        }
        b.add(catalogNode, NS.dct + "license", .iri(catalog.licence.iri))
        b.typed(catalog.licence.iri, NS.dct + "LicenseDocument")
        if let issued = catalog.issued { b.add(catalogNode, NS.dct + "issued", .typed(issued, NS.xsd + "date")) }
        if let modified = catalogModifiedMicros { b.add(catalogNode, NS.dct + "modified", dateTime(modified)) }
        b.add(catalogNode, NS.dcat + "themeTaxonomy", .iri(DataTheme.scheme))
        if typeReferencedResources {
            b.add(.iri(DataTheme.scheme), NS.type, .iri(NS.skos + "ConceptScheme"))
            b.add(.iri(DataTheme.scheme), NS.dct + "title", .text("Data theme", "en"))
        }

        if let paging {
            let page = RDFTerm.iri(iri(Self.pageURL(collectionURL, page: paging.page)))
            let pageLink = { (n: Int) in RDFTerm.iri(iri(Self.pageURL(collectionURL, page: n))) }
            b.add(page, NS.type, .iri(NS.hydra + "PagedCollection"))
            b.add(page, NS.hydra + "totalItems", .typed(String(paging.totalItems), NS.xsd + "integer"))
            b.add(page, NS.hydra + "itemsPerPage", .typed(String(paging.pageSize), NS.xsd + "integer"))
            b.add(page, NS.hydra + "first", pageLink(1))
            b.add(page, NS.hydra + "firstPage", pageLink(1))
            b.add(page, NS.hydra + "last", pageLink(paging.lastPage))
            b.add(page, NS.hydra + "lastPage", pageLink(paging.lastPage))
            if paging.page < paging.lastPage {
                b.add(page, NS.hydra + "next", pageLink(paging.page + 1))
                b.add(page, NS.hydra + "nextPage", pageLink(paging.page + 1))
            }
            if paging.page > 1 {
                b.add(page, NS.hydra + "previous", pageLink(min(paging.page - 1, paging.lastPage)))
                b.add(page, NS.hydra + "previousPage", pageLink(min(paging.page - 1, paging.lastPage)))
            }
        }

        // Blank nodes are numbered across pages, so pages merged into one graph (JSON-LD readers share
        // blank node labels between documents) never join two datasets' locations or periods.
        let offset = paging.map { max(0, $0.page - 1) * $0.pageSize } ?? 0
        for (index, (dataset, facts)) in datasets.enumerated() {
            let node = RDFTerm.iri(iri(datasetIRI(dataset.id)))
            b.add(catalogNode, NS.dcat + "dataset", node)
            addDataset(dataset, facts, node: node, number: offset + index + 1, languages: languages, into: &b)
        }
        addServices(catalogNode, into: &b)
        if typeReferencedResources {
            for (resource, type) in b.types { b.add(.iri(resource), NS.type, .iri(type)) }
        }
        return b.graph
    }

    private func addDataset(_ d: DatasetMetadata, _ facts: DatasetFacts, node: RDFTerm, number: Int, languages: [String], into b: inout Builder) {
        b.add(node, NS.type, .iri(NS.dcat + "Dataset"))
        b.add(node, NS.dct + "identifier", .text(d.id))
        b.add(node, NS.dct + "title", .text(clean(d.title), "de"))
        if let en = d.titleEN { b.add(node, NS.dct + "title", .text(clean(en), "en")) }
        // The privacy gate (`min_count`, docs/privacy.md) is stated in the description and as each distribution's `dct:rights`.
        b.add(node, NS.dct + "description", .text(clean(d.description + (d.privacyNote(german: true).map { "\n\n" + $0 } ?? "")), "de"))
        if let en = d.descriptionEN {
            b.add(node, NS.dct + "description", .text(clean(en + (d.privacyNote(german: false).map { "\n\n" + $0 } ?? "")), "en"))
        }
        let publisher = d.publisher ?? catalog.publisher
        b.add(node, NS.dct + "publisher", agentNode(publisher, into: &b))
        b.add(node, NS.dcatde + "contributorID", .iri(ContributorID.iri(d.contributorID ?? catalog.contributorID)))

        if let contact = d.contact ?? catalog.contact ?? fallbackContact(publisher) {
            let c = RDFTerm.blank("contact\(number)")
            b.add(node, NS.dcat + "contactPoint", c)
            b.add(c, NS.type, .iri(NS.vcard + "Organization"))
            b.add(c, NS.vcard + "fn", .text(clean(contact.name)))
            if let email = contact.email { b.add(c, NS.vcard + "hasEmail", .iri(iri("mailto:" + email))) }
            if let url = contact.url { b.add(c, NS.vcard + "hasURL", .iri(iri(url))) }
        }
        if let theme = d.theme { b.add(node, NS.dcat + "theme", .iri(theme.iri)) }
        for keyword in d.keywords { b.add(node, NS.dcat + "keyword", .text(clean(keyword), "de")) }
        for keyword in d.keywordsEN { b.add(node, NS.dcat + "keyword", .text(clean(keyword), "en")) }
        let landing = iri("\(baseURL)/#\(d.id)")
        b.add(node, NS.dcat + "landingPage", .iri(landing))
        b.document(landing)
        let issued = facts.firstLoadedMicros.map(dateTime)
        let modified = facts.lastModifiedMicros.map(dateTime)
        b.add(node, NS.dct + "issued", issued)
        b.add(node, NS.dct + "modified", modified)
        for language in languages { b.add(node, NS.dct + "language", .iri(language)) }
        if let frequency = d.updateFrequency {
            b.add(node, NS.dct + "accrualPeriodicity", .iri(frequency.iri))
            b.typed(frequency.iri, NS.dct + "Frequency")
        }
        b.add(node, NS.dct + "accessRights", .iri(d.access.iri))
        b.typed(d.access.iri, NS.dct + "RightsStatement")

        if let ags = d.spatial.ags, PoliticalGeocoding.isMunicipalityKey(ags) {
            b.add(node, NS.dcatde + "politicalGeocodingLevelURI", .iri(PoliticalGeocoding.municipalityLevel))
            b.add(node, NS.dcatde + "politicalGeocodingURI", .iri(PoliticalGeocoding.municipalityIRI(ags: ags)))
        }
        let box = [facts.bbox, d.spatial.bbox].compactMap { $0 }.first(where: \.isValid)
        if box != nil || d.spatial.geometryWKT != nil {
            let location = RDFTerm.blank("spatial\(number)")
            b.add(node, NS.dct + "spatial", location)
            b.add(location, NS.type, .iri(NS.dct + "Location"))
            if let box {
                if !box.isDegenerate { b.add(location, NS.dcat + "bbox", .typed(Self.wktPolygon(box), NS.gsp + "wktLiteral")) }
                let c = box.center
                b.add(location, NS.dcat + "centroid", .typed("POINT(\(ByteWriting.format(c.longitude)) \(ByteWriting.format(c.latitude)))", NS.gsp + "wktLiteral"))
            }
            if let wkt = d.spatial.geometryWKT { b.add(location, NS.locn + "geometry", .typed(clean(wkt), NS.gsp + "wktLiteral")) }
        }
        if facts.firstMicros != nil || facts.lastMicros != nil {
            let period = RDFTerm.blank("temporal\(number)")
            b.add(node, NS.dct + "temporal", period)
            b.add(period, NS.type, .iri(NS.dct + "PeriodOfTime"))
            b.add(period, NS.dcat + "startDate", facts.firstMicros.map(dateTime))
            b.add(period, NS.dcat + "endDate", facts.lastMicros.map(dateTime))
        }

        let attribution = d.licence.attribution ? clean(d.attribution ?? publisher.name) : nil
        var privacy: RDFTerm?
        if let note = d.privacyNote(german: true) {
            let rights = RDFTerm.blank("privacy\(number)")
            b.add(rights, NS.type, .iri(NS.dct + "RightsStatement"))
            b.add(rights, NS.dct + "description", .text(note, "de"))
            if let en = d.privacyNote(german: false) { b.add(rights, NS.dct + "description", .text(en, "en")) }
            privacy = rights
        }
        for format in ObservationFormat.allCases {
            let dist = RDFTerm.iri(iri("\(baseURL)/datasets/\(d.id)/distributions/\(format.rawValue)"))
            let download = RDFTerm.iri(iri(downloadURL(d.id, format)))
            b.add(node, NS.dcat + "distribution", dist)
            b.add(dist, NS.type, .iri(NS.dcat + "Distribution"))
            b.add(dist, NS.dct + "title", .text("\(clean(d.title)) (\(format.label))", "de"))
            b.add(dist, NS.dct + "description", .text(format.descriptionDE, "de"))
            b.add(dist, NS.dcat + "accessURL", download)
            b.add(dist, NS.dcat + "downloadURL", download)
            b.add(dist, NS.dct + "format", .iri(format.euFileType))
            b.typed(format.euFileType, NS.dct + "MediaTypeOrExtent")
            if let media = format.ianaMediaType {
                b.add(dist, NS.dcat + "mediaType", .iri(media))
                b.typed(media, NS.dct + "MediaType")
            }
            if format == .ndjson {
                b.add(dist, NS.dct + "conformsTo", .iri(ObservationFormat.ndjsonSpec))
                b.typed(ObservationFormat.ndjsonSpec, NS.dct + "Standard")
            }
            if format == .csv {
                let package = iri("\(baseURL)/datasets/\(d.id)/datapackage.json")
                b.add(dist, NS.foaf + "page", .iri(package))
                b.document(package)
            }
            b.add(dist, NS.dct + "license", .iri(d.licence.iri))
            b.typed(d.licence.iri, NS.dct + "LicenseDocument")
            if let privacy { b.add(dist, NS.dct + "rights", privacy) }
            if let attribution { b.add(dist, NS.dcatde + "licenseAttributionByText", .text(attribution)) }
            b.add(dist, NS.dct + "issued", issued)
            b.add(dist, NS.dct + "modified", modified)
        }
        for service in services {
            let dist = RDFTerm.iri(iri("\(baseURL)/datasets/\(d.id)/distributions/\(service.key)"))
            let access = RDFTerm.iri(iri(baseURL + service.datasetPathTemplate.replacingOccurrences(of: "{id}", with: d.id)))
            b.add(node, NS.dcat + "distribution", dist)
            b.add(dist, NS.type, .iri(NS.dcat + "Distribution"))
            b.add(dist, NS.dct + "title", .text("\(clean(d.title)) (\(service.title))", "de"))
            b.add(dist, NS.dct + "description", .text(service.descriptionDE, "de"))
            b.add(dist, NS.dcat + "accessURL", access)
            b.add(dist, NS.dcat + "accessService", .iri(iri(baseURL + service.endpointPath)))
            b.add(dist, NS.dct + "format", .iri(service.fileType))
            b.typed(service.fileType, NS.dct + "MediaTypeOrExtent")
            if let media = service.mediaType {
                b.add(dist, NS.dcat + "mediaType", .iri(media))
                b.typed(media, NS.dct + "MediaType")
            }
            b.add(dist, NS.dct + "license", .iri(d.licence.iri))
            b.typed(d.licence.iri, NS.dct + "LicenseDocument")
            if let privacy { b.add(dist, NS.dct + "rights", privacy) }
            if let attribution { b.add(dist, NS.dcatde + "licenseAttributionByText", .text(attribution)) }
            b.add(dist, NS.dct + "issued", issued)
            b.add(dist, NS.dct + "modified", modified)
        }
    }

    /// Each service as a `dcat:DataService` of the catalog, serving the datasets of this page.
    private func addServices(_ catalogNode: RDFTerm, into b: inout Builder) {
        for service in services {
            let node = RDFTerm.iri(iri(baseURL + service.endpointPath))
            b.add(catalogNode, NS.dcat + "service", node)
            b.add(node, NS.type, .iri(NS.dcat + "DataService"))
            b.add(node, NS.dct + "title", .text(service.title, "de"))
            b.add(node, NS.dct + "description", .text(service.descriptionDE, "de"))
            b.add(node, NS.dcat + "endpointURL", node)
            b.add(node, NS.dcat + "endpointDescription", .iri(iri(baseURL + service.descriptionPath)))
            b.add(node, NS.dct + "conformsTo", .iri(service.conformsTo))
            b.typed(service.conformsTo, NS.dct + "Standard")
            b.add(node, NS.dct + "publisher", agentNode(servicePublisher ?? catalog.publisher, into: &b))
            b.add(node, NS.dct + "license", .iri(catalog.licence.iri))
            b.typed(catalog.licence.iri, NS.dct + "LicenseDocument")
            for (dataset, _) in datasets { b.add(node, NS.dcat + "servesDataset", .iri(iri(datasetIRI(dataset.id)))) }
        }
    }

    /// A contact point made from the publisher when none is configured (only if it has an e-mail or URL).
    private func fallbackContact(_ publisher: Agent) -> ContactPoint? {
        guard publisher.email != nil || publisher.url != nil else { return nil }
        return ContactPoint(name: publisher.name, email: publisher.email, url: publisher.url)
    }

    private func agentNode(_ agent: Agent, into b: inout Builder) -> RDFTerm {
        let node = RDFTerm.iri(iri("\(baseURL)/organizations/\(Self.slug(agent.name))"))
        b.add(node, NS.type, .iri(NS.foaf + "Organization"))
        b.add(node, NS.foaf + "name", .text(clean(agent.name)))
        if let email = agent.email { b.add(node, NS.foaf + "mbox", .iri(iri("mailto:" + email))) }
        if let url = agent.url {
            b.add(node, NS.foaf + "homepage", .iri(iri(url)))
            b.document(iri(url))
        }
        return node
    }

    private func dateTime(_ micros: Int64) -> RDFTerm { .typed(ByteWriting.timestamp(micros: micros), NS.xsd + "dateTime") }

    /// A closed WKT polygon around the box, counter-clockwise.
    static func wktPolygon(_ box: BoundingBox) -> String {
        let w = ByteWriting.format(box.minLongitude), s = ByteWriting.format(box.minLatitude)
        let e = ByteWriting.format(box.maxLongitude), n = ByteWriting.format(box.maxLatitude)
        return "POLYGON((\(w) \(s), \(e) \(s), \(e) \(n), \(w) \(n), \(w) \(s)))"
    }

    /// `Stadt Münster, Umweltamt` → `stadt-muenster-umweltamt`.
    package static func slug(_ name: String) -> String {
        var out = ""
        var dash = false
        for scalar in name.lowercased().unicodeScalars {
            let piece: String
            switch scalar {
            case "ä": piece = "ae"
            case "ö": piece = "oe"
            case "ü": piece = "ue"
            case "ß": piece = "ss"
            case "a"..."z", "0"..."9": piece = String(scalar)
            default: piece = ""
            }
            if piece.isEmpty {
                dash = !out.isEmpty
            } else {
                if dash { out += "-" }
                out += piece
                dash = false
            }
        }
        return out.isEmpty ? "organisation" : out
    }

    /// An IRI with the characters Turtle, XML attributes and JSON-LD cannot carry percent-encoded.
    func iri(_ text: String) -> String {
        let forbidden = "<>\"{}|^`\\".unicodeScalars
        guard text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || forbidden.contains($0) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value <= 0x20 || scalar.value == 0x7F || forbidden.contains(scalar) {
                let v = UInt8(scalar.value)
                out += "%" + String(v >> 4, radix: 16, uppercase: true) + String(v & 0xF, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Literal text without the control characters XML 1.0 cannot carry (tab, LF and CR stay).
    func clean(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: Self.isForbidden) else { return text }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.unicodeScalars.filter { !Self.isForbidden($0) })
        return String(out)
    }

    private static func isForbidden(_ s: Unicode.Scalar) -> Bool {
        (s.value < 0x20 && s != "\t" && s != "\n" && s != "\r") || s.value == 0xFFFE || s.value == 0xFFFF
    }

    /// Collects triples and, when asked, the class statements of referenced vocabulary IRIs.
    private struct Builder {
        var graph = RDFGraph()
        var types: [(String, String)] = []
        var typedIRIs: Set<String> = []

        mutating func add(_ s: RDFTerm, _ p: String, _ o: RDFTerm?) { graph.add(s, p, o) }
        mutating func typed(_ iri: String, _ type: String) {
            if typedIRIs.insert(iri).inserted { types.append((iri, type)) }
        }
        mutating func document(_ iri: String) { typed(iri, NS.foaf + "Document") }
    }
}

extension ObservationFormat {
    static let ndjsonSpec = "https://github.com/ndjson/ndjson-spec"

    var label: String {
        switch self {
        case .csv: return "CSV"
        case .geojson: return "GeoJSON"
        case .ndjson: return "NDJSON"
        }
    }

    var descriptionDE: String {
        switch self {
        case .csv: return "Beobachtungen als CSV (UTF-8, Komma als Trennzeichen, Punkt als Dezimalzeichen, Zeitangaben in UTC nach ISO 8601); Tabellenschema in datapackage.json."
        case .geojson: return "Beobachtungen als GeoJSON-FeatureCollection (RFC 7946, WGS 84), ein Punkt-Feature je Beobachtung."
        case .ndjson: return "Beobachtungen als Newline-delimited JSON (ein JSON-Objekt je Zeile, Zeitangaben in UTC nach ISO 8601)."
        }
    }

    /// EU file type (the bundled list has no NDJSON; NDJSON is JSON conforming to the NDJSON spec).
    var euFileType: String {
        let base = "http://publications.europa.eu/resource/authority/file-type/"
        switch self {
        case .csv: return base + "CSV"
        case .geojson: return base + "GEOJSON"
        case .ndjson: return base + "JSON"
        }
    }

    /// IANA media type IRI; none for NDJSON, which is not registered.
    var ianaMediaType: String? {
        switch self {
        case .csv: return "http://www.iana.org/assignments/media-types/text/csv"
        case .geojson: return "http://www.iana.org/assignments/media-types/application/geo+json"
        case .ndjson: return nil
        }
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self[...]
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
