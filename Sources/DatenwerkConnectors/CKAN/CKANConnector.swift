import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation

/// A dataset on a CKAN portal (GovData, a city's open-data portal) by package id or name: the package's resources
/// are listed through the CKAN Action API (`GET {portal}/api/3/action/package_show?id=…`), one resource is picked
/// by format and/or name, and its records are read with the pipeline's own `format:` block and mapped by its
/// `transform:` and `observations:` blocks, exactly as a generic http source (`RecordSourceConnector`).
///
/// Picking: resources in state `deleted` never count. `resource_format` (default: what `format.kind` reads —
/// csv → CSV; json → JSON, GeoJSON; ndjson → NDJSON, JSONL — unless `resource` is set) compares case-insensitively
/// with the resource's `format` (`.csv`, `text/csv` and the URL's extension where the format is empty count too);
/// `resource` is a resource id or a pattern its name must match (`*` any text, case-insensitive). When several
/// match, the newest is read (`last_modified`, else `metadata_modified`, else `created`; ties: the first in the
/// package), and the run's events name the others; when none matches, the run fails listing every resource.
///
/// Re-read only on change: the checkpoint remembers the resource read (id, URL, and its `last_modified` — else its
/// `metadata_modified`). The next run reads the resource again only when one of them changed, or — where the
/// resource's server sent an `ETag`/`Last-Modified` — with a conditional GET that the server answers 304 when the
/// file is unchanged (files linked from a portal often change without the portal knowing). An unchanged resource
/// gives a run that reads nothing and says "unchanged since …" in its events.
///
/// The pipeline's `request:` headers (e.g. a portal API token) are sent to the portal only, never to a resource on
/// another host. `portal` may also be a folder of captured `package_show` answers (`<package>.json`, resource URLs
/// relative to the folder) for offline runs and tests.
struct CKANConnector: RecordSourceConnector, ConfiguredConnector {
    let kind = "ckan"
    let summary = "a dataset on a CKAN portal (GovData, city portals): a resource picked by format/name via package_show, read with the pipeline's format and observations blocks, re-read only when it changed"

    struct Configuration: ConnectorConfiguration {
        static let portal = Setting<String>("portal", .location, required: true,
                                            "the portal's base URL (e.g. https://www.govdata.de/ckan; `/api/3/action` is added), or a folder of captured package_show answers (<package>.json)")
        static let package = Setting<String>("package", required: true, "the dataset's id or name (the last part of its portal URL, e.g. radzaehlstellen-muenster)")
        static let resourceFormat = Setting<[String]>("resource_format",
                                                      "resource formats to take, e.g. [CSV] (case-insensitive); default: what format.kind reads (csv → CSV; json → JSON, GeoJSON; ndjson → NDJSON, JSONL), none when `resource` is set")
        static let resource = Setting<String>("resource", "a resource id, or a pattern its name must match (`*` any text, case-insensitive), e.g. \"Zählstellen 2024*\"")
        static let keys = [portal.key, package.key, resourceFormat.key, resource.key]

        var portal: String
        var package: String
        var resourceFormat: [String]?
        var resource: String?

        init(_ config: ConnectorConfig) throws {
            portal = try config.required(Self.portal)
            package = try config.required(Self.package)
            resourceFormat = config[Self.resourceFormat]
            resource = config[Self.resource]
        }
    }

    let sampleYAML = """
        version: 1
        name: ckan-radverkehr-muenster
        tenant: "05515000"
        schedule: "@daily"
        source:
          kind: ckan
          # The dataset https://opendata.musterstadt.example/dataset/radverkehr-zaehlstellen; `format:` below and the
          # `observations:` (and `transform:`) blocks work exactly as for a `kind: http` source.
          portal: https://opendata.musterstadt.example
          package: radverkehr-zaehlstellen
          resource_format: [CSV]
          resource: "Zählstellen 2024*"
          format: { kind: csv, delimiter: ";" }
        observations:
          station: { id: Zaehlstelle, name: Zaehlstelle, kind: bicycle_counter }
          time: { field: Zeit, format: dd.MM.yyyy HH:mm, timezone: Europe/Berlin, interval: 1h }
          missing: ["-"]
          values:
            - { field: Fahrraeder, property: bicycle_count }
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        if let package = config[C.package], package.isEmpty || package.contains(where: { $0.isWhitespace || $0 == "/" }) {
            problems.append(ConfigProblem(key: C.package.name, "'\(package)' is no CKAN package id or name (no spaces or '/'; the last part of the dataset's URL)"))
        }
        if let formats = config[C.resourceFormat], formats.isEmpty || formats.contains(where: { CKANResource.normalized($0).isEmpty }) {
            problems.append(ConfigProblem(key: C.resourceFormat.name, "name at least one format, e.g. [CSV]"))
        }
        if let portal = config[C.portal], DocumentReader<AnyRecordDecoder>.isURL(portal), URLComponents(string: portal)?.host?.isEmpty != false {
            problems.append(ConfigProblem(key: C.portal.name, "'\(portal)' is not a portal URL like https://www.govdata.de/ckan"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        guard let records = context.records else {
            throw ExtractError("a ckan pipeline needs source.format and an observations block")
        }
        return try records.run(CKANResourceSource(config, format: records.format, context: context))
    }
}

/// One resource of a `package_show` answer.
struct CKANResource {
    var id: String
    var name: String
    var format: String
    var url: String
    /// `last_modified` (the file), else `metadata_modified` (the resource's metadata), else `created`.
    var version: String?
    var position: Int

    init(_ json: JSONValue, position: Int) {
        func text(_ key: String) -> String? {
            guard let v = json[key], !v.isNull else { return nil }
            let t = v.text.trimmingCharacters(in: .whitespaces)
            return t.isEmpty ? nil : t
        }
        id = text("id") ?? ""
        name = text("name") ?? ""
        url = text("url") ?? ""
        var format = text("format") ?? text("mimetype") ?? ""
        if format.isEmpty, let ext = URLComponents(string: url)?.path.split(separator: "/").last?.split(separator: ".").dropFirst().last { format = String(ext) }
        self.format = format
        version = text("last_modified") ?? text("metadata_modified") ?? text("created")
        self.position = position
    }

    /// `CSV`, `.csv`, `text/csv` → `csv`; `application/geo+json` → `geojson`.
    static func normalized(_ format: String) -> String {
        var f = format.trimmingCharacters(in: .whitespaces).lowercased()
        if f.hasPrefix(".") { f.removeFirst() }
        switch f {
        case "text/csv", "application/csv": return "csv"
        case "application/json", "text/json": return "json"
        case "application/geo+json", "application/vnd.geo+json": return "geojson"
        case "application/x-ndjson", "application/ndjson", "application/jsonl", "jsonl": return "ndjson"
        default: return f
        }
    }

    /// `name` matches `pattern` (`*` any text, case-insensitive).
    static func matches(_ name: String, pattern: String) -> Bool {
        let parts = pattern.lowercased().split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        var rest = Substring(name.lowercased())
        guard parts.count > 1 else { return rest == parts[0] }
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let r = rest.range(of: part) else { return false }
            rest = rest[r.upperBound...]
        }
        return rest.hasSuffix(parts.last!)
    }

    var described: String { "'\(name)' (\(format.isEmpty ? "no format" : format), id \(id))" }
}

/// Resolves the package's resource on the first `next()`, then reads it (or nothing, when it is unchanged) with the
/// generic http or file source and the pipeline's format.
struct CKANResourceSource: RecordSource {
    let config: CKANConnector.Configuration
    let format: FormatSpec
    let session: FetchSession
    let checkpoint: JSONValue?
    private var inner: (any RecordSource)?
    private var resolved = false
    private var apiBytes = 0
    private var apiOrigins: [String] = []
    private(set) var events: [String] = []
    private(set) var sourceState: [JSONValue.Member] = []

    init(_ config: CKANConnector.Configuration, format: FormatSpec, context: ConnectorContext) {
        self.config = config
        self.format = format
        self.session = context.session
        self.checkpoint = context.checkpoint
    }

    var bytesRead: Int { apiBytes + (inner?.bytesRead ?? 0) }
    var origins: [String] { apiOrigins + (inner?.origins ?? []) }

    var isLocal: Bool { !DocumentReader<AnyRecordDecoder>.isURL(config.portal) }

    /// `https://host/ckan/api/3/action/package_show?id=<package>` (a trailing `/`, `/api/3` or `/api/3/action` of
    /// `portal` is taken off first), or `<folder>/<package>.json`.
    var packageShow: String {
        if isLocal { return (config.portal as NSString).appendingPathComponent(config.package + ".json") }
        var base = config.portal
        while base.hasSuffix("/") { base.removeLast() }
        for suffix in ["/api/3/action", "/api/3", "/api"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        let id = config.package.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? config.package
        return base + "/api/3/action/package_show?id=" + id
    }

    mutating func next() async throws -> [DecodedRecord]? {
        if !resolved {
            resolved = true
            try await resolve()
        }
        guard inner != nil else { return nil }
        return try await inner!.next()
    }

    private mutating func resolve() async throws {
        let url = packageShow
        let reader: ChunkReader
        do {
            reader = try await ChunkReader.open(url, session: session)
        } catch let failure as HTTPFetcher.Failure where failure.status == 404 {
            throw ExtractError("the portal has no dataset '\(config.package)' (GET \(failure.url): 404); check `package` (the last part of the dataset's URL) and `portal`")
        }
        let bytes = try await reader.readAll(limit: 32 << 20)
        apiBytes += bytes.count
        apiOrigins.append(reader.origin)
        let answer: JSONValue
        do { answer = try JSONParser.parse(bytes) } catch {
            throw ExtractError("\(reader.origin) is not a CKAN Action API answer (not JSON: \(error)); is `portal` the CKAN base URL?")
        }
        guard answer["success"] == .bool(true), case .object = answer["result"] ?? .null else {
            let message = answer["error"]?["message"]?.text ?? "no 'success: true' with a 'result'"
            throw ExtractError("\(reader.origin): package_show did not answer with the dataset (\(message))")
        }
        let package = answer["result"]!
        guard case .array(let list) = package["resources"] ?? .null else {
            throw ExtractError("\(reader.origin): the dataset '\(config.package)' has no resources")
        }
        let resources = list.enumerated().filter { $0.element["state"]?.text != "deleted" }.map { CKANResource($0.element, position: $0.offset) }
        let wanted = Set((config.resourceFormat ?? (config.resource == nil ? Self.defaultFormats(format) : [])).map(CKANResource.normalized))
        let matching = resources.filter { r in
            (wanted.isEmpty || wanted.contains(CKANResource.normalized(r.format)))
                && (config.resource.map { r.id == $0 || CKANResource.matches(r.name, pattern: $0) } ?? true)
        }
        guard !matching.isEmpty else {
            var criteria: [String] = []
            if !wanted.isEmpty { criteria.append("format \(wanted.sorted().map { $0.uppercased() }.joined(separator: " or "))") }
            if let resource = config.resource { criteria.append("id or name '\(resource)'") }
            let all = resources.isEmpty ? "none" : resources.map(\.described).joined(separator: ", ")
            throw ExtractError("no resource of dataset '\(config.package)' has \(criteria.joined(separator: " and ")); its resources: \(all)")
        }
        // The newest; ties: the first in the package.
        let chosen = matching.min { a, b in
            (a.version ?? "") != (b.version ?? "") ? (a.version ?? "") > (b.version ?? "") : a.position < b.position
        }!
        if matching.count > 1 {
            let others = matching.filter { $0.position != chosen.position }.map(\.described).joined(separator: ", ")
            events.append("\(matching.count) resources match; reading the newest, \(chosen.described); not \(others)")
        }
        guard !chosen.url.isEmpty else { throw ExtractError("resource \(chosen.described) of dataset '\(config.package)' has no url") }
        let location = try resourceLocation(chosen.url)
        let remembered = checkpoint?["ckan"]
        var state: [JSONValue.Member] = [.init("package", .string(config.package)), .init("resource", .string(chosen.id)),
                                         .init("url", .string(session.masked(chosen.url)))]
        if let version = chosen.version { state.append(.init("modified", .string(version))) }
        sourceState = [.init("ckan", .object(state))]
        let unchanged = chosen.version != nil && remembered?["resource"]?.text == chosen.id
            && remembered?["url"]?.text == session.masked(chosen.url) && remembered?["modified"]?.text == chosen.version
        // A server that sent validators is asked (a conditional GET, 304 when unchanged): a linked file may change
        // while the portal's metadata stays the same. Without validators, the portal's word is all there is.
        let validated = !isLocal && session.conditional?.known[session.masked(location)] != nil
        if unchanged && !validated {
            events.append("resource \(chosen.described) unchanged since \(chosen.version!) (last_modified on the portal): not read")
            return
        }
        if isLocal {
            inner = try FileRecordSource(path: location, format: format)
        } else {
            let spec = SourceSpec.document(location, format: format, timeoutSeconds: Int(session.timeout?.components.seconds ?? 60))
            var resourceSession = session
            // The pipeline's request headers (an API token for the portal) never go to another host.
            if URLComponents(string: location)?.host?.lowercased() != URLComponents(string: config.portal)?.host?.lowercased() {
                resourceSession.headers = []
            }
            inner = HTTPRecordSource(spec: spec, session: resourceSession)
        }
    }

    /// The resource's URL; in a captured answer (a folder `portal`) a relative path inside the folder. A portal
    /// on the web never makes Datenwerk read a local file.
    private func resourceLocation(_ url: String) throws -> String {
        if DocumentReader<AnyRecordDecoder>.isURL(url) { return url }
        guard isLocal else { throw ExtractError("the resource url '\(url)' is not an http(s) URL") }
        guard !url.hasPrefix("/"), !url.split(separator: "/").contains("..") else {
            throw ExtractError("the resource url '\(url)' of a captured answer must be a path inside \(displayPath(config.portal))")
        }
        return (config.portal as NSString).appendingPathComponent(url)
    }

    /// The CKAN formats the pipeline's `format.kind` reads.
    static func defaultFormats(_ format: FormatSpec) -> [String] {
        switch format {
        case .csv: ["CSV"]
        case .json: ["JSON", "GeoJSON"]
        case .ndjson: ["NDJSON", "JSONL"]
        }
    }
}
