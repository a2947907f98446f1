/// RDF/XML in the flat form: one `rdf:Description` per subject, objects as `rdf:resource` /
/// `rdf:nodeID` references or literal elements.
enum RDFXMLWriter {
    static func write(_ graph: RDFGraph) -> String {
        // Predicates outside the known namespaces get generated prefixes (ns1, ns2, …).
        var extra: [(prefix: String, namespace: String)] = []
        var qnames: [String: String] = [:]
        for node in graph.nodes {
            for property in node.properties where qnames[property.predicate] == nil {
                if let (prefix, local) = NS.compact(property.predicate) {
                    qnames[property.predicate] = "\(prefix):\(local)"
                } else {
                    let split = property.predicate.lastIndex(where: { $0 == "#" || $0 == "/" }).map { property.predicate.index(after: $0) }
                        ?? property.predicate.endIndex
                    let namespace = String(property.predicate[..<split])
                    let local = String(property.predicate[split...])
                    let prefix = extra.first(where: { $0.namespace == namespace })?.prefix ?? "ns\(extra.count + 1)"
                    if !extra.contains(where: { $0.prefix == prefix }) { extra.append((prefix, namespace)) }
                    qnames[property.predicate] = "\(prefix):\(local)"
                }
            }
        }

        var out = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF"
        for (prefix, namespace) in NS.prefixes + extra {
            out += "\n    xmlns:\(prefix)=\"\(escape(namespace, attribute: true))\""
        }
        out += ">\n"
        for node in graph.nodes {
            switch node.subject {
            case .iri(let iri): out += "  <rdf:Description rdf:about=\"\(escape(iri, attribute: true))\">\n"
            case .blank(let label): out += "  <rdf:Description rdf:nodeID=\"\(escape(label, attribute: true))\">\n"
            case .literal: continue   // not a valid subject; never produced
            }
            for property in node.properties {
                let element = qnames[property.predicate]!
                for object in property.objects {
                    switch object {
                    case .iri(let iri):
                        out += "    <\(element) rdf:resource=\"\(escape(iri, attribute: true))\"/>\n"
                    case .blank(let label):
                        out += "    <\(element) rdf:nodeID=\"\(escape(label, attribute: true))\"/>\n"
                    case .literal(let value, let language, let datatype):
                        out += "    <\(element)"
                        if let language {
                            out += " xml:lang=\"\(escape(language, attribute: true))\""
                        } else if let datatype {
                            out += " rdf:datatype=\"\(escape(datatype, attribute: true))\""
                        }
                        out += ">\(escape(value, attribute: false))</\(element)>\n"
                    }
                }
            }
            out += "  </rdf:Description>\n"
        }
        out += "</rdf:RDF>\n"
        return out
    }

    /// XML character data or attribute value: `&`, `<`, `>` (and `"` in attributes) as entities, CR as
    /// `&#13;` so parsers do not turn it into LF; in attributes also tab and LF, which attribute
    /// normalisation would turn into spaces.
    static func escape(_ text: String, attribute: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where attribute: out += "&quot;"
            case "\r": out += "&#13;"
            case "\n" where attribute: out += "&#10;"
            case "\t" where attribute: out += "&#9;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
