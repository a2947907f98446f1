import DatenwerkCore

/// Turtle: one block per subject, `;` between predicates, `,` between objects.
enum TurtleWriter {
    static func write(_ graph: RDFGraph) -> String {
        var out = ""
        for (prefix, namespace) in NS.prefixes {
            out += "@prefix \(prefix): <\(namespace)> .\n"
        }
        for node in graph.nodes {
            out += "\n"
            out += term(node.subject)
            for (i, property) in node.properties.enumerated() {
                out += i == 0 ? "\n    " : " ;\n    "
                out += property.predicate == NS.type ? "a" : name(property.predicate)
                out += " "
                out += property.objects.map(term).joined(separator: " ,\n        ")
            }
            out += " .\n"
        }
        return out
    }

    static func term(_ term: RDFTerm) -> String {
        switch term {
        case .iri(let iri): return name(iri)
        case .blank(let label): return "_:" + label
        case .literal(let value, let language, let datatype):
            var out = quoted(value)
            if let language { out += "@" + language } else if let datatype { out += "^^" + name(datatype) }
            return out
        }
    }

    /// `prefix:local` where that is a valid prefixed name, else `<iri>`.
    static func name(_ iri: String) -> String {
        if let (prefix, local) = NS.compact(iri) { return "\(prefix):\(local)" }
        return "<\(iri)>"
    }

    /// A `"…"` string with `\"`, `\\`, `\n`, `\r`, `\t` and `\uXXXX` for other control characters.
    static func quoted(_ text: String) -> String {
        var out = ""
        appendQuoted(text, to: &out, uppercaseHex: true, escapingDelete: true)
        return out
    }
}
