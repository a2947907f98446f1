import DatenwerkCore
import Foundation
import Yams

/// Walks a YAML node tree and collects *every* problem with its `file:line:col` and key path.
///
/// Each `mapping` call names the keys it accepts, so unknown keys are reported with a suggestion.
final class YAMLReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []
    /// Problems that do not stop the pipeline (old spellings of a key).
    private(set) var warnings: [Diagnostic] = []

    /// For a pipeline that uses a template: maps a line of the joined node tree to the template file it came from
    /// (its line there, and a note naming the pipeline); nil for the pipeline's own lines (`TemplateInstantiation`).
    var origin: ((Int) -> (file: String, line: Int, note: String)?)?

    init(file: String) { self.file = file }

    func error(_ node: Node?, _ path: String, _ message: String) {
        diagnostics.append(located(.error, node, path, message))
    }

    func warning(_ node: Node?, _ path: String, _ message: String) {
        warnings.append(located(.warning, node, path, message))
    }

    /// A diagnostic located already (a template's YAML syntax error).
    func append(_ diagnostic: Diagnostic) { diagnostics.append(diagnostic) }
    func appendWarning(_ diagnostic: Diagnostic) { warnings.append(diagnostic) }

    private func located(_ severity: Diagnostic.Severity, _ node: Node?, _ path: String, _ message: String) -> Diagnostic {
        let mark = node?.mark
        let location = path.isEmpty ? "" : " (at '\(path)')"
        if let line = mark?.line, let found = origin?(line) {
            return Diagnostic(severity, file: found.file, line: found.line, column: mark?.column, message + location + found.note)
        }
        return Diagnostic(severity, file: file, line: mark?.line, column: mark?.column, message + location)
    }

    /// A mapping whose keys must be among `allowed` (or `deprecated`, old spellings neither suggested nor listed);
    /// `required` keys must be present.
    func mapping(_ node: Node, _ path: String, allowed: [String], deprecated: [String] = [], required: [String] = [], context: String? = nil) -> Mapping? {
        guard case .mapping(let mapping) = node else {
            error(node, path, "expected a mapping (key: value pairs), found \(describe(node))")
            return nil
        }
        var values: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                error(key, path, "keys must be text")
                continue
            }
            if !allowed.contains(name), !deprecated.contains(name) {
                let suggestion = closestMatch(to: name, in: allowed).map { "; did you mean '\($0)'?" } ?? "; allowed: \(allowed.joined(separator: ", "))"
                let inside = path.isEmpty ? "the pipeline" : "'\(path)'"
                let ctx = context.map { " (\($0))" } ?? ""
                error(key, "", "unknown key '\(name)' in \(inside)\(ctx)\(suggestion)")
                continue
            }
            if values[name] != nil { error(key, join(path, name), "duplicate key '\(name)'") }
            values[name] = (key, value)
        }
        for name in required where values[name] == nil {
            let inside = path.isEmpty ? "the pipeline" : "'\(path)'"
            error(node, "", "missing required key '\(name)' in \(inside)")
        }
        return Mapping(reader: self, node: node, path: path, values: values)
    }

    func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error(node, path, "expected text, found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    /// A whole number; with `range`, one inside it (the message names the key and the allowed range).
    func int(_ node: Node, _ path: String, min: Int? = nil, range: ClosedRange<Int>? = nil) -> Int? {
        let key = path.split(separator: ".").last.map(String.init) ?? path
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            if case .scalar(let scalar) = node, scalar.string.range(of: #"^[+-]?[0-9]+$"#, options: .regularExpression) != nil {
                let allowed = range.map { "; allowed: \($0.lowerBound)…\($0.upperBound)" } ?? ""
                error(node, path, "'\(key)' is out of range, found \(scalar.string)\(allowed)")
            } else {
                error(node, path, "expected a whole number, found \(describe(node))")
            }
            return nil
        }
        if let min, value < min {
            error(node, path, "must be at least \(min), found \(value)")
            return nil
        }
        if let range, !range.contains(value) {
            error(node, path, "'\(key)' must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
            return nil
        }
        return value
    }

    /// A finite number (`.inf`, `.nan` and values beyond ±1.8e308 are refused).
    func double(_ node: Node, _ path: String) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string) else {
            error(node, path, "expected a number, found \(describe(node))")
            return nil
        }
        guard value.isFinite else {
            error(node, path, "expected a finite number, found \(describe(node))")
            return nil
        }
        return value
    }

    /// A duration (`30s`, `15m`, `1h`, `1d`, `PT1H`, `P1D`) within `range` seconds.
    func duration(_ node: Node, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, path) else { return nil }
        let key = path.split(separator: ".").last.map(String.init) ?? path
        switch checkedDuration(text) {
        case .invalid:
            error(node, path, "'\(text)' is not a duration (e.g. 30s, 5m, PT1M)")
            return nil
        case .seconds(let seconds) where range.contains(seconds):
            return seconds
        case .seconds, .tooLarge:
            error(node, path, "'\(key)' must be between \(formatSeconds(range.lowerBound)) and \(formatSeconds(range.upperBound)), found '\(text)'")
            return nil
        }
    }

    func bool(_ node: Node, _ path: String) -> Bool? {
        guard let value = node.bool else {
            error(node, path, "expected true or false, found \(describe(node))")
            return nil
        }
        return value
    }

    func strings(_ node: Node, _ path: String) -> [String]? {
        switch node {
        case .scalar(let scalar): return [scalar.string]
        case .sequence(let sequence):
            return sequence.enumerated().compactMap { index, item in string(item, "\(path)[\(index)]") }
        default:
            error(node, path, "expected a list of text values, found \(describe(node))")
            return nil
        }
    }

    func stringMap(_ node: Node, _ path: String) -> [(String, String)]? {
        guard case .mapping(let mapping) = node else {
            error(node, path, "expected a mapping of text to text, found \(describe(node))")
            return nil
        }
        return mapping.compactMap { key, value in
            guard let k = key.string, let v = string(value, join(path, k)) else { return nil }
            return (k, v)
        }
    }

    func sequence(_ node: Node, _ path: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error(node, path, "expected a list, found \(describe(node))")
            return nil
        }
        return Array(sequence)
    }

    func oneOf<T: RawRepresentable>(_ node: Node, _ path: String, _: T.Type) -> T? where T: CaseIterable, T.RawValue == String {
        guard let text = string(node, path) else { return nil }
        if let value = T(rawValue: text) { return value }
        let allowed = T.allCases.map(\.rawValue)
        let suggestion = closestMatch(to: text, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
        error(node, path, "'\(text)' is not one of \(allowed.joined(separator: ", "))\(suggestion)")
        return nil
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return s.string.isEmpty ? "an empty value" : "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    struct Mapping {
        let reader: YAMLReader
        let node: Node
        let path: String
        let values: [String: (key: Node, value: Node)]

        subscript(_ key: String) -> Node? { values[key]?.value }
        func path(_ key: String) -> String { join(path, key) }
        func has(_ key: String) -> Bool { values[key] != nil }

        func string(_ key: String) -> String? { self[key].flatMap { reader.string($0, path(key)) } }
        func int(_ key: String, min: Int? = nil, range: ClosedRange<Int>? = nil) -> Int? { self[key].flatMap { reader.int($0, path(key), min: min, range: range) } }
        func duration(_ key: String, range: ClosedRange<Int>) -> Int? { self[key].flatMap { reader.duration($0, path(key), range: range) } }
        func double(_ key: String) -> Double? { self[key].flatMap { reader.double($0, path(key)) } }
        func bool(_ key: String) -> Bool? { self[key].flatMap { reader.bool($0, path(key)) } }
        func strings(_ key: String) -> [String]? { self[key].flatMap { reader.strings($0, path(key)) } }
        func stringMap(_ key: String) -> [(String, String)]? { self[key].flatMap { reader.stringMap($0, path(key)) } }
        func oneOf<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T? where T.RawValue == String {
            self[key].flatMap { reader.oneOf($0, path(key), type) }
        }
        /// The spelling of a key this mapping uses: `preferred`, or one of its `deprecated` spellings (then with a
        /// warning at that key naming the preferred one). Two spellings of the same key at once are an error.
        func spelling(_ preferred: String, deprecated: [String]) -> String {
            let used = ([preferred] + deprecated).filter { values[$0] != nil }
            for (index, name) in used.enumerated() where name != preferred {
                if index > 0 {
                    reader.error(values[name]?.key, "", "'\(name)' and '\(used[0])' are the same key in \(path.isEmpty ? "the pipeline" : "'\(path)'"); keep only '\(preferred)'")
                } else {
                    reader.warning(values[name]?.key, path(name), "key '\(name)' is deprecated; write '\(preferred)' instead")
                }
            }
            return used.first ?? preferred
        }
        /// Reports a problem at the value of `key` (or at the mapping when the key is absent).
        func error(_ key: String, _ message: String) { reader.error(self[key] ?? node, path(key), message) }
    }
}

func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

extension Diagnostic {
    /// A YAML syntax error of Yams at its place (`lineOffset`: blank lines put in front of the text when parsing).
    static func yamlSyntax(_ error: YamlError, file: String, lineOffset: Int = 0) -> Diagnostic {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return Diagnostic(file: file, line: mark.line - lineOffset, column: mark.column, "YAML syntax: \(problem)")
        default:
            return Diagnostic(file: file, "YAML syntax: \(error)")
        }
    }
}
