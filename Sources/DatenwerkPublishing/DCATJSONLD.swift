import DatenwerkCore

/// JSON-LD with an inline `@context` of prefixes (never a remote context: harvesters may be offline)
/// and a flat `@graph` with one node object per subject.
enum JSONLDWriter {
    static func write(_ graph: RDFGraph) -> String {
        let context = JSONValue.object(NS.prefixes.filter { $0.prefix != "rdf" }.map { JSONValue.Member($0.prefix, .string($0.namespace)) })
        var nodes: [JSONValue] = []
        for node in graph.nodes {
            var members: [JSONValue.Member] = [.init("@id", id(node.subject))]
            for property in node.properties {
                if property.predicate == NS.type {
                    members.append(.init("@type", .array(property.objects.compactMap { object in
                        if case .iri(let iri) = object { return .string(compactName(iri)) }
                        return nil
                    })))
                    continue
                }
                members.append(.init(compactName(property.predicate), .array(property.objects.map(value))))
            }
            nodes.append(.object(members))
        }
        var out = ""
        JSONValue.object([.init("@context", context), .init("@graph", .array(nodes))]).writePretty(to: &out, indent: 0)
        return out + "\n"
    }

    static func id(_ term: RDFTerm) -> JSONValue {
        switch term {
        case .iri(let iri): return .string(iri)
        case .blank(let label): return .string("_:" + label)
        case .literal(let value, _, _): return .string(value)
        }
    }

    static func value(_ term: RDFTerm) -> JSONValue {
        switch term {
        case .iri, .blank: return .object([.init("@id", id(term))])
        case .literal(let value, let language, let datatype):
            var members: [JSONValue.Member] = [.init("@value", .string(value))]
            if let language { members.append(.init("@language", .string(language))) } else if let datatype { members.append(.init("@type", .string(compactName(datatype)))) }
            return .object(members)
        }
    }

    /// `prefix:local` for known namespaces, else the full IRI.
    static func compactName(_ iri: String) -> String {
        if let (prefix, local) = NS.compact(iri) { return "\(prefix):\(local)" }
        return iri
    }
}

extension JSONValue {
    /// Indented JSON (two spaces), for documents people read (catalog, datapackage.json).
    package var prettySerialized: String {
        var out = ""
        writePretty(to: &out, indent: 0)
        return out
    }

    func writePretty(to out: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent + 1)
        let closing = String(repeating: "  ", count: indent)
        switch self {
        case .array(let items) where !items.isEmpty:
            if items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) {
                write(to: &out)   // short scalar lists stay on one line
                return
            }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.writePretty(to: &out, indent: indent + 1)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += closing + "]"
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            for (i, member) in members.enumerated() {
                out += pad
                JSONValue.writeQuoted(member.key, to: &out)
                out += ": "
                member.value.writePretty(to: &out, indent: indent + 1)
                out += i == members.count - 1 ? "\n" : ",\n"
            }
            out += closing + "}"
        default:
            write(to: &out)
        }
    }
}
