import DatenwerkCore
import Foundation
import Yams

/// The tenants an installation knows: every key of the bundled Gemeindeverzeichnis (`MunicipalityKeys`) and the
/// entries of `tenants.yaml` — associations (Zweckverbände) that have no key of their own, municipalities newer
/// than the bundled list, and publisher metadata for any of them.
///
/// ```yaml
/// version: 1
/// tenants:
///   - ags: "05515000"                 # a municipality: only what differs from the bundled list
///     name: Stadt Münster
///     publisher: { name: Stadt Münster, url: https://www.stadt-muenster.de/, email: opendata@stadt-muenster.de, type: LocalAuthority }
///     contact: { name: Open-Data-Team, email: opendata@stadt-muenster.de }
///   - ags: "99000001"                 # an association: any 8 digits the bundled list does not hold (99… is no Land)
///     name: Zweckverband Digitale Region Musterland
///     publisher: { name: Zweckverband Digitale Region Musterland, url: https://www.digitale-region.example/ }
/// ```
package struct TenantDirectory: Sendable {
    /// `tenants.yaml` entries by key, and their order in the file.
    package private(set) var declared: [String: Tenant] = [:]
    package private(set) var declaredOrder: [String] = []
    /// The file the entries came from; nil: only the bundled list.
    package private(set) var file: String?

    package static let fileName = "tenants.yaml"
    static let keys = ["version", "tenants"]
    static let entryKeys = ["ags", "name", "publisher", "contact"]

    /// Only the bundled Gemeindeverzeichnis.
    package init() {}

    /// The tenant with this key: its `tenants.yaml` entry, else the bundled list's; nil for an unknown key.
    package func tenant(_ ags: String) -> Tenant? {
        if let tenant = declared[ags] { return tenant }
        guard let entry = MunicipalityKeys.lookup(ags) else { return nil }
        return Tenant(ags: ags, name: entry.name, level: entry.level)
    }

    /// What is wrong with a pipeline's `tenant:` value, or nil when it names a known tenant. The message says
    /// what to do: correct the key, or declare the tenant in `tenants.yaml`.
    package func problem(_ ags: String) -> String? {
        guard Tenant.isKeyShaped(ags) else {
            return "tenant '\(ags)' must be an 8-digit Amtlicher Gemeindeschlüssel (AGS), e.g. '05515000' for Münster"
        }
        guard tenant(ags) == nil else { return nil }
        let hint = MunicipalityKeys.suggestion(for: ags).map { "; did you mean '\($0.0)' (\($0.1.name))?" } ?? ""
        let where_ = file.map { "to \($0)" } ?? "to \(Self.fileName) next to catalog.yaml"
        return "unknown tenant '\(ags)': no municipality, Kreis or Land has this key in the bundled Gemeindeverzeichnis "
            + "(Destatis, Gebietsstand \(MunicipalityKeys.asOf)); for an association or a newer municipality add it \(where_) "
            + "(see docs/tenants.md)\(hint)"
    }

    // MARK: tenants.yaml

    /// `tenants.yaml` in the folder of `file` or the nearest folder above it (the repository root, next to
    /// `catalog.yaml`, for `Pipelines/<kind>/<name>.yaml`); only the bundled list when there is none.
    /// Throws the file's problems when one is found but invalid.
    package static func near(_ file: String) throws -> TenantDirectory {
        var folder = (file as NSString).deletingLastPathComponent
        if !folder.hasPrefix("/") {
            folder = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(folder)
        }
        folder = (folder as NSString).standardizingPath
        while true {
            let candidate = (folder as NSString).appendingPathComponent(fileName)
            if FileManager.default.fileExists(atPath: candidate) { return try load(file: candidate) }
            let parent = (folder as NSString).deletingLastPathComponent
            if parent == folder || parent.isEmpty { return TenantDirectory() }
            folder = parent
        }
    }

    /// Reads and validates a tenants file; throws `DiagnosticError` with every problem found.
    package static func load(file: String) throws -> TenantDirectory {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw DiagnosticError([Diagnostic(file: file, "cannot read tenants file: \(error.localizedDescription)")])
        }
        return try parse(yaml: text, file: file)
    }

    package static func parse(yaml: String, file: String) throws -> TenantDirectory {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw DiagnosticError([Diagnostic.yamlSyntax(error, file: file)])
        }
        var directory = TenantDirectory()
        directory.file = file
        guard let node else { return directory }   // an empty file declares no tenant
        let r = YAMLReader(file: file)
        decode(node, r, into: &directory)
        if r.diagnostics.isEmpty { return directory }
        throw DiagnosticError(r.diagnostics.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) })
    }

    private static func decode(_ node: Node, _ r: YAMLReader, into directory: inout TenantDirectory) {
        guard let top = r.mapping(node, "", allowed: keys, required: ["tenants"]) else { return }
        if let version = top.int("version"), version != 1 {
            top.error("version", "unsupported tenants version \(version); this Datenwerk reads version 1")
        }
        guard let list = top["tenants"].flatMap({ r.sequence($0, "tenants") }) else { return }
        let p = PublishingYAML(reader: r)
        for (index, item) in list.enumerated() {
            let path = "tenants[\(index)]"
            guard let m = r.mapping(item, path, allowed: entryKeys, required: ["ags"]) else { continue }
            guard let ags = m.string("ags") else { continue }
            guard Tenant.isKeyShaped(ags) else {
                m.error("ags", "ags '\(ags)' must be 8 digits (an Amtlicher Gemeindeschlüssel; for an association any key "
                        + "the Gemeindeverzeichnis does not hold, e.g. '99000001')")
                continue
            }
            if directory.declared[ags] != nil {
                m.error("ags", "tenant '\(ags)' is declared twice in \(fileName)")
                continue
            }
            let bundled = MunicipalityKeys.lookup(ags)
            let name = p.text(m, "name") ?? bundled?.name
            guard let name else {
                r.error(item, path, "tenant '\(ags)' is not in the bundled Gemeindeverzeichnis, so it needs a 'name' (an association's or a new municipality's)")
                continue
            }
            let publisher = m["publisher"].flatMap { p.agent($0, m.path("publisher")) }
            let contact = m["contact"].flatMap { p.contact($0, m.path("contact"), defaultName: publisher?.name ?? name) }
            directory.declared[ags] = Tenant(ags: ags, name: name, level: bundled?.level ?? .association, publisher: publisher, contact: contact, declared: true)
            directory.declaredOrder.append(ags)
        }
    }
}

extension PipelineSpec {
    /// The `tenant:` check of a pipeline file: a known key (bundled list or the `tenants.yaml` nearest to the file).
    static func checkTenant(_ ags: String, _ top: YAMLReader.Mapping) {
        let directory: TenantDirectory
        do {
            directory = try TenantDirectory.near(top.reader.file)
        } catch let error as DiagnosticError {
            let first = error.diagnostics.first.map(\.description) ?? "\(error)"
            top.error("tenant", "cannot check tenant '\(ags)': \(TenantDirectory.fileName) has \(error.diagnostics.count) problem(s), first: \(first)")
            return
        } catch {
            top.error("tenant", "cannot check tenant '\(ags)': \(error)")
            return
        }
        if let problem = directory.problem(ags) { top.error("tenant", problem) }
    }
}
