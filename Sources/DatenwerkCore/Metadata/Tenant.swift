/// Who a pipeline's data belongs to: a municipality (or Kreis, Land) identified by its 8-digit
/// Amtlicher Gemeindeschlüssel, or an association (Zweckverband, Verbund) declared in `tenants.yaml`.
/// Each tenant has its own catalog (`/tenants/{ags}/catalog`) with itself as DCAT publisher.
package struct Tenant: Sendable, Hashable {
    package enum Level: String, Sendable, Hashable, CaseIterable {
        /// A municipality (Gemeinde, Stadt, kreisfreie Stadt, Stadtstaat).
        case municipality
        /// A Kreis (Landkreis, Kreis, Regionalverband).
        case district
        /// A Land.
        case state
        /// `00000000`: nationwide data.
        case federal
        /// Only in `tenants.yaml`: a Zweckverband or other association of municipalities.
        case association
    }

    /// The 8-digit key (`05515000`).
    package var ags: String
    /// As the bundled Gemeindeverzeichnis writes it (`Münster, Stadt`), or as `tenants.yaml` names it.
    package var name: String
    package var level: Level
    /// The DCAT publisher of the tenant's catalog and of its datasets that name none (`foaf:Agent`).
    package var publisher: Agent
    /// The tenant's contact point; nil: the installation's (`catalog.yaml`).
    package var contact: ContactPoint?
    /// True when `tenants.yaml` declares it (an association, or publisher metadata for a municipality).
    package var declared: Bool

    package init(ags: String, name: String, level: Level, publisher: Agent? = nil, contact: ContactPoint? = nil, declared: Bool = false) {
        self.ags = ags
        self.name = name
        self.level = level
        self.publisher = publisher ?? Agent(name: name)
        self.contact = contact
        self.declared = declared
    }

    /// Eight ASCII digits.
    package static func isKeyShaped(_ ags: String) -> Bool {
        ags.utf8.count == 8 && ags.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
