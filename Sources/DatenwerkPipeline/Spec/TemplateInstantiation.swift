import DatenwerkCore
import Foundation
import Yams

/// Turns a pipeline that says `uses: templates/<name>` (or a remote template's URL with `sha256:`) and `with: {…}`
/// into one pipeline node tree, which `PipelineSpec` then reads like any other.
///
/// The template is composed with as many blank lines before it as the pipeline has lines, so each node keeps a
/// position that says which file it came from: the reader's `origin` maps the template's lines back to the template
/// file (with a note naming the pipeline). A parameter replaced whole (`url: ${{ params.url }}`) is the pipeline's
/// own `with:` node, so a problem with its value points at the pipeline; text pasted into a longer value and
/// everything else of the body points at the template.
enum TemplateInstantiation {
    /// The keys a pipeline that uses a template may have; the rest of the pipeline comes from the template.
    static let pipelineKeys = [
        "version", "name", "tenant", "uses", "sha256", "with", "description", "dataset", "schedule", TimeZoneKey.name, "jitter",
        "on_bad_record", "max_bad_records", "sink",
    ]
    /// Keys only the template gives (reported with a hint, not as unknown keys).
    static let templateOnlyKeys = ["source", "transform", "observations"]
    static let ownKeys: Set<String> = ["uses", "sha256", "with"]

    static func instantiate(_ node: Node, yaml: String, reader r: YAMLReader, library: TemplateLibrary) -> Node? {
        guard let top = r.mapping(node, "", allowed: pipelineKeys + templateOnlyKeys, deprecated: TimeZoneKey.deprecated,
                                  required: ["version", "name", "tenant", "uses"], context: "a pipeline that uses a template") else { return nil }
        guard let usesNode = top["uses"], let uses = r.string(usesNode, "uses") else { return nil }
        guard let (templateFile, text) = resolve(uses, usesNode: usesNode, top: top, reader: r, library: library) else { return nil }
        let name = PipelineTemplate.name(ofFile: URL(string: templateFile)?.lastPathComponent ?? templateFile)
        // More lines than the pipeline can have, whatever its line breaks (YAML also breaks at CR, NEL, LS and PS).
        let lineOffset = yaml.unicodeScalars.count(where: { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) }) + 2
        let usedAt = "\(r.file):\(usesNode.mark?.line ?? 1):\(usesNode.mark?.column ?? 1)"
        let pipeline = top["name"]?.string.map { "pipeline '\($0)' at " } ?? ""
        r.origin = { line in line > lineOffset ? (templateFile, line - lineOffset, " (in template '\(name)', used by \(pipeline)\(usedAt))") : nil }
        guard let template = PipelineTemplate.parse(text: text, file: templateFile, name: name, lineOffset: lineOffset, reader: r) else { return nil }

        for key in templateOnlyKeys where top.has(key) {
            r.error(top.values[key]?.key, "", "'\(key)' comes from template '\(name)'; change it through the template's parameters (`datenwerk templates describe \(name)`) or write the pipeline without 'uses:'")
        }
        let values = parameterValues(top, template: template, usesNode: usesNode, reader: r)
        // A pipeline or template with a problem so far is not read on: its body would only repeat the problem.
        guard r.diagnostics.isEmpty else { return nil }
        var substitution = Substitution(template: template, values: values, reader: r, pipelineName: top["name"], tenant: top["tenant"])
        let body = substitution.apply(template.body, path: "")
        for parameter in template.parameters where !substitution.used.contains(parameter.name) {
            r.appendWarning(Diagnostic(.warning, file: template.file, line: parameter.line, column: parameter.column,
                                       "parameter '\(parameter.name)' is never used in the template's pipeline"))
        }
        guard case .mapping(let bodyMapping) = body, case .mapping(let pipelineMapping) = node else { return nil }
        return .mapping(merge(body: bodyMapping, pipeline: pipelineMapping))
    }

    /// The template's file (path or URL) and text.
    private static func resolve(_ uses: String, usesNode: Node, top: YAMLReader.Mapping, reader r: YAMLReader, library: TemplateLibrary) -> (String, String)? {
        let pinned = top.string("sha256")
        if let pinned, pinned.range(of: #"^[0-9a-fA-F]{64}$"#, options: .regularExpression) == nil {
            top.error("sha256", "sha256 must be 64 hexadecimal digits (the SHA-256 of the template file, as its server's /templates/ index lists it)")
            return nil
        }
        if uses.hasPrefix("https://") || uses.hasPrefix("http://") {
            guard let pinned else {
                r.error(usesNode, "uses", "a template from another installation must be pinned: add 'sha256: <hex>' (from its /templates/ index)")
                return nil
            }
            guard URL(string: uses)?.host != nil, uses.hasSuffix(".yaml") || uses.hasSuffix(".yml") else {
                r.error(usesNode, "uses", "'\(uses)' is not the URL of a template file (https://…/templates/<name>.yaml)")
                return nil
            }
            let cached = library.cachedFile(sha256: pinned)
            guard let data = FileManager.default.contents(atPath: cached) else {
                r.error(usesNode, "uses", "template \(uses) has not been fetched yet: `datenwerk validate` or `datenwerk templates fetch` fetches it (and checks its sha256)")
                return nil
            }
            guard sha256Hex(data) == pinned.lowercased(), let text = String(data: data, encoding: .utf8) else {
                r.error(usesNode, "uses", "the cached copy of \(uses) (\(cached)) does not match its sha256; delete it and run `datenwerk templates fetch`")
                return nil
            }
            return (uses, text)
        }
        let name = uses.hasPrefix("templates/") ? String(uses.dropFirst("templates/".count)) : ""
        guard name.range(of: #"^[a-z0-9][a-z0-9_-]*$"#, options: .regularExpression) != nil else {
            r.error(usesNode, "uses", "'\(uses)' names no template: write 'templates/<name>' (a file Pipelines/templates/<name>.yaml) or the https URL of another installation's template with 'sha256:'")
            return nil
        }
        guard let file = library.localFile(named: name, from: r.file) else {
            var known: [String] = []
            var directory = parentFolder(r.file)
            for _ in 0..<4 {
                known += TemplateLibrary.files(in: (directory as NSString).appendingPathComponent("templates")).map { PipelineTemplate.name(ofFile: $0) }
                directory = parentFolder(directory)
            }
            let suggestion = closestMatch(to: name, in: known).map { "; did you mean 'templates/\($0)'?" } ?? ""
            r.error(usesNode, "uses", "no template '\(name)': there is no templates/\(name).yaml beside the pipeline or in a folder above it\(suggestion)")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            r.error(usesNode, "uses", "cannot read template file \(file)")
            return nil
        }
        if let pinned, sha256Hex(data) != pinned.lowercased() {
            top.error("sha256", "template \(file) has sha256 \(sha256Hex(data)), not the pinned \(pinned.lowercased())")
            return nil
        }
        return (file, text)
    }

    /// Each parameter's value node: from `with:` (type-checked), else its default. Problems name both places.
    private static func parameterValues(_ top: YAMLReader.Mapping, template: PipelineTemplate, usesNode: Node, reader r: YAMLReader) -> [String: Node] {
        var values: [String: Node] = [:]
        var given: Set<String> = []
        let declared = Dictionary(template.parameters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let names = template.parameters.map(\.name)
        if let withNode = top["with"] {
            if case .mapping(let mapping) = withNode {
                for (key, value) in mapping {
                    guard let pname = key.string else {
                        r.error(key, "with", "parameter names must be text")
                        continue
                    }
                    guard let parameter = declared[pname] else {
                        let suggestion = closestMatch(to: pname, in: names).map { "; did you mean '\($0)'?" }
                            ?? (names.isEmpty ? "; it declares none" : "; it declares: \(names.joined(separator: ", "))")
                        r.error(key, "", "unknown parameter '\(pname)' in 'with': template '\(template.name)' (\(template.parametersDeclaration)) has no such parameter\(suggestion)")
                        continue
                    }
                    if given.contains(pname) { r.error(key, join("with", pname), "duplicate parameter '\(pname)'") }
                    given.insert(pname)
                    if let problem = TemplateValue.check(value, as: parameter.type) {
                        r.error(value, join("with", pname), "parameter '\(pname)' of template '\(template.name)' (declared at \(template.declaration(parameter))) \(problem)")
                    } else {
                        values[pname] = value
                    }
                }
            } else if !(withNode.scalar.map(TemplateValue.isNull) ?? false) {
                r.error(withNode, "with", "expected a mapping of parameter names to values, found \(r.describe(withNode))")
            }
        }
        var missing: [String] = []
        for parameter in template.parameters where values[parameter.name] == nil && !given.contains(parameter.name) {
            if let value = parameter.defaultValue {
                values[parameter.name] = value
            } else {
                missing.append(parameter.name)
                r.error(top["with"] ?? usesNode, top["with"] == nil ? "uses" : "with",
                        "missing required parameter '\(parameter.name)' (\(parameter.type.label)) of template '\(template.name)', declared at \(template.declaration(parameter)): \(parameter.description)")
            }
        }
        return values
    }

    /// The pipeline's own keys replace the body's (`dataset:` key by key); the rest is the template's body.
    private static func merge(body: Node.Mapping, pipeline: Node.Mapping) -> Node.Mapping {
        var own: [(key: Node, value: Node)] = pipeline.filter { !ownKeys.contains($0.key.string ?? "") && !templateOnlyKeys.contains($0.key.string ?? "") }
        var pairs: [(Node, Node)] = []
        for (key, value) in body {
            guard let index = own.firstIndex(where: { $0.key.string == key.string }) else {
                pairs.append((key, value))
                continue
            }
            let mine = own.remove(at: index)
            if key.string == "dataset", case .mapping(let base) = value, case .mapping(let overrides) = mine.value {
                var merged: [(Node, Node)] = base.filter { pair in !overrides.contains { $0.key.string == pair.key.string } }.map { ($0.key, $0.value) }
                merged += overrides.map { ($0.key, $0.value) }
                pairs.append((mine.key, .mapping(Node.Mapping(merged, overrides.tag, overrides.style, overrides.mark))))
            } else {
                pairs.append((mine.key, mine.value))
            }
        }
        pairs += own.map { ($0.key, $0.value) }
        return Node.Mapping(pairs, pipeline.tag, pipeline.style, pipeline.mark)
    }

    /// Replaces `${{ params.<name> }}`, `${{ pipeline.name }}` and `${{ pipeline.tenant }}` in a template body.
    struct Substitution {
        let template: PipelineTemplate
        let values: [String: Node]
        let reader: YAMLReader
        let pipelineName: Node?
        let tenant: Node?
        private(set) var used: Set<String> = []

        init(template: PipelineTemplate, values: [String: Node], reader: YAMLReader, pipelineName: Node?, tenant: Node?) {
            self.template = template
            self.values = values
            self.reader = reader
            self.pipelineName = pipelineName
            self.tenant = tenant
        }

        static var placeholder: Regex<(Substring, Substring, Substring, Substring?)> {
            #/\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}\}/#
        }

        mutating func apply(_ node: Node, path: String) -> Node {
            switch node {
            case .scalar(let scalar):
                return scalarNode(scalar, node: node, path: path)
            case .sequence(let sequence):
                let items = sequence.enumerated().map { apply($1, path: "\(path)[\($0)]") }
                return .sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark))
            case .mapping(let mapping):
                var pairs: [(Node, Node)] = []
                for (key, value) in mapping {
                    var newKey = apply(key, path: path)
                    if case .scalar = newKey {} else {
                        reader.error(key, path, "a key can take text only; '\(key.string ?? "")' is replaced by \(reader.describe(newKey))")
                        newKey = key
                    }
                    pairs.append((newKey, apply(value, path: join(path, newKey.string ?? ""))))
                }
                return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
            case .alias:
                return node
            }
        }

        private mutating func scalarNode(_ scalar: Node.Scalar, node: Node, path: String) -> Node {
            let text = scalar.string
            guard text.contains("${{") else { return node }
            let matches = text.matches(of: Self.placeholder)
            let leftover = matches.reduce(text) { $0.replacingOccurrences(of: String($1.output.0), with: "") }
            if leftover.contains("${{") {
                reader.error(node, path, "'\(text)' has a placeholder that is not '${{ params.<name> }}', '${{ pipeline.name }}' or '${{ pipeline.tenant }}'")
                return node
            }
            // The whole value is one placeholder: the value node itself (a list stays a list; its position is the pipeline's).
            if matches.count == 1, text.trimmingCharacters(in: .whitespaces) == String(matches[0].output.0) {
                return lookup(matches[0].output, node: node, path: path) ?? node
            }
            var result = ""
            var rest = text[...]
            for match in matches {
                guard let range = rest.range(of: match.output.0) else { continue }
                result += rest[..<range.lowerBound]
                rest = rest[range.upperBound...]
                guard let value = lookup(match.output, node: node, path: path) else { return node }
                guard let pasted = TemplateValue.text(value) else {
                    reader.error(node, path, "\(match.output.0) is \(reader.describe(value)); only text, numbers and lists of them can be part of a longer value")
                    return node
                }
                result += pasted
            }
            result += rest
            var replaced = scalar
            replaced.string = result
            return .scalar(replaced)
        }

        private mutating func lookup(_ match: (Substring, Substring, Substring, Substring?), node: Node, path: String) -> Node? {
            let (namespace, name) = (String(match.1), String(match.2))
            if let part = match.3, part == "keys", namespace == "params", template.parameters.contains(where: { $0.name == name && $0.type == .mapping }) {
                // `${{ params.<mapping>.keys }}`: the names of a mapping's entries, as a list.
                used.insert(name)
                guard case .mapping(let pairs)? = values[name] else { return nil }
                return .sequence(Node.Sequence(pairs.map(\.key), .implicit, .flow, node.mark))
            }
            if let part = match.3 {
                // `${{ params.<bbox>.west }}` (south, east, north): one side of a bounding box.
                let sides = ["west", "south", "east", "north"]
                guard namespace == "params", let parameter = template.parameters.first(where: { $0.name == name }), parameter.type == .bbox,
                      let side = sides.firstIndex(of: String(part)) else {
                    reader.error(node, path, "'\(match.0)' is not a placeholder: only a bbox parameter has parts (.west, .south, .east, .north), and a mapping parameter .keys")
                    return nil
                }
                used.insert(name)
                guard case .sequence(let items)? = values[name], items.count == 4 else { return nil }
                return items[items.index(items.startIndex, offsetBy: side)]
            }
            switch (namespace, name) {
            case ("params", _):
                guard let value = values[name] else {
                    if !template.parameters.contains(where: { $0.name == name }) {
                        let names = template.parameters.map(\.name)
                        let suggestion = closestMatch(to: name, in: names).map { "; did you mean '\($0)'?" } ?? "; declared: \(names.isEmpty ? "none" : names.joined(separator: ", "))"
                        reader.error(node, path, "'${{ params.\(name) }}' names no parameter of template '\(template.name)'\(suggestion)")
                    }
                    used.insert(name)
                    return nil
                }
                used.insert(name)
                return value
            case ("pipeline", "name"): return pipelineName
            case ("pipeline", "tenant"): return tenant
            default:
                reader.error(node, path, "'${{ \(namespace).\(name) }}' is not a placeholder: use '${{ params.<name> }}', '${{ pipeline.name }}' or '${{ pipeline.tenant }}'")
                return nil
            }
        }
    }
}
