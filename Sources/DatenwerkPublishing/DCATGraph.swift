/// A tiny RDF model: the DCAT writer builds one graph and serialises the same triples as Turtle,
/// RDF/XML and JSON-LD, so the three formats cannot drift apart.
package enum RDFTerm: Sendable, Hashable {
    case iri(String)
    /// A blank node with a label unique within one document.
    case blank(String)
    case literal(String, language: String? = nil, datatype: String? = nil)

    static func text(_ value: String, _ language: String? = nil) -> RDFTerm { .literal(value, language: language) }
    static func typed(_ value: String, _ datatype: String) -> RDFTerm { .literal(value, datatype: datatype) }
}

package struct RDFTriple: Sendable, Hashable {
    package var subject: RDFTerm
    /// A full predicate IRI.
    package var predicate: String
    package var object: RDFTerm
}

/// Triples grouped by subject, both in first-use order (serialisers print one block per subject).
package struct RDFGraph: Sendable {
    package struct Node: Sendable {
        package var subject: RDFTerm
        /// Predicate → objects, in first-use order.
        package var properties: [(predicate: String, objects: [RDFTerm])]
    }

    package private(set) var nodes: [Node] = []
    private var index: [RDFTerm: Int] = [:]
    private var seen: Set<RDFTriple> = []

    package init() {}

    package var count: Int { seen.count }

    package var triples: [RDFTriple] {
        nodes.flatMap { node in node.properties.flatMap { p in p.objects.map { RDFTriple(subject: node.subject, predicate: p.predicate, object: $0) } } }
    }

    /// Adds a triple once (duplicates are ignored, as in RDF).
    package mutating func add(_ subject: RDFTerm, _ predicate: String, _ object: RDFTerm) {
        let triple = RDFTriple(subject: subject, predicate: predicate, object: object)
        guard seen.insert(triple).inserted else { return }
        let i: Int
        if let existing = index[subject] {
            i = existing
        } else {
            i = nodes.count
            index[subject] = i
            nodes.append(Node(subject: subject, properties: []))
        }
        if let p = nodes[i].properties.firstIndex(where: { $0.predicate == predicate }) {
            nodes[i].properties[p].objects.append(object)
        } else {
            nodes[i].properties.append((predicate, [object]))
        }
    }

    mutating func add(_ subject: RDFTerm, _ predicate: String, _ object: RDFTerm?) {
        if let object { add(subject, predicate, object) }
    }
}

/// Namespaces used by the catalog, with the prefixes every serialisation declares.
enum NS {
    static let rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    static let xsd = "http://www.w3.org/2001/XMLSchema#"
    static let dcat = "http://www.w3.org/ns/dcat#"
    static let dct = "http://purl.org/dc/terms/"
    static let dcatde = "http://dcat-ap.de/def/dcatde/"
    static let foaf = "http://xmlns.com/foaf/0.1/"
    static let vcard = "http://www.w3.org/2006/vcard/ns#"
    static let locn = "http://www.w3.org/ns/locn#"
    static let gsp = "http://www.opengis.net/ont/geosparql#"
    static let hydra = "http://www.w3.org/ns/hydra/core#"
    static let skos = "http://www.w3.org/2004/02/skos/core#"

    static let prefixes: [(prefix: String, namespace: String)] = [
        ("rdf", rdf), ("xsd", xsd), ("dcat", dcat), ("dct", dct), ("dcatde", dcatde), ("foaf", foaf),
        ("vcard", vcard), ("locn", locn), ("gsp", gsp), ("hydra", hydra), ("skos", skos),
    ]

    static let type = rdf + "type"

    /// `prefix:local` when the IRI is in a known namespace and the local part is a plain name.
    static func compact(_ iri: String) -> (prefix: String, local: String)? {
        for (prefix, namespace) in prefixes where iri.hasPrefix(namespace) {
            let local = iri.dropFirst(namespace.count)
            guard let first = local.unicodeScalars.first, isNameStart(first),
                  local.unicodeScalars.allSatisfy({ isNameStart($0) || ("0"..."9").contains($0) || $0 == "-" })
            else { return nil }
            return (prefix, String(local))
        }
        return nil
    }

    private static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
    }
}
