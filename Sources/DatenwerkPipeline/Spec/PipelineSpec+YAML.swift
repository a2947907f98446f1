import DatenwerkCore
import DatenwerkFormats
import DatenwerkTransforms
import Foundation
import Yams

extension PipelineSpec {
    static let topKeys = [
        "version", "name", "tenant", "description", "dataset", "schedule", "timezone", "jitter", "source", "transform",
        "observations", "sink", "on_bad_record", "max_bad_records",
    ]

    /// Reads and validates a pipeline file; throws `DiagnosticError` with every problem found.
    package static func load(file: String, connectors: ConnectorRegistry = .none, templates: TemplateLibrary = .standard) throws -> PipelineSpec {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw DiagnosticError([Diagnostic(file: file, "cannot read pipeline file: \(error.localizedDescription)")])
        }
        return try parse(yaml: text, file: file, connectors: connectors, templates: templates)
    }

    /// Parses pipeline YAML; relative paths resolve against the folder of `file`.
    package static func parse(yaml: String, file: String, connectors: ConnectorRegistry = .none, templates: TemplateLibrary = .standard) throws -> PipelineSpec {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw DiagnosticError([Diagnostic.yamlSyntax(error, file: file)])
        }
        let reader = YAMLReader(file: file)
        guard var node else {
            throw DiagnosticError([Diagnostic(file: file, line: 1, column: 1, "the pipeline file is empty")])
        }
        // The pipeline's own file first, then a template's (docs/templates.md).
        let byPosition: (Diagnostic, Diagnostic) -> Bool = { ($0.file == file ? 0 : 1, $0.line ?? 0, $0.column ?? 0) < ($1.file == file ? 0 : 1, $1.line ?? 0, $1.column ?? 0) }
        if PipelineTemplate.isTemplate(node) {
            throw DiagnosticError([Diagnostic(file: file, line: 1, column: 1, "this is a pipeline template, not a pipeline: a pipeline uses it with 'uses: templates/<name>' (`datenwerk validate` checks it)")])
        }
        if node["uses"] != nil {
            guard let joined = TemplateInstantiation.instantiate(node, yaml: yaml, reader: reader, library: templates) else {
                throw DiagnosticError(reader.diagnostics.sorted(by: byPosition), warnings: reader.warnings.sorted(by: byPosition))
            }
            node = joined
        }
        let spec = decode(node, reader: reader, connectors: connectors)
        let warnings = reader.warnings.sorted(by: byPosition)
        if var spec, reader.diagnostics.isEmpty {
            spec.warnings = warnings
            spec.readingDigest = readingDigest(node)
            return spec
        }
        throw DiagnosticError(reader.diagnostics.sorted(by: byPosition), warnings: warnings)
    }

    /// `readingDigest` of a pipeline's node (its template filled in): the keys that decide what a file becomes,
    /// each as YAML text in a fixed order.
    static func readingDigest(_ node: Node) -> String? {
        var parts: [(String, String)] = []
        for key in ["tenant", "source", "transform", "observations", "on_bad_record", "max_bad_records", TimeZoneKey.name] + TimeZoneKey.deprecated {
            guard let value = node[key] else { continue }
            guard let text = try? Yams.serialize(node: value) else { return nil }
            parts.append((key, text))
        }
        return readingDigest(parts)
    }

    private static func decode(_ node: Node, reader r: YAMLReader, connectors: ConnectorRegistry) -> PipelineSpec? {
        guard let top = r.mapping(node, "", allowed: topKeys, deprecated: TimeZoneKey.deprecated, required: ["version", "name", "tenant", "source"]) else { return nil }
        if let version = top.int("version"), version != 1 {
            top.error("version", "unsupported pipeline version \(version); this Datenwerk reads version 1")
        }
        let name = top.string("name")
        if let name, name.range(of: #"^[a-z0-9][a-z0-9_-]*$"#, options: .regularExpression) == nil {
            top.error("name", "pipeline name '\(name)' must be lowercase letters, digits, '-' or '_'")
        }
        let tenant = top.string("tenant")
        if let tenant { checkTenant(tenant, top) }   // 8 digits, in the bundled Gemeindeverzeichnis or tenants.yaml
        var baseDirectory = (r.file as NSString).deletingLastPathComponent
        if !baseDirectory.hasPrefix("/") {
            baseDirectory = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(baseDirectory)
        }
        let sourceKind = top["source"]?["kind"]?.string
        var source: SourceSpec?
        var connector: ConnectorConfig?
        var mapping: ObservationMapping?
        let transform = top["transform"].map { decodeTransform($0, r) } ?? []
        if let sourceKind, let found = connectors.connector(sourceKind) {
            connector = top["source"].flatMap { decodeConnector($0, found, base: baseDirectory, r) }
            if found is any RecordSourceConnector {
                // It only fetches: its records are mapped by the pipeline's own blocks, as for a generic source.
                if top.has("observations") {
                    mapping = top["observations"].flatMap { decodeMapping($0, pipelineName: name ?? "pipeline", r) }
                } else {
                    r.error(node, "", "missing required key 'observations' in the pipeline (source kind '\(sourceKind)' needs a mapping)")
                }
            } else {
                if let node = top["observations"] {
                    r.error(node, "observations", "source kind '\(sourceKind)' maps its records to observations itself; remove 'observations'")
                }
                if let node = top["transform"] { r.error(node, "transform", "source kind '\(sourceKind)' does not take transform steps") }
            }
        } else {
            if let sourceKind, SourceSpec.Kind(rawValue: sourceKind) == nil, let node = top["source"]?["kind"] {
                let known = SourceSpec.Kind.allCases.map(\.rawValue) + connectors.kinds
                let suggestion = closestMatch(to: sourceKind, in: known).map { "; did you mean '\($0)'?" } ?? ""
                r.error(node, "source.kind", "unknown source kind '\(sourceKind)'\(suggestion) (known: \(known.joined(separator: ", ")))")
            } else {
                source = top["source"].flatMap { decodeSource($0, path: "source", base: baseDirectory, r) }
            }
            if top.has("observations") {
                mapping = top["observations"].flatMap { decodeMapping($0, pipelineName: name ?? "pipeline", r) }
            } else {
                r.error(node, "", "missing required key 'observations' in the pipeline (source kind '\(sourceKind ?? "?")' needs a mapping)")
            }
        }
        let request = top["source"]?["request"].flatMap { decodeRequest($0, path: "source.request", r) } ?? .none
        let dataset = top["dataset"].flatMap { decodeDataset($0, r, pipeline: name, tenant: tenant) }
        var sink = SinkSpec(kind: .postgres)
        if let node = top["sink"], let m = r.mapping(node, "sink", allowed: ["kind"], required: ["kind"]), let kind = m.oneOf("kind", SinkSpec.Kind.self) {
            sink.kind = kind
        }
        let schedule = top.string("schedule")
        let timezoneKey = top.spelling(TimeZoneKey.name, deprecated: TimeZoneKey.deprecated)
        let timezone = top.string(timezoneKey) ?? "Europe/Berlin"
        var cron: CronSchedule?
        if let schedule, checkScheduleInterval(schedule, top) {
            do { cron = try CronSchedule(schedule, zone: timezone) } catch {
                top.error((try? LocalTimeResolver(zone: timezone)) == nil ? timezoneKey : "schedule", "\(error)")
            }
        }
        let jitter = top.duration("jitter", range: Limits.jitter) ?? 0
        if top.has("jitter"), schedule == nil { top.error("jitter", "jitter needs a schedule") }
        let policy = top.oneOf("on_bad_record", BadRecordPolicy.self) ?? .quarantine
        let maxBad = top.int("max_bad_records", range: Limits.maxBadRecords)
        guard let name, let tenant, (source != nil && mapping != nil) || connector != nil else { return nil }
        return PipelineSpec(
            file: r.file, name: name, tenant: tenant, description: top.string("description"), datasetMetadata: dataset,
            schedule: schedule, cron: cron, jitterSeconds: jitter, source: source, connector: connector, request: request, transform: transform, observations: mapping, sink: sink,
            onBadRecord: policy, maxBadRecords: maxBad
        )
    }

    private static func decodeConnector(_ node: Node, _ connector: any Connector, base: String, _ r: YAMLReader) -> ConnectorConfig? {
        let keys = connector.keys
        // A connector that leaves its records to the pipeline's mapping takes the generic `format:` block too.
        let format = connector is any RecordSourceConnector ? ["format"] : []
        guard let m = r.mapping(node, "source", allowed: ["kind", "request"] + format + keys.map(\.name), deprecated: keys.flatMap(\.deprecatedNames),
                                required: ["kind"] + format + keys.filter(\.required).map(\.name), context: "kind: \(connector.kind)") else { return nil }
        var values: [String: ConfigValue] = [:]
        // The spelling each key has in this file (an old one is read under the key's name, with a warning).
        var spelled: [String: String] = [:]
        for key in keys {
            let name = key.deprecatedNames.isEmpty ? key.name : m.spelling(key.name, deprecated: key.deprecatedNames)
            spelled[key.name] = name
            guard let valueNode = m[name] else { continue }
            let path = m.path(name)
            switch key.kind {
            case .string:
                if let v = r.string(valueNode, path) { values[key.name] = .string(v) }
            case .location:
                if let v = r.string(valueNode, path) { values[key.name] = .string(resolvePath(v, relativeTo: base + "/x")) }
            case .int:
                if let v = r.int(valueNode, path, range: Limits.connectorInt) { values[key.name] = .int(v) }
            case .number:
                if let v = r.double(valueNode, path) { values[key.name] = .number(v) }
            case .bool:
                if let v = r.bool(valueNode, path) { values[key.name] = .bool(v) }
            case .strings:
                if let v = r.strings(valueNode, path) { values[key.name] = .strings(v) }
            case .stringMap:
                if let v = r.stringMap(valueNode, path) { values[key.name] = .stringMap(Dictionary(v, uniquingKeysWith: { $1 })) }
            case .choice(let options):
                guard let v = r.string(valueNode, path) else { continue }
                if options.contains(v) {
                    values[key.name] = .string(v)
                } else {
                    let suggestion = closestMatch(to: v, in: options).map { "; did you mean '\($0)'?" } ?? ""
                    r.error(valueNode, path, "'\(v)' is not one of \(options.joined(separator: ", "))\(suggestion)")
                }
            }
        }
        var config = ConnectorConfig(kind: connector.kind, values: values)
        if !format.isEmpty { config.format = m["format"].flatMap { decodeFormat($0, path: m.path("format"), r) } }
        for problem in connector.check(config) {
            let name = spelled[problem.key] ?? problem.key
            r.error(m[name] ?? node, m.path(name), problem.message)
        }
        return config
    }

    private static func decodeSource(_ node: Node, path: String, base: String, _ r: YAMLReader) -> SourceSpec? {
        let kindText = node["kind"]?.string
        guard let m = r.mapping(node, path, allowed: ["kind", "path", "url", "headers", "query", "paging", "timeout_seconds", "format", "request"], required: ["kind", "format"],
                                context: kindText.map { "kind: \($0)" }) else { return nil }
        let kind = m.oneOf("kind", SourceSpec.Kind.self)
        var filePath: String?
        var url: String?
        switch kind {
        case .file:
            if let p = m.string("path") {
                filePath = p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p)
                filePath = (filePath! as NSString).standardizingPath
            } else if !m.has("path") {
                r.error(node, "", "missing required key 'path' in 'source' (kind: file)")
            }
            for key in ["url", "headers", "query", "paging", "request"] where m.has(key) {
                m.error(key, "'\(key)' applies to kind: http, not kind: file")
            }
        case .http:
            if let u = m.string("url") {
                if URLComponents(string: u)?.scheme.map({ ["http", "https"].contains($0) }) != true {
                    m.error("url", "'\(u)' is not an http(s) URL")
                }
                url = u
            } else if !m.has("url") {
                r.error(node, "", "missing required key 'url' in 'source' (kind: http)")
            }
            if m.has("path") { m.error("path", "'path' applies to kind: file; use 'url' for kind: http") }
        case nil: break
        }
        let paging = m["paging"].flatMap { decodePaging($0, path: m.path("paging"), r) }
        let format = m["format"].flatMap { decodeFormat($0, path: m.path("format"), r) }
        guard let kind, let format else { return nil }
        return SourceSpec(
            kind: kind, path: filePath, url: url, headers: m.stringMap("headers") ?? [], query: m.stringMap("query") ?? [],
            paging: paging, timeoutSeconds: m.int("timeout_seconds", range: Limits.timeoutSeconds) ?? 60, format: format
        )
    }

    private static func decodePaging(_ node: Node, path: String, _ r: YAMLReader) -> PagingSpec? {
        enum Kind: String, CaseIterable { case next_link, offset, page }
        guard let m = r.mapping(node, path, allowed: ["kind", "next", "param", "limit_param", "size_param", "start", "page_size", "max_pages"], required: ["kind"]),
              let kind = m.oneOf("kind", Kind.self) else { return nil }
        let maxPages = m.int("max_pages", range: Limits.maxPages) ?? 10_000
        switch kind {
        case .next_link:
            return .nextLink(path: m.string("next"), maxPages: maxPages)
        case .offset:
            guard let size = m.int("page_size", range: Limits.pageSize) else {
                if !m.has("page_size") { m.error("page_size", "paging kind 'offset' needs 'page_size'") }
                return nil
            }
            return .offset(param: m.string("param") ?? "offset", limitParam: m.string("limit_param") ?? "limit", pageSize: size, maxPages: maxPages)
        case .page:
            guard let size = m.int("page_size", range: Limits.pageSize) else {
                if !m.has("page_size") { m.error("page_size", "paging kind 'page' needs 'page_size'") }
                return nil
            }
            return .page(param: m.string("param") ?? "page", sizeParam: m.string("size_param"), start: m.int("start", range: Limits.pageStart) ?? 1, pageSize: size, maxPages: maxPages)
        }
    }

    private static func decodeFormat(_ node: Node, path: String, _ r: YAMLReader) -> FormatSpec? {
        enum Kind: String, CaseIterable { case csv, json, ndjson }
        guard case .mapping = node else {
            r.error(node, path, "expected a mapping with 'kind: csv|json|ndjson'")
            return nil
        }
        let kindNode = node["kind"]
        guard let kindNode, let kind = r.oneOf(kindNode, join(path, "kind"), Kind.self) else {
            if kindNode == nil { r.error(node, "", "missing required key 'kind' in '\(path)'") }
            return nil
        }
        switch kind {
        case .csv:
            guard let m = r.mapping(node, path, allowed: [
                "kind", "delimiter", "quote", "encoding", "skip_rows", "header", "columns", "comment_prefixes", "trim", "skip_empty_lines",
            ], context: "kind: csv") else { return nil }
            var options = CSVOptions()
            if let d = m.string("delimiter") {
                let text = d == "\\t" ? "\t" : d
                if text.utf8.count == 1 { options.delimiter = text.utf8.first! } else { m.error("delimiter", "delimiter must be one ASCII character, found '\(d)'") }
            }
            if m.has("quote") {
                let q = m.string("quote") ?? ""
                if q.isEmpty { options.quote = nil } else if q.utf8.count == 1 { options.quote = q.utf8.first! } else { m.error("quote", "quote must be one ASCII character or empty") }
            }
            if let encoding = m.oneOf("encoding", TextEncoding.self) { options.encoding = encoding }
            if let skip = m.int("skip_rows", range: Limits.skipRows) { options.skipRows = skip }
            if let header = m.bool("header") { options.header = header }
            options.columns = m.strings("columns")
            if let prefixes = m.strings("comment_prefixes") { options.commentPrefixes = prefixes }
            if let trim = m.bool("trim") { options.trimFields = trim }
            if let skip = m.bool("skip_empty_lines") { options.skipEmptyLines = skip }
            if !options.header && options.columns == nil { m.error("columns", "a CSV without header needs 'columns'") }
            return .csv(options)
        case .json:
            guard let m = r.mapping(node, path, allowed: ["kind", "records"], context: "kind: json") else { return nil }
            let records = m.string("records") ?? "$"
            if !records.hasPrefix("$") { m.error("records", "record path must start with '$', e.g. '$.items'") }
            return .json(recordPath: records)
        case .ndjson:
            _ = r.mapping(node, path, allowed: ["kind"], context: "kind: ndjson")
            return .ndjson
        }
    }

    private static func decodeTransform(_ node: Node, _ r: YAMLReader) -> [TransformStep] {
        guard let items = r.sequence(node, "transform") else { return [] }
        var steps: [TransformStep] = []
        for (index, item) in items.enumerated() {
            let path = "transform[\(index)]"
            guard let m = r.mapping(item, path, allowed: ["rename", "set", "filter", "melt"]) else { continue }
            guard m.values.count == 1, let (name, entry) = m.values.first else {
                r.error(item, path, "each transform step has exactly one of rename, set, filter, melt")
                continue
            }
            let stepPath = join(path, name)
            switch name {
            case "rename":
                if let pairs = r.stringMap(entry.value, stepPath) { steps.append(.rename(pairs.map { (from: $0.0, to: $0.1) })) }
            case "set":
                if let pairs = r.stringMap(entry.value, stepPath) { steps.append(.set(pairs.map { (field: $0.0, value: $0.1) })) }
            case "filter":
                guard let f = r.mapping(entry.value, stepPath, allowed: ["field", "in", "not_in"], required: ["field"]) else { continue }
                if f.has("in") == f.has("not_in") { r.error(entry.value, stepPath, "filter needs exactly one of 'in' or 'not_in'") }
                if let field = f.string("field") {
                    if let values = f.strings("in") { steps.append(.filter(field: field, values: values, keep: true)) }
                    else if let values = f.strings("not_in") { steps.append(.filter(field: field, values: values, keep: false)) }
                }
            case "melt":
                guard let f = r.mapping(entry.value, stepPath, allowed: ["id_fields", "value_fields", "name_field", "value_field"], required: ["id_fields"]) else { continue }
                steps.append(.melt(
                    idFields: f.strings("id_fields") ?? [], valueFields: f.strings("value_fields"),
                    nameField: f.string("name_field") ?? "series", valueField: f.string("value_field") ?? "value"
                ))
            default: break
            }
        }
        return steps
    }

    private static func decodeMapping(_ node: Node, pipelineName: String, _ r: YAMLReader) -> ObservationMapping? {
        guard let m = r.mapping(node, "observations", allowed: ["station", "time", "values", "decimal", "missing", "quality_field"], required: ["station", "time", "values"]) else { return nil }
        var station: ObservationMapping.StationMapping?
        if let s = m["station"].flatMap({ r.mapping($0, "observations.station", allowed: ["id", "id_value", "prefix", "name", "kind", "coordinates", "properties"]) }) {
            if s.has("id") == s.has("id_value") { r.error(s.node, "observations.station", "station needs exactly one of 'id' (a field) or 'id_value' (a constant)") }
            var coordinates: ObservationMapping.CoordinateMapping?
            if let c = s["coordinates"].flatMap({ r.mapping($0, "observations.station.coordinates", allowed: ["x", "y", "lon", "lat", "crs", "altitude"]) }) {
                let x = c.string("x") ?? c.string("lon")
                let y = c.string("y") ?? c.string("lat")
                var epsg = 4326
                if let crs = c.string("crs") {
                    if let code = parseEPSG(crs) { epsg = code } else { c.error("crs", "crs '\(crs)' is not an EPSG code like 'EPSG:25832'") }
                    if let code = parseEPSG(crs), !CoordinateTransform.supportedEPSG.contains(code) {
                        c.error("crs", "EPSG:\(code) is not supported; supported: \(CoordinateTransform.supportedEPSG.map { "EPSG:\($0)" }.joined(separator: ", "))")
                    }
                }
                if let x, let y {
                    coordinates = .init(xField: x, yField: y, epsg: epsg, altitudeField: c.string("altitude"))
                } else {
                    r.error(c.node, "observations.station.coordinates", "coordinates need 'x' and 'y' (or 'lon' and 'lat')")
                }
            }
            station = .init(
                idField: s.string("id"), idValue: s.string("id_value"), prefix: s.string("prefix") ?? pipelineName,
                nameField: s.string("name"), kind: s.string("kind"), coordinates: coordinates, properties: s.strings("properties") ?? []
            )
        }
        var time: ObservationMapping.TimeMapping?
        if let t = m["time"].flatMap({ r.mapping($0, "observations.time", allowed: ["field", "fields", "format", TimeZoneKey.name, "ambiguous", "interval", "stamp", "strip"],
                                                    deprecated: TimeZoneKey.deprecated, required: ["format"]) }) {
            let fields = t.strings("fields") ?? t.string("field").map { [$0] }
            if fields == nil { r.error(t.node, "observations.time", "time needs 'field' or 'fields'") }
            let zoneKey = t.spelling(TimeZoneKey.name, deprecated: TimeZoneKey.deprecated)
            let zone = t.string(zoneKey) ?? "UTC"
            do { _ = try LocalTimeResolver(zone: zone) } catch { t.error(zoneKey, "\(error) (use an IANA name like 'Europe/Berlin')") }
            let format = t.string("format") ?? "iso8601"
            do { _ = try TimestampParser(format: format, zone: nil) } catch { t.error("format", "\(error)") }
            let interval = t.duration("interval", range: Limits.interval)
            let stamp = t.string("stamp") ?? "start"
            if !["start", "end"].contains(stamp) { t.error("stamp", "stamp must be 'start' or 'end'") }
            if let fields {
                time = .init(fields: fields, format: format, zone: zone, ambiguous: t.oneOf("ambiguous", ObservationMapping.AmbiguousTime.self) ?? .first,
                             intervalSeconds: interval, stampAtEnd: stamp == "end", strip: t.string("strip"))
            }
        }
        var values: [ObservationMapping.ValueMapping] = []
        if let items = m["values"].flatMap({ r.sequence($0, "observations.values") }) {
            if items.isEmpty { m.error("values", "values must list at least one observed value") }
            for (index, item) in items.enumerated() {
                let path = "observations.values[\(index)]"
                guard let v = r.mapping(item, path, allowed: ["field", "property", "unit", "unit_field", "property_field", "properties", "range", "scale"], required: ["field"]) else { continue }
                if v.has("property") == v.has("property_field") { r.error(item, path, "a value needs exactly one of 'property' or 'property_field' (with 'properties')") }
                var lookup: [String: (property: String, unit: String?)] = [:]
                if let node = v["properties"], case .mapping(let map) = node {
                    for (key, value) in map {
                        guard let series = key.string else { continue }
                        let entryPath = join(join(path, "properties"), series)
                        if let prop = value.string, case .scalar = value {
                            checkProperty(prop, unit: nil, node: value, path: entryPath, r)
                            lookup[series] = (prop, nil)
                        } else if let e = r.mapping(value, entryPath, allowed: ["property", "unit"], required: ["property"]), let prop = e.string("property") {
                            checkProperty(prop, unit: e.string("unit"), node: value, path: entryPath, r)
                            lookup[series] = (prop, e.string("unit"))
                        }
                    }
                } else if let node = v["properties"] {
                    r.error(node, v.path("properties"), "expected a mapping from series name to property")
                }
                if let property = v.string("property") { checkProperty(property, unit: v.string("unit"), node: v["unit"] ?? item, path: path, r) }
                var range: ClosedRange<Double>?
                if let bounds = v["range"].flatMap({ r.sequence($0, v.path("range")) }) {
                    let numbers = bounds.enumerated().compactMap { r.double($1, "\(v.path("range"))[\($0)]") }
                    if numbers.count == 2, numbers[0] <= numbers[1] { range = numbers[0]...numbers[1] } else if numbers.count == bounds.count { v.error("range", "range must be [min, max]") }
                }
                // `unit_field:` names the field holding each record's unit; `unit:` is then the fallback for an empty cell.
                let unitField = v.string("unit_field")
                if let unitField {
                    if unitField.trimmingCharacters(in: .whitespaces).isEmpty {
                        v.error("unit_field", "unit_field must name the field that holds each record's unit")
                    } else if unitField == v.string("field") {
                        v.error("unit_field", "unit_field '\(unitField)' is the value's own field; name the field that holds the unit")
                    }
                }
                if let field = v.string("field") {
                    values.append(.init(field: field, property: v.string("property"), unit: v.string("unit"), unitField: unitField,
                                        propertyField: v.string("property_field"), lookup: lookup, range: range, scale: v.double("scale")))
                }
            }
        }
        var decimalComma = false
        if let decimal = m.string("decimal") {
            switch decimal {
            case ",", "comma": decimalComma = true
            case ".", "point": decimalComma = false
            default: m.error("decimal", "decimal must be 'comma' or 'point', found '\(decimal)'")
            }
        }
        guard let station, let time else { return nil }
        return ObservationMapping(
            station: station, time: time, values: values, decimalComma: decimalComma,
            missing: Set(m.strings("missing") ?? [""]), qualityField: m.string("quality_field")
        )
    }

    private static func checkProperty(_ property: String, unit: String?, node: Node, path: String, _ r: YAMLReader) {
        guard let known = Vocabulary.property(property) else {
            let suggestion = closestMatch(to: property, in: Vocabulary.properties.map(\.key)).map { "; did you mean '\($0)'?" } ?? ""
            r.error(node, path, "unknown observed property '\(property)'\(suggestion)")
            return
        }
        if let unit {
            do { _ = try Units.convert(1, from: unit, to: known.unit) } catch {
                r.error(node, join(path, "unit"), "unit '\(unit)' cannot be converted to \(property)'s canonical unit '\(known.unit)'")
            }
        }
    }
}

/// `EPSG:25832`, `epsg:25832`, `25832`, `urn:ogc:def:crs:EPSG::25832`.
func parseEPSG(_ text: String) -> Int? {
    let digits = text.split(whereSeparator: { !$0.isNumber }).last.map(String.init)
    return digits.flatMap(Int.init)
}

/// `PT1H`, `PT15M`, `P1D`, `PT30S`, `1h`, `15m`, `10s`, `1d` → seconds; nil when not a duration or too large
/// to count in seconds.
package func parseDuration(_ text: String) -> Int? {
    if case .seconds(let seconds) = checkedDuration(text) { return seconds }
    return nil
}

/// A duration's seconds, or why there are none; never overflows.
package enum CheckedDuration: Sendable, Hashable {
    case seconds(Int)
    case invalid
    /// A duration, but more seconds than fit in a 64-bit count.
    case tooLarge
}

package func checkedDuration(_ text: String) -> CheckedDuration {
    let t = text.trimmingCharacters(in: .whitespaces)
    if let unit = t.last, let factor = ["s": 1, "m": 60, "h": 3600, "d": 86400][unit] {
        let digits = t.dropLast()
        if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) {
            guard let value = Int(digits) else { return .tooLarge }
            guard value > 0 else { return .invalid }
            let (seconds, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? .tooLarge : .seconds(seconds)
        }
    }
    guard t.hasPrefix("P") else { return .invalid }
    var total = 0, number = "", inTime = false, any = false
    for c in t.dropFirst() {
        if c == "T", !inTime { inTime = true; continue }
        if c.isASCII, c.isNumber { number.append(c); continue }
        guard !number.isEmpty else { return .invalid }
        guard let n = Int(number) else { return .tooLarge }
        number = ""
        any = true
        let factor: Int
        switch (c, inTime) {
        case ("D", false): factor = 86400
        case ("W", false): factor = 7 * 86400
        case ("H", true): factor = 3600
        case ("M", true): factor = 60
        case ("S", true): factor = 1
        default: return .invalid
        }
        let (part, overflow) = n.multipliedReportingOverflow(by: factor)
        if overflow { return .tooLarge }
        let (sum, overflowed) = total.addingReportingOverflow(part)
        if overflowed { return .tooLarge }
        total = sum
    }
    return any && number.isEmpty && total > 0 ? .seconds(total) : .invalid
}

/// `90` → "90s", `86400` → "1d" (for messages about allowed ranges).
func formatSeconds(_ seconds: Int) -> String {
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
        return "\(seconds / size)\(unit)"
    }
    return "\(seconds)s"
}

extension PipelineSpec {
    /// The largest `jitter:` (1 day).
    package static let maxJitterSeconds = 86_400

    /// The allowed range of every number in a pipeline: checked when the file is read, so no later arithmetic
    /// on them (µs time stamps, page offsets, timeouts) can overflow.
    package enum Limits {
        /// `schedule: every <duration>`: 1 s … 366 days.
        package static let scheduleInterval = 1...(366 * 86_400)
        package static let jitter = 1...PipelineSpec.maxJitterSeconds
        package static let timeoutSeconds = 1...86_400
        package static let maxPages = 1...10_000_000
        package static let pageSize = 1...1_000_000
        package static let pageStart = 0...1_000_000_000
        package static let skipRows = 0...1_000_000
        package static let maxBadRecords = 0...1_000_000_000
        /// `observations.time.interval`: 1 s … 366 days.
        package static let interval = 1...(366 * 86_400)
        /// Whole-number connector settings (page sizes, periods, counts); each connector checks its own tighter range.
        package static let connectorInt = -1_000_000_000...1_000_000_000
    }

    /// `every <duration>` must lie within `Limits.scheduleInterval`; false (with a diagnostic) when it does not.
    static func checkScheduleInterval(_ schedule: String, _ top: YAMLReader.Mapping) -> Bool {
        let text = schedule.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("every ") else { return true }
        let duration = String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces)
        let range = Limits.scheduleInterval
        switch checkedDuration(duration) {
        case .invalid:
            top.error("schedule", "'\(duration)' is not a duration like 15m, 1h, 30s, 1d or PT15M")
            return false
        case .seconds(let seconds) where range.contains(seconds):
            return true
        case .seconds, .tooLarge:
            top.error("schedule", "the interval of 'schedule: every …' must be between \(formatSeconds(range.lowerBound)) and \(formatSeconds(range.upperBound)), found '\(duration)'")
            return false
        }
    }
}
