import DatenwerkCore
import Foundation
import Yams

/// `catalog.yaml`: who runs this installation, as the DCAT-AP.de catalog and the HTML page show it.
///
/// ```yaml
/// version: 1
/// title: Datenwerk Musterstadt – Offene Daten
/// title_en: Datenwerk Musterstadt – Open Data
/// description: Messdaten aus Musterstadt …
/// publisher: { name: Stadt Musterstadt, url: https://www.musterstadt.example/, email: opendata@musterstadt.example, type: LocalAuthority }
/// homepage: https://opendata.musterstadt.example/   # default: the server's base URL
/// languages: [de, en]
/// license: dl-de/by-2-0
/// contributor_id: openNRW                         # GovData contributor ID (required)
/// contact: { name: Open-Data-Team, email: opendata@musterstadt.example }
/// issued: 2024-01-15
/// ```
package enum CatalogSpec {
    static let keys = [
        "version", "title", "title_en", "description", "description_en", "publisher", "homepage", "languages", "license",
        "contributor_id", "contact", "issued",
    ]

    /// Reads and validates a catalog file; throws `DiagnosticError` with every problem found.
    package static func load(file: String) throws -> CatalogMetadata {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw DiagnosticError([Diagnostic(file: file, "cannot read catalog file: \(error.localizedDescription)")])
        }
        return try parse(yaml: text, file: file)
    }

    package static func parse(yaml: String, file: String) throws -> CatalogMetadata {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw DiagnosticError([Diagnostic.yamlSyntax(error, file: file)])
        }
        guard let node else { throw DiagnosticError([Diagnostic(file: file, line: 1, column: 1, "the catalog file is empty")]) }
        let r = YAMLReader(file: file)
        let catalog = decode(node, r)
        if let catalog, r.diagnostics.isEmpty { return catalog }
        throw DiagnosticError(r.diagnostics.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) })
    }

    static func decode(_ node: Node, _ r: YAMLReader) -> CatalogMetadata? {
        guard let m = r.mapping(node, "catalog", allowed: keys, required: ["title", "description", "publisher", "contributor_id"]) else { return nil }
        let p = PublishingYAML(reader: r)
        if let version = m.int("version"), version != 1 {
            m.error("version", "unsupported catalog version \(version); this Datenwerk reads version 1")
        }
        let title = p.text(m, "title")
        let description = p.text(m, "description")
        let publisher = m["publisher"].flatMap { p.agent($0, m.path("publisher")) }
        let homepage = m["homepage"].flatMap { p.url($0, m.path("homepage")) }
        var languages: [String] = []
        for code in m.strings("languages") ?? ["de"] {
            if LanguageCode.iri(code) != nil { languages.append(code.lowercased()) } else {
                let known = LanguageCode.byISO6391.keys.sorted()
                let suggestion = closestMatch(to: code, in: known).map { "; did you mean '\($0)'?" } ?? ""
                m.error("languages", "'\(code)' is not a known language code\(suggestion) (ISO 639-1, e.g. de, en)")
            }
        }
        let licence = m["license"].flatMap { p.licence($0, m.path("license")) } ?? .dlByDe20
        let contributor = m["contributor_id"].flatMap { p.contributor($0, m.path("contributor_id")) }
        let contact = m["contact"].flatMap { p.contact($0, m.path("contact"), defaultName: publisher?.name) }
        var issued: String?
        if let text = m.string("issued") {
            if text.range(of: #"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"#, options: .regularExpression) != nil { issued = text } else {
                m.error("issued", "issued must be a date YYYY-MM-DD, found '\(text)'")
            }
        }
        guard let title, let description, let publisher, let contributor else { return nil }
        return CatalogMetadata(
            title: title, titleEN: p.text(m, "title_en"), description: description, descriptionEN: p.text(m, "description_en"),
            publisher: publisher, homepage: homepage, languages: languages.isEmpty ? ["de"] : languages, licence: licence,
            contributorID: contributor, contact: contact, issued: issued
        )
    }
}
