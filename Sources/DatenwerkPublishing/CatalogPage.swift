import DatenwerkCore
import DatenwerkTransforms

/// The HTML catalog page for people (`/`): one section per dataset with its description, licence,
/// update frequency, time range, station count, download links and a station map (inline SVG).
///
/// Languages: the page is German (`<html lang="de">`); English titles and descriptions, where the
/// dataset has them, follow the German ones marked `lang="en"`. `?lang=en` (`language: .en`) renders
/// the same page with English interface text and English titles first, German ones as fallback
/// marked `lang="de"`. Semantic HTML5 (header, nav, main, article, dl, figure), a skip link, labelled
/// links, visible focus; inline CSS only, no script, nothing loaded from elsewhere.
package enum CatalogPage {
    package enum Language: String, Sendable, CaseIterable {
        case de, en
    }

    /// Where the page links to, relative to the base URL; the server serves these paths.
    package enum Links {
        package static func download(_ base: String, _ id: String, _ format: ObservationFormat) -> String { "\(base)/datasets/\(id)/observations.\(format.fileExtension)" }
        package static func dataPackage(_ base: String, _ id: String) -> String { "\(base)/datasets/\(id)/datapackage.json" }
        /// The dataset's own DCAT-AP.de record (a catalog with only this dataset).
        package static func dcat(_ base: String, _ id: String, _ format: RDFFormat = .turtle) -> String { "\(base)/datasets/\(id)/dcat.\(format.fileExtension)" }
        package static func catalog(_ base: String, _ format: RDFFormat) -> String { "\(base)/catalog.\(format.fileExtension)" }
    }

    package static func render(
        catalog: CatalogMetadata, baseURL: String, datasets: [(DatasetMetadata, DatasetFacts, [StationPoint])],
        language: Language = .de, charts: [String: DatasetChart] = [:], path: String = ""
    ) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        // `path`: a part of the catalog (`/tenants/05515000`): its own DCAT links and language switch, a link to the whole.
        let scoped = base + path
        let t = Texts(language)
        let other: Language = language == .de ? .en : .de
        let (title, titleLang) = t.pick(catalog.title, catalog.titleEN)
        let (description, descriptionLang) = t.pick(catalog.description, catalog.descriptionEN)

        var h = HTML.documentStart(language: language, title: title, description: description, dcat: { Links.catalog(scoped, $0) },
                                   otherLanguage: other, otherLanguageURL: pageURL(scoped, other), css: css + LineChart.css, skip: t.skip)
        h += "<header>\n<h1\(HTML.lang(titleLang, page: language))>\(HTML.escape(title))</h1>\n"
        h += "<p class=\"lead\"\(HTML.lang(descriptionLang, page: language))>\(HTML.escape(description))</p>\n"
        h += "<nav aria-label=\"\(t.navLabel)\"><ul>\n"
        h += "<li><a href=\"\(HTML.escape(pageURL(scoped, other)))\" hreflang=\"\(other.rawValue)\" lang=\"\(other.rawValue)\">\(t.otherLanguage)</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(Links.catalog(scoped, .turtle)))\" type=\"text/turtle\">\(t.catalogLink) (Turtle)</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(Links.catalog(scoped, .rdfXML)))\" type=\"application/rdf+xml\">RDF/XML</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(Links.catalog(scoped, .jsonLD)))\" type=\"application/ld+json\">JSON-LD</a></li>\n"
        if !path.isEmpty { h += "<li><a href=\"\(HTML.escape(pageURL(base, language)))\">\(t.wholeCatalog)</a></li>\n" }
        h += "</ul></nav>\n</header>\n"

        h += "<main id=\"main\">\n<p class=\"count\">\(t.datasetCount(datasets.count))</p>\n"
        if datasets.isEmpty { h += "<p>\(t.noDatasets)</p>\n" }
        for (metadata, facts, stations) in datasets {
            h += article(metadata, facts, stations, catalog: catalog, base: base, t: t, trend: charts[metadata.id])
        }
        h += "</main>\n<footer>\n<p>\(t.footer(publisher: HTML.escape(catalog.publisher.name)))</p>\n</footer>\n</body>\n</html>\n"
        return h
    }

    /// `charts` (the dataset page): that section beside the map instead of the catalog page's sparkline (`trend`).
    static func article(_ d: DatasetMetadata, _ facts: DatasetFacts, _ stations: [StationPoint], catalog: CatalogMetadata, base: String, t: Texts,
                        trend: DatasetChart? = nil, charts: String? = nil) -> String {
        let anchor = HTML.escape(d.id)
        let (title, titleLang) = t.pick(d.title, d.titleEN)
        let (description, descriptionLang) = t.pick(d.description, d.descriptionEN)
        let secondTitle = t.language == .de ? d.titleEN : (d.titleEN == nil ? nil : d.title)
        let secondLang: Language = t.language == .de ? .en : .de
        let publisher = d.publisher ?? catalog.publisher

        var h = "<article id=\"\(anchor)\" aria-labelledby=\"\(anchor)-title\">\n"
        h += "<h2 id=\"\(anchor)-title\"\(HTML.lang(titleLang, page: t.language))>\(HTML.escape(title))</h2>\n"
        if let secondTitle { h += "<p class=\"alt\" lang=\"\(secondLang.rawValue)\">\(HTML.escape(secondTitle))</p>\n" }
        h += "<p\(HTML.lang(descriptionLang, page: t.language))>\(HTML.escape(description))</p>\n"
        h += "<div class=\"cols\">\n<dl>\n"

        h += "<dt>\(t.licence)</dt><dd>"
        if let homepage = d.licence.homepage {
            h += "<a rel=\"license\" href=\"\(HTML.escape(homepage))\" lang=\"de\">\(HTML.escape(d.licence.labelDE))</a>"
        } else {
            h += "<span lang=\"de\">\(HTML.escape(d.licence.labelDE))</span>"
        }
        h += "</dd>\n"
        h += "<dt>\(t.publisher)</dt><dd>"
        if let url = publisher.url {
            h += "<a href=\"\(HTML.escape(url))\">\(HTML.escape(publisher.name))</a>"
        } else {
            h += HTML.escape(publisher.name)
        }
        h += "</dd>\n"
        if let frequency = d.updateFrequency {
            h += "<dt>\(t.frequency)</dt><dd>\(HTML.escape(t.language == .de ? frequency.labelDE : frequency.labelEN))</dd>\n"
        }
        h += "<dt>\(t.timeRange)</dt><dd>"
        if let first = facts.firstMicros, let last = facts.lastMicros {
            h += "<time datetime=\"\(ByteWriting.timestamp(micros: first))\">\(t.dateTime(first))</time> \(t.until) "
            h += "<time datetime=\"\(ByteWriting.timestamp(micros: last))\">\(t.dateTime(last))</time> UTC"
        } else {
            h += t.noData
        }
        h += "</dd>\n"
        h += "<dt>\(t.stations)</dt><dd>\(t.integer(facts.stationCount))</dd>\n"
        h += "<dt>\(t.observations)</dt><dd>\(t.integer(facts.observationCount))</dd>\n"
        if !facts.properties.isEmpty {
            let items = facts.properties.map { p in
                "\(HTML.escape(t.language == .de ? p.labelDE : p.labelEN)) (<code>\(HTML.escape(p.unit))</code>)"
            }
            h += "<dt>\(t.properties)</dt><dd>\(items.joined(separator: ", "))</dd>\n"
        }
        if let theme = d.theme {
            h += "<dt>\(t.theme)</dt><dd>\(HTML.escape(t.language == .de ? theme.labelDE : theme.labelEN))</dd>\n"
        }
        let keywords = t.language == .de || d.keywordsEN.isEmpty ? d.keywords : d.keywordsEN
        if !keywords.isEmpty {
            let lang = t.language == .en && d.keywordsEN.isEmpty ? " lang=\"de\"" : ""
            h += "<dt>\(t.keywords)</dt><dd\(lang)>\(keywords.map(HTML.escape).joined(separator: ", "))</dd>\n"
        }
        if let modified = facts.lastModifiedMicros {
            h += "<dt>\(t.modified)</dt><dd><time datetime=\"\(ByteWriting.timestamp(micros: modified))\">\(t.dateTime(modified))</time> UTC</dd>\n"
        }
        if charts == nil { h += trendItem(d, chart: trend, base: base, t: t, title: title) }
        h += "</dl>\n"
        if let charts { h += charts }

        if let svg = StationMap.svg(stations: stations, id: "map-\(d.id)", title: title, language: t.language) {
            h += "<figure>\n\(svg)\n<figcaption>\(t.mapCaption(stations.count))</figcaption>\n</figure>\n"
        }
        h += "</div>\n"

        if !stations.isEmpty {
            h += "<details><summary>\(t.stationListSummary(stations.count))</summary><ul class=\"stations\">"
            for station in stations.prefix(100) {
                h += "<li>\(HTML.escape(station.name ?? station.key)) <code>\(HTML.escape(station.key))</code></li>"
            }
            if stations.count > 100 { h += "<li>\(t.more(stations.count - 100))</li>" }
            h += "</ul></details>\n"
        }

        h += "<h3 id=\"\(anchor)-downloads\">\(t.downloads)</h3>\n"
        h += "<ul class=\"downloads\" aria-labelledby=\"\(anchor)-downloads\">\n"
        let hidden = "<span class=\"vh\"> – \(HTML.escape(title))</span>"
        for format in ObservationFormat.allCases {
            h += "<li><a href=\"\(HTML.escape(Links.download(base, d.id, format)))\" type=\"\(format.mediaType)\">\(t.download(format.label))\(hidden)</a></li>\n"
        }
        h += "<li><a href=\"\(HTML.escape(Links.dataPackage(base, d.id)))\" type=\"application/json\">\(t.dataPackage)\(hidden)</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(Links.dcat(base, d.id)))\" type=\"text/turtle\">\(t.dcatRecord)\(hidden)</a></li>\n"
        h += "</ul>\n</article>\n"
        return h
    }

    static func pageURL(_ base: String, _ language: Language) -> String {
        language == .de ? base + "/" : base + "/?lang=en"
    }

    static let css = """
        :root{color-scheme:light dark;--fg:#1b1f23;--bg:#fff;--muted:#57606a;--line:#d0d7de;--accent:#0550ae;--card:#f6f8fa}\
        @media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9da7b3;--line:#30363d;--accent:#6cb6ff;--card:#161b22}}\
        *{box-sizing:border-box}body{margin:0 auto;max-width:62rem;padding:1rem;font:1rem/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}\
        a{color:var(--accent)}a:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
        .skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--bg);padding:.5rem}\
        header nav ul,.downloads{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0}\
        .lead,.alt,.count,footer{color:var(--muted)}.alt{margin-top:-.75rem}\
        article{border:1px solid var(--line);border-radius:.5rem;padding:0 1rem 1rem;margin:1.5rem 0;background:var(--card)}\
        .cols{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}dl{flex:1 1 20rem;display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}\
        dt{font-weight:600}dd{margin:0}figure{margin:0;flex:0 1 320px}figcaption{font-size:.875rem;color:var(--muted)}\
        .map{width:100%;height:auto;border:1px solid var(--line);border-radius:.25rem}.map-bg{fill:var(--bg)}\
        .graticule line{stroke:var(--line);stroke-width:.5}.graticule text{font-size:8px;fill:var(--muted)}\
        .stations circle{fill:#cf222e;fill-opacity:.8;stroke:var(--bg);stroke-width:1}\
        .downloads a{display:inline-block;padding:.35rem .75rem;border:1px solid var(--accent);border-radius:.25rem;text-decoration:none}\
        .downloads a:hover{background:var(--accent);color:var(--bg)}ul.stations{columns:2 14rem;font-size:.875rem}\
        .vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        """
}

/// HTML escaping and small helpers.
enum HTML {
    /// The start of a page up to the skip link: doctype, `<head>` with title, description, the DCAT-AP.de
    /// alternates (`dcat(format)`), the page in the other language, and the style sheet.
    static func documentStart(language: CatalogPage.Language, title: String, description: String,
                              dcat: (RDFFormat) -> String, otherLanguage: CatalogPage.Language, otherLanguageURL: String,
                              css: String, skip: String) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"\(language.rawValue)\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>\(escape(title))</title>\n"
        h += "<meta name=\"description\" content=\"\(escape(description))\">\n"
        for format in RDFFormat.allCases {
            h += "<link rel=\"alternate\" type=\"\(format.mediaType)\" href=\"\(escape(dcat(format)))\" title=\"DCAT-AP.de\">\n"
        }
        h += "<link rel=\"alternate\" hreflang=\"\(otherLanguage.rawValue)\" href=\"\(escape(otherLanguageURL))\">\n"
        h += "<style>\(css)</style>\n</head>\n<body>\n"
        h += "<a class=\"skip\" href=\"#main\">\(skip)</a>\n"
        return h
    }

    /// Text for element content and attribute values: `&`, `<`, `>`, `"`, `'` as entities.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// ` lang="xx"` when a text's language differs from the page's.
    static func lang(_ text: CatalogPage.Language, page: CatalogPage.Language) -> String {
        text == page ? "" : " lang=\"\(text.rawValue)\""
    }
}

extension CatalogPage {
    /// Interface text in German and English.
    struct Texts {
        let language: Language
        init(_ language: Language) { self.language = language }
        private var de: Bool { language == .de }

        /// The text in the page language when there is one, else the German text (and its language).
        func pick(_ german: String, _ english: String?) -> (String, Language) {
            if language == .en, let english { return (english, .en) }
            return (german, .de)
        }

        var skip: String { de ? "Zum Inhalt springen" : "Skip to content" }
        var navLabel: String { de ? "Sprache und Metadaten" : "Language and metadata" }
        var otherLanguage: String { de ? "English" : "Deutsch" }
        var catalogLink: String { de ? "Katalog als DCAT-AP.de" : "Catalogue as DCAT-AP.de" }
        var wholeCatalog: String { de ? "Gesamtkatalog" : "Whole catalogue" }
        var noDatasets: String { de ? "Noch keine veröffentlichten Datensätze." : "No published datasets yet." }
        var licence: String { de ? "Lizenz" : "Licence" }
        var publisher: String { de ? "Herausgeber" : "Publisher" }
        var frequency: String { de ? "Aktualisierung" : "Update frequency" }
        var timeRange: String { de ? "Zeitraum" : "Time range" }
        var until: String { de ? "bis" : "to" }
        var noData: String { de ? "noch keine Daten" : "no data yet" }
        var stations: String { de ? "Stationen" : "Stations" }
        var observations: String { de ? "Beobachtungen" : "Observations" }
        var properties: String { de ? "Messgrößen" : "Observed properties" }
        var theme: String { de ? "Thema" : "Theme" }
        var keywords: String { de ? "Schlagwörter" : "Keywords" }
        var modified: String { de ? "Zuletzt geändert" : "Last modified" }
        var downloads: String { de ? "Downloads" : "Downloads" }
        var dataPackage: String { de ? "Datenbeschreibung (datapackage.json)" : "Data description (datapackage.json)" }
        var dcatRecord: String { de ? "Metadaten (DCAT-AP.de)" : "Metadata (DCAT-AP.de)" }

        func download(_ format: String) -> String { de ? "\(format) herunterladen" : "Download \(format)" }

        func datasetCount(_ n: Int) -> String {
            de ? (n == 1 ? "1 Datensatz" : "\(integer(n)) Datensätze") : (n == 1 ? "1 dataset" : "\(integer(n)) datasets")
        }

        func footer(publisher: String) -> String {
            de ? "Herausgegeben von \(publisher). Alle Zeitangaben in UTC. Maschinenlesbare Metadaten im Katalog nach DCAT-AP.de."
                : "Published by \(publisher). All times in UTC. Machine-readable metadata in the DCAT-AP.de catalogue."
        }

        func mapTitle(_ dataset: String) -> String { de ? "Karte der Stationen: \(dataset)" : "Map of the stations: \(dataset)" }

        func mapCaption(_ n: Int) -> String {
            de ? "Lage der Stationen (Web-Mercator, ohne Hintergrundkarte)" : "Station locations (Web Mercator, no background map)"
        }

        func mapDescription(count: Int, box: BoundingBox) -> String {
            let lon = "\(coordinate(box.minLongitude))° \(de ? "bis" : "to") \(coordinate(box.maxLongitude))°"
            let lat = "\(coordinate(box.minLatitude))° \(de ? "bis" : "to") \(coordinate(box.maxLatitude))°"
            return de ? "\(count == 1 ? "1 Station" : "\(count) Stationen") zwischen \(lon) Länge und \(lat) Breite (WGS 84)."
                : "\(count == 1 ? "1 station" : "\(count) stations") between longitude \(lon) and latitude \(lat) (WGS 84)."
        }

        func stationList(_ stations: [StationPoint]) -> String {
            let names = stations.prefix(5).map { s in s.name.map { "\($0) (\(s.key))" } ?? s.key }
            var text = names.joined(separator: "; ")
            if stations.count > 5 { text += "; " + more(stations.count - 5) }
            return text
        }

        func stationListSummary(_ n: Int) -> String { de ? "Liste der Stationen (\(integer(n)))" : "List of stations (\(integer(n)))" }
        func more(_ n: Int) -> String { de ? "und \(integer(n)) weitere" : "and \(integer(n)) more" }

        /// `1.234.567` (de) or `1,234,567` (en).
        func integer(_ n: Int) -> String {
            let digits = String(n.magnitude)
            var out = n < 0 ? "-" : ""
            for (i, c) in digits.enumerated() {
                if i > 0 && (digits.count - i) % 3 == 0 { out += de ? "." : "," }
                out.append(c)
            }
            return out
        }

        /// `7,6543` (de) or `7.6543` (en), four decimals.
        func coordinate(_ value: Double) -> String {
            let scaled = Int64((value * 10_000).rounded())
            let sign = scaled < 0 ? "-" : ""
            let whole = scaled.magnitude / 10_000, fraction = scaled.magnitude % 10_000
            let f = String(fraction)
            return "\(sign)\(whole)\(de ? "," : ".")\(String(repeating: "0", count: 4 - f.count))\(f)"
        }

        /// `01.06.2024, 08:00` (de) or `2024-06-01 08:00` (en), UTC.
        func dateTime(_ micros: Int64) -> String {
            let (seconds, _) = ByteWriting.floorDivide(micros, 1_000_000)
            let (days, secondOfDay) = ByteWriting.floorDivide(seconds, 86_400)
            let (y, m, d) = CivilTime.date(days: days)
            func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
            let time = "\(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60))"
            return de ? "\(two(Int64(d))).\(two(Int64(m))).\(y), \(time)" : "\(y)-\(two(Int64(m)))-\(two(Int64(d))) \(time)"
        }
    }
}
