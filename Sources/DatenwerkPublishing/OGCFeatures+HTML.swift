import DatenwerkCore

extension OGCFeatures {
    /// A resource as an HTML 5 page (`/req/html/content`): everything of its JSON in the body — links as `<a>`
    /// elements, a feature collection's features as a table (one row per feature, one column per property),
    /// anything else as nested definition lists. No script.
    package static func htmlPage(title: String, _ document: JSONValue) -> String {
        var body = ""
        render(document, into: &body)
        return """
            <!DOCTYPE html>
            <html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTML.escape(title))</title>
            <style>body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b}
            dl{margin:.2rem 0 .2rem 1rem}dt{font-weight:600}dd{margin:0 0 .3rem 1rem}table{border-collapse:collapse;font-size:13px}
            th,td{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top}a{color:#0b57d0}</style>
            </head><body><h1>\(HTML.escape(title))</h1>
            \(body)
            </body></html>

            """
    }

    private static func render(_ value: JSONValue, into out: inout String) {
        switch value {
        case .object(let members):
            if members.contains(where: { $0.key == "type" && $0.value == .string("FeatureCollection") }) {
                renderFeatures(members, into: &out)
                return
            }
            out += "<dl>"
            for member in members {
                out += "<dt>\(HTML.escape(member.key))</dt><dd>"
                if member.key == "links", case .array(let links) = member.value {
                    renderLinks(links, into: &out)
                } else {
                    render(member.value, into: &out)
                }
                out += "</dd>"
            }
            out += "</dl>"
        case .array(let items):
            out += "<ol>"
            for item in items {
                out += "<li>"
                render(item, into: &out)
                out += "</li>"
            }
            out += "</ol>"
        case .string(let text) where text.hasPrefix("http://") || text.hasPrefix("https://"):
            out += "<a href=\"\(HTML.escape(text))\">\(HTML.escape(text))</a>"
        default:
            out += HTML.escape(value.text)
        }
    }

    private static func renderLinks(_ links: [JSONValue], into out: inout String) {
        out += "<ul>"
        for link in links {
            let href = link["href"]?.stringValue ?? ""
            let rel = link["rel"]?.stringValue ?? ""
            let type = link["type"]?.stringValue ?? ""
            let title = link["title"]?.stringValue ?? href
            out += "<li><a href=\"\(HTML.escape(href))\" rel=\"\(HTML.escape(rel))\" type=\"\(HTML.escape(type))\">\(HTML.escape(title))</a> (\(HTML.escape(rel)), \(HTML.escape(type)))</li>"
        }
        out += "</ul>"
    }

    private static func renderFeatures(_ members: [JSONValue.Member], into out: inout String) {
        var features: [JSONValue] = []
        out += "<dl>"
        for member in members where member.key != "features" {
            out += "<dt>\(HTML.escape(member.key))</dt><dd>"
            if member.key == "links", case .array(let links) = member.value { renderLinks(links, into: &out) } else { render(member.value, into: &out) }
            out += "</dd>"
        }
        out += "</dl>"
        if let f = members.first(where: { $0.key == "features" }), case .array(let items) = f.value { features = items }
        var columns: [String] = []
        for feature in features {
            if case .object(let props)? = feature["properties"] {
                for p in props where !columns.contains(p.key) { columns.append(p.key) }
            }
        }
        out += "<table><thead><tr><th>id</th><th>geometry</th>" + columns.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for feature in features {
            out += "<tr><td>\(HTML.escape(feature["id"]?.text ?? ""))</td><td>\(HTML.escape(feature["geometry"]?.serialized ?? "null"))</td>"
            for column in columns { out += "<td>\(HTML.escape(feature["properties"]?[column]?.text ?? ""))</td>" }
            out += "</tr>"
        }
        out += "</tbody></table>"
    }
}
