import Crypto
import DatenwerkCore
import Foundation
import Yams

/// A pipeline template (`Pipelines/templates/<name>.yaml`): typed parameters and a pipeline body that uses them as
/// `${{ params.<name> }}` (and `${{ pipeline.name }}`, `${{ pipeline.tenant }}`). A pipeline instantiates it with
/// `uses: templates/<name>` and `with: {…}` (see `TemplateInstantiation` and docs/templates.md).
///
/// The file is composed with `lineOffset` blank lines before it, so that the nodes of a template and of the pipeline
/// that uses it can share one node tree and one `YAMLReader` and still be told apart by line (`YAMLReader.origin`).
package struct PipelineTemplate: @unchecked Sendable {
    package static let keys = ["version", "template", "description", "parameters", "pipeline"]
    package static let parameterKeys = ["type", "description", "default", "example"]

    package enum ParameterType: String, Sendable, CaseIterable {
        case string, integer, number, boolean, url, ags, bbox, strings, mapping

        /// How `describe` and messages name it.
        package var label: String {
            switch self {
            case .string: "text"
            case .integer: "whole number"
            case .number: "number"
            case .boolean: "true or false"
            case .url: "http(s) URL"
            case .ags: "8-digit AGS"
            case .bbox: "bbox [west, south, east, north] in WGS84 degrees"
            case .strings: "list of text"
            case .mapping: "mapping of text to text (or to mappings of text)"
            }
        }
    }

    package struct Parameter: @unchecked Sendable {
        package var name: String
        package var type: ParameterType
        package var description: String
        /// The default's node (marks shifted by the template's line offset); nil: the parameter is required.
        package var defaultValue: Node?
        package var example: Node?
        /// Where the parameter is declared (its key), in the template file's own lines.
        package var line: Int
        package var column: Int
        package var required: Bool { defaultValue == nil }
    }

    /// The template's name: its file name without `.yaml`.
    package var name: String
    package var file: String
    package var description: String
    package var parameters: [Parameter]
    /// SHA-256 of the file's bytes, lowercase hex (what `sha256:` pins for a remote template).
    package var sha256: String
    /// Blank lines composed before the file (see the type's comment).
    package var lineOffset: Int
    /// The `pipeline:` block, placeholders not yet replaced.
    package var body: Node
    /// `file:line:col` of the `parameters:` block (of `template:` when there is none).
    package var parametersDeclaration: String
    /// `file:line:col` of a parameter's declaration.
    package func declaration(_ parameter: Parameter) -> String { "\(file):\(parameter.line):\(parameter.column)" }

    /// Reads a template; problems are reported to `reader` (whose `origin` must map lines past `lineOffset` to `file`).
    static func parse(text: String, file: String, name: String, lineOffset: Int, reader r: YAMLReader) -> PipelineTemplate? {
        let sha = sha256Hex(Array(text.utf8))
        var text = text
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let node: Node?
        do {
            node = try Yams.compose(yaml: String(repeating: "\n", count: lineOffset) + text)
        } catch let error as YamlError {
            r.append(Diagnostic.yamlSyntax(error, file: file, lineOffset: lineOffset))
            return nil
        } catch {
            r.append(Diagnostic(file: file, "cannot read the template: \(error)"))
            return nil
        }
        guard let node else {
            r.append(Diagnostic(file: file, line: 1, column: 1, "the template file is empty"))
            return nil
        }
        guard let top = r.mapping(node, "", allowed: keys, required: ["version", "template", "description", "pipeline"], context: "a template") else { return nil }
        if let version = top.int("version"), version != 1 { top.error("version", "unsupported template version \(version); this Datenwerk reads version 1") }
        if let declared = top.string("template"), declared != name {
            top.error("template", "the template is named '\(declared)' but its file is '\(name).yaml'; the two must agree")
        }
        var parameters: [Parameter] = []
        if let node = top["parameters"] {
            if case .mapping(let mapping) = node {
                for (key, value) in mapping {
                    guard let pname = key.string else { continue }
                    let path = join("parameters", pname)
                    if pname.range(of: #"^[a-z][a-z0-9_]*$"#, options: .regularExpression) == nil {
                        r.error(key, path, "parameter name '\(pname)' must be lowercase letters, digits or '_', starting with a letter")
                    }
                    guard let p = r.mapping(value, path, allowed: parameterKeys, required: ["type", "description"]),
                          let type = p.oneOf("type", ParameterType.self), let description = p.string("description") else { continue }
                    let line = (key.mark?.line ?? lineOffset + 1) - lineOffset
                    let parameter = Parameter(name: pname, type: type, description: description, defaultValue: p["default"], example: p["example"],
                                              line: line, column: key.mark?.column ?? 1)
                    for (what, value) in [("default", parameter.defaultValue), ("example", parameter.example)] {
                        if let value, let problem = TemplateValue.check(value, as: type) {
                            r.error(value, p.path(what), "the \(what) of parameter '\(pname)' \(problem)")
                        }
                    }
                    parameters.append(parameter)
                }
            } else {
                r.error(node, "parameters", "expected a mapping of parameter names to their declarations, found \(r.describe(node))")
            }
        }
        guard let body = top["pipeline"] else { return nil }
        guard case .mapping(let bodyMapping) = body else {
            r.error(body, "pipeline", "expected the pipeline's keys (source, observations, …), found \(r.describe(body))")
            return nil
        }
        for (key, _) in bodyMapping where ["name", "tenant", "uses", "with", "sha256"].contains(key.string ?? "") {
            r.error(key, "pipeline", "'\(key.string ?? "")' belongs to the pipeline that uses the template, not to the template")
        }
        let declared = (top.values["parameters"] ?? top.values["template"])?.key.mark
        return PipelineTemplate(name: name, file: file, description: top.string("description") ?? "", parameters: parameters, sha256: sha,
                                lineOffset: lineOffset, body: body,
                                parametersDeclaration: "\(file):\((declared?.line ?? lineOffset + 1) - lineOffset):\(declared?.column ?? 1)")
    }

    /// Reads a template file on its own (for `templates list|describe` and the server's index); throws `DiagnosticError`.
    package static func load(file: String) throws -> PipelineTemplate {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw DiagnosticError([Diagnostic(file: file, "cannot read template file: \(error.localizedDescription)")])
        }
        guard let text = String(data: data, encoding: .utf8) else { throw DiagnosticError([Diagnostic(file: file, "the template is not UTF-8 text")]) }
        let reader = YAMLReader(file: file)
        let template = parse(text: text, file: file, name: Self.name(ofFile: file), lineOffset: 0, reader: reader)
        guard let template, reader.diagnostics.isEmpty else { throw DiagnosticError(reader.diagnostics) }
        return template
    }

    /// Checks a template by instantiating it with every parameter's `example` (or default) as pipeline
    /// `template-check` of tenant 05515000: every problem of the body is reported at the template's lines.
    package static func check(file: String, connectors: ConnectorRegistry = .none) -> [Diagnostic] {
        let template: PipelineTemplate
        do { template = try load(file: file) } catch let error as DiagnosticError { return error.diagnostics } catch { return [Diagnostic(file: file, "\(error)")] }
        var with = ""
        for parameter in template.parameters where parameter.required {
            guard let example = parameter.example else {
                return [Diagnostic(file: file, line: parameter.line, column: parameter.column,
                                   "required parameter '\(parameter.name)' needs an 'example:' (used by `templates describe` and to check the template)")]
            }
            with += "  \(parameter.name): \(TemplateValue.flowText(example))\n"
        }
        let directory = parentFolder(file)
        let yaml = "version: 1\nname: template-check\ntenant: \"05515000\"\nuses: templates/\(template.name)\n" + (with.isEmpty ? "" : "with:\n" + with)
        let pipelineFile = (parentFolder(directory) as NSString).appendingPathComponent("template-check.yaml")
        do {
            return try PipelineSpec.parse(yaml: yaml, file: pipelineFile, connectors: connectors, templates: TemplateLibrary(cacheDirectory: "/nonexistent")).warnings
        } catch let error as DiagnosticError {
            return error.diagnostics
        } catch {
            return [Diagnostic(file: file, "\(error)")]
        }
    }

    static func name(ofFile file: String) -> String {
        let base = (file as NSString).lastPathComponent
        for suffix in [".yaml", ".yml"] where base.hasSuffix(suffix) { return String(base.dropLast(suffix.count)) }
        return base
    }

    /// True when a YAML document is a template rather than a pipeline (it has `template:` and `pipeline:`).
    static func isTemplate(_ node: Node) -> Bool {
        node["template"] != nil && node["pipeline"] != nil
    }
}

/// The folder of a path: "" for a bare name, "/" for a top-level one (Foundation's `deletingLastPathComponent` traps
/// on "" and on ".").
package func parentFolder(_ path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}

/// SHA-256 of bytes as lowercase hex (swift-crypto).
package func sha256Hex(_ bytes: some DataProtocol) -> String {
    hexString(SHA256.hash(data: bytes))
}

/// A SHA-256 digest as lowercase hex (also of a digest computed piece by piece, `FileMemory`).
package func hexString(_ digest: SHA256.Digest) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Where templates are found: `templates/<name>.yaml` in the pipeline's folder or the nearest folder above it that has
/// one; remote templates (`uses: https://…`) in a cache by their SHA-256, filled by `RemoteTemplates.fetchMissing`.
package struct TemplateLibrary: Sendable {
    package var cacheDirectory: String

    package init(cacheDirectory: String) { self.cacheDirectory = cacheDirectory }

    /// `DATENWERK_TEMPLATE_CACHE`, else `$XDG_CACHE_HOME/datenwerk/templates`, else `~/.cache/datenwerk/templates`.
    package static var standard: TemplateLibrary {
        let environment = ProcessInfo.processInfo.environment
        if let dir = environment["DATENWERK_TEMPLATE_CACHE"], !dir.isEmpty { return TemplateLibrary(cacheDirectory: dir) }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return TemplateLibrary(cacheDirectory: (base as NSString).appendingPathComponent("datenwerk/templates"))
    }

    /// `templates/<name>.yaml` (or `.yml`) next to the pipeline or in a folder above it.
    func localFile(named name: String, from pipelineFile: String) -> String? {
        // Relative pipeline paths stay relative (messages name the template as the user would), up to the working folder.
        var directory = parentFolder(pipelineFile)
        while true {
            for ext in ["yaml", "yml"] {
                let candidate = (directory.isEmpty ? "" : directory + "/") + "templates/\(name).\(ext)"
                if FileManager.default.fileExists(atPath: candidate) { return (candidate as NSString).standardizingPath }
            }
            if directory == "/" { return nil }
            if directory.isEmpty {
                // Above the working folder: on with absolute paths.
                directory = parentFolder(FileManager.default.currentDirectoryPath)
                continue
            }
            directory = parentFolder(directory)
        }
    }

    package func cachedFile(sha256: String) -> String {
        (cacheDirectory as NSString).appendingPathComponent("\(sha256.lowercased()).yaml")
    }

    /// Every template file in `directory` (not recursive), sorted by name.
    package static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }
}

/// Type checks and text forms of parameter values.
package enum TemplateValue {
    /// Why `node` is not a value of `type` ("expects …, found …"); nil when it is.
    static func check(_ node: Node, as type: PipelineTemplate.ParameterType) -> String? {
        let found = describe(node)
        let expects = "expects \(type.label), found \(found)"
        switch type {
        case .string:
            guard case .scalar(let s) = node, !isNull(s) else { return expects }
        case .integer:
            guard case .scalar(let s) = node, let value = Int(s.string), PipelineSpec.Limits.connectorInt.contains(value) else { return expects }
        case .number:
            guard case .scalar(let s) = node, let value = Double(s.string), value.isFinite else { return expects }
        case .boolean:
            guard case .scalar = node, node.bool != nil else { return expects }
        case .url:
            guard case .scalar(let s) = node, let components = URLComponents(string: s.string),
                  ["http", "https"].contains(components.scheme?.lowercased() ?? ""), !(components.host ?? "").isEmpty else { return expects }
        case .ags:
            guard case .scalar(let s) = node, s.string.range(of: #"^[0-9]{8}$"#, options: .regularExpression) != nil else {
                return "\(expects) (quote it so leading zeros stay: \"05515000\")"
            }
        case .bbox:
            guard case .sequence(let items) = node, items.count == 4 else { return expects }
            let numbers = items.compactMap { item -> Double? in
                guard case .scalar(let s) = item, let v = Double(s.string), v.isFinite else { return nil }
                return v
            }
            guard numbers.count == 4 else { return expects }
            let (west, south, east, north) = (numbers[0], numbers[1], numbers[2], numbers[3])
            guard (-180...180).contains(west), (-180...180).contains(east), (-90...90).contains(south), (-90...90).contains(north) else {
                return "expects \(type.label), found longitudes or latitudes outside ±180/±90"
            }
            guard west < east, south < north else { return "expects \(type.label) with west < east and south < north, found \(found)" }
        case .mapping:
            guard case .mapping(let pairs) = node else { return expects }
            for (key, value) in pairs {
                guard case .scalar(let k) = key, !isNull(k) else { return "\(expects) (every key must be text)" }
                switch value {
                case .scalar(let v) where !isNull(v): continue
                case .mapping(let inner) where inner.allSatisfy({ $0.key.scalar != nil && $0.value.scalar != nil }): continue
                default: return "\(expects) (the value of '\(k.string)' must be text or a mapping of text)"
                }
            }
        case .strings:
            guard case .sequence(let items) = node else { return expects }
            for item in items {
                guard case .scalar(let s) = item, !isNull(s) else { return "\(expects) (every item must be text)" }
            }
        }
        return nil
    }

    static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain || scalar.style == .any ? ["", "~", "null", "Null", "NULL"].contains(scalar.string) : false
    }

    /// The value as it is pasted into a longer text: lists joined with commas.
    static func text(_ node: Node) -> String? {
        switch node {
        case .scalar(let s): return s.string
        case .sequence(let items):
            let parts = items.compactMap { item -> String? in if case .scalar(let s) = item { return s.string } else { return nil } }
            return parts.count == items.count ? parts.joined(separator: ",") : nil
        default: return nil
        }
    }

    /// A YAML flow form of a value (for the example `with:` block and the template check).
    package static func flowText(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            let plain = (s.style == .plain || s.style == .any) && s.string.range(of: #"^[A-Za-z0-9_.+-]+$"#, options: .regularExpression) != nil
            return plain ? s.string : quoted(s.string)
        case .sequence(let items): return "[" + items.map(flowText).joined(separator: ", ") + "]"
        case .mapping(let m): return "{" + m.map { "\(flowText($0.key)): \(flowText($0.value))" }.joined(separator: ", ") + "}"
        case .alias: return "~"
        }
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return isNull(s) ? "an empty value" : "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}
