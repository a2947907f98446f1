import DatenwerkCore
import Foundation
import Yams

extension PipelineSpec {
    static let datasetKeys = [
        "id", "title", "title_en", "description", "description_en", "keywords", "keywords_en", "theme", "license",
        "attribution", "publisher", "contact", "contributor_id", "spatial", "update_frequency", "access", "min_count",
    ]

    /// A pipeline's `dataset:` block as the catalog publishes it: codes checked against their vocabularies and
    /// every default resolved here, in one place — `id` the pipeline name, `license` dl-de/by-2-0, `spatial.ags`
    /// the tenant (when it is a municipality key), `access` open. Nil when the block (or the pipeline's name) is invalid.
    ///
    /// ```yaml
    /// dataset:
    ///   id: klima-musterstadt            # URL slug, default: the pipeline name
    ///   title: Klimamessnetz Musterstadt – Stundenwerte
    ///   title_en: Musterstadt climate network – hourly values
    ///   description: Lufttemperatur, relative Feuchte, …
    ///   keywords: [Klima, Wetter]
    ///   keywords_en: [climate, weather]
    ///   theme: ENVI                      # EU data theme
    ///   license: dl-de/by-2-0            # default; dcat-ap.de ids (dl-by-de/2.0, cc-by/4.0, …) also work
    ///   publisher: { name: Stadt Musterstadt, url: https://www.musterstadt.example/, type: LocalAuthority }
    ///   contact: { name: Umweltamt, email: umwelt@musterstadt.example }
    ///   spatial: { ags: "05515000" }     # default: the tenant; or bbox: [w, s, e, n], geometry: WKT
    ///   update_frequency: HOURLY         # EU frequency code
    ///   access: open                     # or restricted
    ///   min_count: 5                     # privacy gate for counts of people: values 1…4 are suppressed (docs/privacy.md)
    /// ```
    static func decodeDataset(_ node: Node, _ r: YAMLReader, pipeline: String?, tenant: String?) -> DatasetMetadata? {
        guard let m = r.mapping(node, "dataset", allowed: datasetKeys, required: ["title", "description"]) else { return nil }
        let p = PublishingYAML(reader: r)
        if let id = m.string("id"), id.range(of: #"^[a-z0-9][a-z0-9_-]*$"#, options: .regularExpression) == nil {
            m.error("id", "dataset id '\(id)' must be lowercase letters, digits, '-' or '_' (it is part of the download URLs)")
        }
        let title = p.text(m, "title")
        let description = p.text(m, "description")
        let theme = m["theme"].flatMap { p.theme($0, m.path("theme")) }
        let license = m["license"].flatMap { p.licence($0, m.path("license")) } ?? .dlByDe20
        let publisher = m["publisher"].flatMap { p.agent($0, m.path("publisher")) }
        let contact = m["contact"].flatMap { p.contact($0, m.path("contact"), defaultName: publisher?.name) }
        let contributor = m["contributor_id"].flatMap { p.contributor($0, m.path("contributor_id")) }
        var spatial = m["spatial"].flatMap { p.spatial($0, m.path("spatial")) } ?? SpatialCoverage()
        let frequency = m["update_frequency"].flatMap { p.frequency($0, m.path("update_frequency")) }
        let access = m.oneOf("access", DatasetAccess.self) ?? .open
        let minCount = m.int("min_count", range: 1...1_000_000)
        guard let title, let description, let pipeline else { return nil }
        if spatial.ags == nil, let tenant, PoliticalGeocoding.isMunicipalityKey(tenant) { spatial.ags = tenant }
        return DatasetMetadata(
            id: m.string("id") ?? pipeline, pipeline: pipeline, title: title, titleEN: p.text(m, "title_en"), description: description,
            descriptionEN: p.text(m, "description_en"), keywords: p.keywords(m, "keywords"), keywordsEN: p.keywords(m, "keywords_en"),
            theme: theme, licence: license, attribution: p.text(m, "attribution"), publisher: publisher, contact: contact,
            contributorID: contributor, spatial: spatial, updateFrequency: frequency, access: access, minCount: minCount
        )
    }
}

/// Readers for the publishing vocabularies, shared by `dataset:` blocks and `catalog.yaml`.
/// Every problem is reported with its location and, for codes, the closest known spelling.
struct PublishingYAML {
    let reader: YAMLReader

    /// Non-empty text at `key`.
    func text(_ m: YAMLReader.Mapping, _ key: String) -> String? {
        guard let value = m.string(key) else { return nil }
        if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            m.error(key, "'\(key)' must not be empty")
            return nil
        }
        return value
    }

    func keywords(_ m: YAMLReader.Mapping, _ key: String) -> [String] {
        (m.strings(key) ?? []).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    func theme(_ node: Node, _ path: String) -> DataTheme? {
        guard let code = reader.string(node, path) else { return nil }
        if let theme = DataTheme.code(code) { return theme }
        let codes = DataTheme.all.map(\.code)
        reader.error(node, path, "'\(code)' is not an EU data theme\(suggestion(code, codes)) (themes: \(codes.joined(separator: ", ")))")
        return nil
    }

    func frequency(_ node: Node, _ path: String) -> UpdateFrequency? {
        guard let code = reader.string(node, path) else { return nil }
        let aliases = ["continuous": "CONT", "irregular": "IRREG", "quarter-hourly": "15MIN", "yearly": "ANNUAL"]
        if let frequency = UpdateFrequency.code(aliases[code.lowercased()] ?? code) { return frequency }
        let codes = UpdateFrequency.all.map(\.code)
        reader.error(node, path, "'\(code)' is not an EU frequency code\(suggestion(code, codes)) (e.g. 15MIN, HOURLY, DAILY, WEEKLY, MONTHLY, CONT, IRREG)")
        return nil
    }

    func licence(_ node: Node, _ path: String) -> Licence? {
        guard let name = reader.string(node, path) else { return nil }
        if let licence = Licence.named(name) { return licence }
        reader.error(node, path, "'\(name)' is not a dcat-ap.de licence\(suggestion(name, Licence.acceptedNames)) (e.g. dl-de/by-2-0, dl-zero-de/2.0, cc-by/4.0, cc-zero)")
        return nil
    }

    func contributor(_ node: Node, _ path: String) -> String? {
        guard let id = reader.string(node, path) else { return nil }
        if let known = ContributorID.validated(id) { return known }
        reader.error(node, path, "'\(id)' is not a GovData contributor ID\(suggestion(id, ContributorID.known)) (GovData assigns one per data provider; see http://dcat-ap.de/def/contributors/)")
        return nil
    }

    /// `publisher: Name` or `publisher: { name, url, email, type }`.
    func agent(_ node: Node, _ path: String) -> Agent? {
        if case .scalar = node {
            guard let name = reader.string(node, path), !name.isEmpty else {
                reader.error(node, path, "publisher must not be empty")
                return nil
            }
            return Agent(name: name)
        }
        guard let m = reader.mapping(node, path, allowed: ["name", "url", "email", "type"], required: ["name"]) else { return nil }
        let url = m["url"].flatMap { self.url($0, m.path("url")) }
        let email = m["email"].flatMap { self.email($0, m.path("email")) }
        var type: String?
        if let t = m.string("type") {
            if let known = Agent.types.first(where: { $0.lowercased() == t.lowercased() }) { type = known } else {
                m.error("type", "'\(t)' is not an ADMS publisher type\(suggestion(t, Agent.types)) (types: \(Agent.types.joined(separator: ", ")))")
            }
        }
        guard let name = text(m, "name") else { return nil }
        return Agent(name: name, url: url, email: email, type: type)
    }

    /// `contact: { name, email, url }` with an e-mail address or a URL.
    func contact(_ node: Node, _ path: String, defaultName: String?) -> ContactPoint? {
        guard let m = reader.mapping(node, path, allowed: ["name", "email", "url"]) else { return nil }
        let email = m["email"].flatMap { self.email($0, m.path("email")) }
        let url = m["url"].flatMap { self.url($0, m.path("url")) }
        if !m.has("email") && !m.has("url") {
            reader.error(node, path, "a contact needs 'email' or 'url' (DCAT-AP.de requires one of them)")
            return nil
        }
        guard email != nil || url != nil else { return nil }
        let name = text(m, "name") ?? defaultName ?? email ?? url ?? ""
        return ContactPoint(name: name, email: email, url: url)
    }

    /// `spatial: { ags, bbox: [w, s, e, n], geometry: WKT }`.
    func spatial(_ node: Node, _ path: String) -> SpatialCoverage? {
        guard let m = reader.mapping(node, path, allowed: ["ags", "bbox", "geometry"]) else { return nil }
        var spatial = SpatialCoverage()
        if let ags = m.string("ags") {
            if PoliticalGeocoding.isMunicipalityKey(ags) { spatial.ags = ags } else {
                m.error("ags", "ags '\(ags)' must be an 8-digit Amtlicher Gemeindeschlüssel of a municipality, e.g. '05515000' for Münster")
            }
        }
        if let items = m["bbox"].flatMap({ reader.sequence($0, m.path("bbox")) }) {
            let numbers = items.enumerated().compactMap { reader.double($1, "\(m.path("bbox"))[\($0)]") }
            if numbers.count == 4 {
                let box = BoundingBox(minLongitude: numbers[0], minLatitude: numbers[1], maxLongitude: numbers[2], maxLatitude: numbers[3])
                if box.isValid { spatial.bbox = box } else {
                    m.error("bbox", "bbox must be [west, south, east, north] in WGS84 degrees with west ≤ east and south ≤ north")
                }
            } else if numbers.count == items.count {
                m.error("bbox", "bbox must have 4 numbers [west, south, east, north], found \(items.count)")
            }
        }
        if let wkt = m.string("geometry") {
            if Self.looksLikeWKT(wkt) { spatial.geometryWKT = wkt } else {
                m.error("geometry", "geometry must be WKT in WGS84 longitude/latitude, e.g. 'POLYGON((7.5 51.8, 7.8 51.8, 7.8 52.1, 7.5 52.1, 7.5 51.8))'")
            }
        }
        return spatial
    }

    func url(_ node: Node, _ path: String) -> String? {
        guard let text = reader.string(node, path) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              ["http", "https"].contains(scheme), components.host?.isEmpty == false
        else {
            reader.error(node, path, "'\(text)' is not an http(s) URL")
            return nil
        }
        return text
    }

    func email(_ node: Node, _ path: String) -> String? {
        guard var text = reader.string(node, path) else { return nil }
        if text.lowercased().hasPrefix("mailto:") { text.removeFirst(7) }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !text.contains(where: { $0.isWhitespace || "<>\"".contains($0) }) else {
            reader.error(node, path, "'\(text)' is not an e-mail address")
            return nil
        }
        return text
    }

    private func suggestion(_ text: String, _ candidates: [String]) -> String {
        closestMatch(to: text, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// A WKT geometry keyword followed by balanced parentheses (the coordinates are not parsed).
    static func looksLikeWKT(_ text: String) -> Bool {
        let upper = text.trimmingCharacters(in: .whitespaces).uppercased()
        let kinds = ["POINT", "MULTIPOINT", "LINESTRING", "MULTILINESTRING", "POLYGON", "MULTIPOLYGON", "GEOMETRYCOLLECTION"]
        guard kinds.contains(where: { upper.hasPrefix($0 + "(") || upper.hasPrefix($0 + " (") }) else { return false }
        var depth = 0
        for c in upper {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1; if depth < 0 { return false } }
        }
        return depth == 0 && upper.hasSuffix(")")
    }
}
