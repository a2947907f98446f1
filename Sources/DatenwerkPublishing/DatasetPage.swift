import DatenwerkCore

/// The HTML page of one dataset for people (`/datasets/{id}` asked for by a browser): the catalog page's
/// entry for it (facts, licence, downloads, station map) with a line chart per property beside the map (shown
/// above the facts, so the first chart is in view; in the document they follow the facts) —
/// the hourly mean across the dataset's stations over the 7 days up to its latest observation.
/// Same rules as the catalog page: semantic HTML, inline CSS, no script, nothing loaded from elsewhere.
package enum DatasetPage {
    package static func render(
        catalog: CatalogMetadata, baseURL: String, dataset: DatasetMetadata, facts: DatasetFacts, stations: [StationPoint],
        chart: DatasetChart?, language: CatalogPage.Language = .de
    ) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        let t = CatalogPage.Texts(language)
        let c = ChartTexts(language)
        let other: CatalogPage.Language = language == .de ? .en : .de
        let (title, titleLang) = t.pick(dataset.title, dataset.titleEN)
        let (catalogTitle, catalogTitleLang) = t.pick(catalog.title, catalog.titleEN)
        let (description, _) = t.pick(dataset.description, dataset.descriptionEN)
        let own = CatalogPage.Links.page(base, dataset.id)

        var h = HTML.documentStart(language: language, title: "\(title) – \(catalogTitle)", description: description,
                                   dcat: { CatalogPage.Links.dcat(base, dataset.id, $0) }, otherLanguage: other,
                                   otherLanguageURL: pageURL(own, other), css: CatalogPage.css + LineChart.css + css, skip: t.skip)
        h += "<header>\n<nav aria-label=\"\(t.navLabel)\"><ul>\n"
        h += "<li><a href=\"\(HTML.escape(CatalogPage.pageURL(base, language)))\"\(HTML.lang(catalogTitleLang, page: language))>← \(HTML.escape(catalogTitle))</a></li>\n"
        h += "<li><a href=\"\(HTML.escape(pageURL(own, other)))\" hreflang=\"\(other.rawValue)\" lang=\"\(other.rawValue)\">\(t.otherLanguage)</a></li>\n"
        h += "</ul></nav>\n</header>\n"
        h += "<main id=\"main\" class=\"dataset-page\">\n"
        h += CatalogPage.article(dataset, facts, stations, catalog: catalog, base: base, t: t,
                                 charts: charts(dataset, chart: chart, c: c, t: t, titleLang: titleLang, title: title))
        h += "</main>\n<footer>\n<p>\(t.footer(publisher: HTML.escape(catalog.publisher.name)))</p>\n</footer>\n</body>\n</html>\n"
        return h
    }

    /// The section with one figure per property (or a sentence when there is no data yet).
    static func charts(_ d: DatasetMetadata, chart: DatasetChart?, c: ChartTexts, t: CatalogPage.Texts,
                       titleLang: CatalogPage.Language, title: String) -> String {
        let anchor = HTML.escape(d.id)
        var h = "<section class=\"charts\" aria-labelledby=\"\(anchor)-charts\">\n"
        // The privacy gate (`min_count`, docs/privacy.md): stated where the values are shown.
        let privacy = d.privacyNote(german: t.language == .de).map { "<p class=\"note privacy\">\(HTML.escape($0))</p>\n" } ?? ""
        guard let chart, !chart.series.isEmpty else {
            h += "<h3 id=\"\(anchor)-charts\">\(c.chartsHeading)</h3>\n\(privacy)<p>\(t.noData)</p>\n</section>\n"
            return h
        }
        h += "<h3 id=\"\(anchor)-charts\">\(c.chartsHeading): \(HTML.escape(c.sevenDaysTo(chart)))</h3>\n"
        h += privacy
        h += "<p class=\"note\">\(HTML.escape(c.method))</p>\n"
        for (index, series) in chart.series.enumerated() {
            let id = "chart-\(d.id)-\(index + 1)"
            h += "<figure>\n\(LineChart.svg(series, window: chart, id: id, language: t.language))\n"
            h += "<figcaption>\(HTML.escape(c.caption(series)))</figcaption>\n</figure>\n"
        }
        h += "</section>\n"
        return h
    }

    static func pageURL(_ own: String, _ language: CatalogPage.Language) -> String {
        language == .de ? own : own + "?lang=en"
    }

    static let css = """
        .dataset-page article dl{flex-basis:100%}.charts{flex:2 1 34rem;min-width:0}.charts h3{margin:.5rem 0 0}\
        .dataset-page .cols>.charts,.dataset-page .cols>figure{order:-1}\
        .charts figure{margin:0 0 1rem}.note{color:var(--muted);font-size:.875rem}
        """
}

extension CatalogPage.Links {
    /// The dataset's page for people (and its DCAT record by `Accept`).
    package static func page(_ base: String, _ id: String) -> String { "\(base)/datasets/\(id)" }
}

extension CatalogPage {
    /// The catalog page's "trend" entry of a dataset: its sparkline (the property with the most hours in the
    /// window) and a link to the dataset's page with all charts.
    static func trendItem(_ d: DatasetMetadata, chart: DatasetChart?, base: String, t: Texts, title: String) -> String {
        let c = ChartTexts(t.language)
        var h = "<dt>\(c.trendTerm)</dt><dd class=\"trend\">"
        if let chart, let series = chart.series.enumerated().max(by: { a, b in
            a.element.points.count != b.element.points.count ? a.element.points.count < b.element.points.count : a.offset > b.offset
        })?.element, !series.points.isEmpty {
            h += LineChart.sparkline(series, window: chart, id: "spark-\(d.id)", language: t.language) + " "
        }
        h += "<a href=\"\(HTML.escape(Links.page(base, d.id)))\">\(c.chartsLink)<span class=\"vh\"> – \(HTML.escape(title))</span></a></dd>\n"
        return h
    }
}

extension ChartTexts {
    var chartsHeading: String { language == .de ? "Verlauf" : "Last 7 days" }
    var trendTerm: String { language == .de ? "Verlauf" : "Trend" }
    var chartsLink: String { language == .de ? "Diagramme der letzten 7 Tage" : "Charts of the last 7 days" }
    var method: String {
        language == .de
            ? "Jede Linie ist das stündliche Mittel über alle Stationen des Datensatzes (der Mittelwert der Stundenmittel der Stationen), über die 7 Tage bis zur jüngsten Beobachtung. Stunden ohne Daten unterbrechen die Linie. Zeitachse in Ortszeit Berlin."
            : "Each line is the hourly mean across all stations of the dataset (the mean of the stations' hourly means), over the 7 days up to the latest observation. Hours without data break the line. Time axis in Berlin local time."
    }

    func caption(_ series: ChartSeries) -> String {
        let unit = LineChart.unitSymbol(series.unit)
        let stations = language == .de ? (series.stationCount == 1 ? "1 Station" : "\(series.stationCount) Stationen")
            : (series.stationCount == 1 ? "1 station" : "\(series.stationCount) stations")
        return "\(label(series))\(unit.isEmpty ? "" : " (\(unit))"), \(language == .de ? "Stundenmittel" : "hourly mean"), \(stations)"
    }
}
