import DatenwerkCore

/// `/tenants`: the municipalities and associations publishing in this installation, each with its page
/// (`/tenants/<ags>/`) and its own DCAT-AP.de catalog (`/tenants/<ags>/catalog`).
package enum TenantsPage {
    package static func render(catalog: CatalogMetadata, baseURL: String, tenants: [(Tenant, datasets: Int)],
                               language: CatalogPage.Language = .de) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        let de = language == .de
        let other: CatalogPage.Language = de ? .en : .de
        let t = CatalogPage.Texts(language)
        let (catalogTitle, _) = t.pick(catalog.title, catalog.titleEN)
        let title = de ? "Kommunen und Verbände – \(catalogTitle)" : "Municipalities and associations – \(catalogTitle)"
        let description = de ? "Wer in diesem Katalog veröffentlicht: je Kommune ein eigener Katalog nach DCAT-AP.de."
            : "Who publishes in this catalogue: one DCAT-AP.de catalogue per municipality."
        let otherURL = base + "/tenants" + (other == .en ? "?lang=en" : "")
        var h = HTML.documentStart(language: language, title: title, description: description, dcat: { CatalogPage.Links.catalog(base, $0) },
                                   otherLanguage: other, otherLanguageURL: otherURL, css: CatalogPage.css, skip: t.skip)
        h += "<header>\n<h1>\(HTML.escape(title))</h1>\n<p class=\"lead\">\(HTML.escape(description))</p>\n"
        h += "<nav aria-label=\"\(t.navLabel)\"><ul>\n"
        h += "<li><a href=\"\(HTML.escape(otherURL))\" hreflang=\"\(other.rawValue)\" lang=\"\(other.rawValue)\">\(t.otherLanguage)</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(CatalogPage.pageURL(base, language)))\">\(t.wholeCatalog)</a></li>\n"
        h += "</ul></nav>\n</header>\n<main id=\"main\">\n"
        if tenants.isEmpty { h += "<p>\(t.noDatasets)</p>\n" } else {
            h += "<table>\n<thead><tr><th scope=\"col\">\(de ? "Name" : "Name")</th><th scope=\"col\">\(de ? "Gemeindeschlüssel" : "Municipality key")</th>"
            h += "<th scope=\"col\">\(de ? "Datensätze" : "Datasets")</th><th scope=\"col\">DCAT-AP.de</th></tr></thead>\n<tbody>\n"
            for (tenant, count) in tenants {
                let page = "\(base)/tenants/\(tenant.ags)/" + (de ? "" : "?lang=en")
                h += "<tr><td><a href=\"\(HTML.escape(page))\">\(HTML.escape(tenant.name))</a></td><td><code>\(tenant.ags)</code></td>"
                h += "<td>\(t.integer(count))</td><td><a href=\"\(HTML.escape("\(base)/tenants/\(tenant.ags)/catalog.ttl"))\" type=\"text/turtle\">Turtle</a></td></tr>\n"
            }
            h += "</tbody>\n</table>\n"
        }
        h += "</main>\n<footer>\n<p>\(t.footer(publisher: HTML.escape(catalog.publisher.name)))</p>\n</footer>\n</body>\n</html>\n"
        return h
    }
}
