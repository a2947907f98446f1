/// What a pipeline's `dataset:` block says about the data it loads, with every code already
/// resolved to its vocabulary entry (and so to its IRI).
package struct DatasetMetadata: Sendable, Hashable {
    /// URL slug: `/datasets/<id>/…`.
    package var id: String
    /// The pipeline that loads it.
    package var pipeline: String
    package var title: String
    package var titleEN: String?
    package var description: String
    package var descriptionEN: String?
    package var keywords: [String]
    package var keywordsEN: [String]
    package var theme: DataTheme?
    package var licence: Licence
    /// `dcatde:licenseAttributionByText`; nil: the publisher's name (for licences that ask for attribution).
    package var attribution: String?
    /// nil: the catalog's publisher.
    package var publisher: Agent?
    /// nil: the catalog's contact point.
    package var contact: ContactPoint?
    /// nil: the catalog's contributor ID.
    package var contributorID: String?
    package var spatial: SpatialCoverage
    package var updateFrequency: UpdateFrequency?
    package var access: DatasetAccess
    /// `min_count`: the privacy gate for counts of people (docs/privacy.md). Every published value of the
    /// dataset that is not 0 and below it is suppressed, and so is every aggregate computed from such a value.
    package var minCount: Int?

    package init(
        id: String, pipeline: String, title: String, titleEN: String? = nil, description: String, descriptionEN: String? = nil,
        keywords: [String] = [], keywordsEN: [String] = [], theme: DataTheme? = nil, licence: Licence = .dlByDe20,
        attribution: String? = nil, publisher: Agent? = nil, contact: ContactPoint? = nil, contributorID: String? = nil,
        spatial: SpatialCoverage = SpatialCoverage(), updateFrequency: UpdateFrequency? = nil, access: DatasetAccess = .open,
        minCount: Int? = nil
    ) {
        self.id = id
        self.pipeline = pipeline
        self.title = title
        self.titleEN = titleEN
        self.description = description
        self.descriptionEN = descriptionEN
        self.keywords = keywords
        self.keywordsEN = keywordsEN
        self.theme = theme
        self.licence = licence
        self.attribution = attribution
        self.publisher = publisher
        self.contact = contact
        self.contributorID = contributorID
        self.spatial = spatial
        self.updateFrequency = updateFrequency
        self.access = access
        self.minCount = minCount
    }

    /// The quality a suppressed value is published with (its value is missing: an empty CSV cell, JSON null).
    package static let suppressedQuality = "suppressed"

    /// The gate as one sentence for people (the DCAT description, the dataset page); nil without a gate.
    package func privacyNote(german: Bool) -> String? {
        guard let minCount else { return nil }
        return german
            ? "Datenschutz: Zählwerte unter \(minCount) (außer 0) werden nicht veröffentlicht – in den Downloads ist der Wert leer "
                + "(JSON: null) mit der Qualität „\(Self.suppressedQuality)“; Stunden- und Tageswerte (Mittel, Minimum, Maximum, Summe), "
                + "in die ein solcher Wert eingeht, werden ebenfalls unterdrückt."
            : "Privacy: counts below \(minCount) (other than 0) are not published – in downloads the value is empty (JSON: null) "
                + "with the quality \"\(Self.suppressedQuality)\"; hourly and daily values (mean, minimum, maximum, sum) computed "
                + "from such a value are suppressed too."
    }

    /// True when `value` may not be published under the privacy gate: `min_count` is set and the value is
    /// not 0 and below it (0 is published: nobody counted discloses nobody).
    @inline(__always)
    package func suppresses(_ value: Double) -> Bool {
        guard let minCount else { return false }
        return value != 0 && value < Double(minCount)
    }
}

package enum DatasetAccess: String, Sendable, Hashable, CaseIterable {
    /// Listed in the public catalog, downloads without a token.
    case open
    /// Not in the public catalog; downloads need a token.
    case restricted

    /// The EU access-right IRI.
    package var iri: String {
        switch self {
        case .open: return "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
        case .restricted: return "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
        }
    }
}

/// A publisher (`foaf:Organization`).
package struct Agent: Sendable, Hashable {
    package var name: String
    /// The organisation's web site (`foaf:homepage`).
    package var url: String?
    package var email: String?
    /// ADMS publisher type (`LocalAuthority`, `NationalAuthority`, …). Kept for people and portals that
    /// read it; not written to DCAT-AP.de 2.0, whose shapes only accept a namespace the real ADMS IRIs are not in.
    package var type: String?

    package init(name: String, url: String? = nil, email: String? = nil, type: String? = nil) {
        self.name = name
        self.url = url
        self.email = email
        self.type = type
    }

    /// ADMS publisher types (http://purl.org/adms/publishertype/…).
    package static let types = [
        "Academia-ScientificOrganisation", "Company", "IndustryConsortium", "LocalAuthority", "NationalAuthority",
        "NonGovernmentalOrganisation", "NonProfitOrganisation", "PrivateIndividual(s)", "RegionalAuthority",
        "StandardisationBody", "SupraNationalAuthority",
    ]
}

/// A contact point (`vcard:Organization`): needs an e-mail address or a URL.
package struct ContactPoint: Sendable, Hashable {
    package var name: String
    package var email: String?
    package var url: String?

    package init(name: String, email: String? = nil, url: String? = nil) {
        self.name = name
        self.email = email
        self.url = url
    }
}

/// Spatial coverage as declared; the extent of the stations (`DatasetFacts.bbox`) is added when publishing.
package struct SpatialCoverage: Sendable, Hashable {
    /// 8-digit Amtlicher Gemeindeschlüssel → `dcatde:politicalGeocodingURI`.
    package var ags: String?
    /// A declared extent, used when the data has no located stations.
    package var bbox: BoundingBox?
    /// A WKT geometry (`locn:geometry`), e.g. the municipality's outline.
    package var geometryWKT: String?

    package init(ags: String? = nil, bbox: BoundingBox? = nil, geometryWKT: String? = nil) {
        self.ags = ags
        self.bbox = bbox
        self.geometryWKT = geometryWKT
    }
}

/// West, south, east, north in WGS84 degrees.
package struct BoundingBox: Sendable, Hashable {
    package var minLongitude: Double
    package var minLatitude: Double
    package var maxLongitude: Double
    package var maxLatitude: Double

    package init(minLongitude: Double, minLatitude: Double, maxLongitude: Double, maxLatitude: Double) {
        self.minLongitude = minLongitude
        self.minLatitude = minLatitude
        self.maxLongitude = maxLongitude
        self.maxLatitude = maxLatitude
    }

    /// The smallest box around the points, or nil for none.
    package init?(points: some Sequence<(longitude: Double, latitude: Double)>) {
        var box: BoundingBox?
        for p in points where p.longitude.isFinite && p.latitude.isFinite {
            if var b = box {
                b.minLongitude = min(b.minLongitude, p.longitude)
                b.maxLongitude = max(b.maxLongitude, p.longitude)
                b.minLatitude = min(b.minLatitude, p.latitude)
                b.maxLatitude = max(b.maxLatitude, p.latitude)
                box = b
            } else {
                box = BoundingBox(minLongitude: p.longitude, minLatitude: p.latitude, maxLongitude: p.longitude, maxLatitude: p.latitude)
            }
        }
        guard let box else { return nil }
        self = box
    }

    package var isValid: Bool {
        [minLongitude, minLatitude, maxLongitude, maxLatitude].allSatisfy(\.isFinite)
            && minLongitude >= -180 && maxLongitude <= 180 && minLatitude >= -90 && maxLatitude <= 90
            && minLongitude <= maxLongitude && minLatitude <= maxLatitude
    }

    /// True when the box is a single point or a line.
    package var isDegenerate: Bool { minLongitude == maxLongitude || minLatitude == maxLatitude }

    package var center: (longitude: Double, latitude: Double) {
        ((minLongitude + maxLongitude) / 2, (minLatitude + maxLatitude) / 2)
    }
}

/// The catalog as a whole (`catalog.yaml`): who runs this installation.
package struct CatalogMetadata: Sendable, Hashable {
    package var title: String
    package var titleEN: String?
    package var description: String
    package var descriptionEN: String?
    package var publisher: Agent
    /// `foaf:homepage` of the catalog; nil: the base URL.
    package var homepage: String?
    /// ISO 639-1 codes of the metadata languages (`de`, `en`).
    package var languages: [String]
    package var licence: Licence
    /// GovData contributor ID, used for every dataset that does not name its own.
    package var contributorID: String
    package var contact: ContactPoint?
    /// `dct:issued` of the catalog, `YYYY-MM-DD`.
    package var issued: String?

    package init(
        title: String, titleEN: String? = nil, description: String, descriptionEN: String? = nil, publisher: Agent,
        homepage: String? = nil, languages: [String] = ["de"], licence: Licence = .dlByDe20, contributorID: String,
        contact: ContactPoint? = nil, issued: String? = nil
    ) {
        self.title = title
        self.titleEN = titleEN
        self.description = description
        self.descriptionEN = descriptionEN
        self.publisher = publisher
        self.homepage = homepage
        self.languages = languages
        self.licence = licence
        self.contributorID = contributorID
        self.contact = contact
        self.issued = issued
    }
}
