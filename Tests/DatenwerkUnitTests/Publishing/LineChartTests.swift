import DatenwerkCore
@testable import DatenwerkPublishing
import DatenwerkTesting
import Foundation
import Testing

/// The server-drawn charts (`LineChart`, `DatasetPage`): points, gaps, ticks, units, escaping, accessibility,
/// and golden SVGs under `Tests/Fixtures/charts/<case>.svg` (`DATENWERK_UPDATE_GOLDEN=charts/<case>` rewrites one).
@Suite struct LineChartTests {
    static let hour: Int64 = 3_600_000_000
    /// 2024-10-27T22:00:00Z = 27.10.2024 23:00 CET, the last hour of a window across the autumn DST change.
    static let end: Int64 = 1_730_066_400_000_000
    static var window: DatasetChart { DatasetChart(lastHourMicros: end, series: []) }

    /// Hours (0 = the window's first) → values; three runs: 0…9, the lone hour 20, 100…167.
    static var temperature: ChartSeries {
        var points: [ChartPoint] = []
        let first = end - 167 * hour
        for h in Array(0...9) + [20] + Array(100...167) {
            let value = -2.1 + 10.5 * (0.5 + 0.5 * sin(Double(h) / 7))
            points.append(ChartPoint(hourMicros: first + Int64(h) * hour, value: (value * 10).rounded() / 10))
        }
        points[0].value = -2.1
        points[50].value = 8.4
        return ChartSeries(property: "air_temperature", labelDE: "Lufttemperatur", labelEN: "Air temperature", unit: "Cel", stationCount: 3, points: points)
    }

    static func pathData(_ svg: String) -> String? {
        svg.firstMatch(of: /<path class="line" d="([^"]*)"/).map { String($0.1) }
    }

    /// Every `M` or `L` command is one point.
    static func pointCount(_ d: String) -> Int { d.filter { $0 == "M" || $0 == "L" }.count }

    // MARK: Path

    @Test func thePathHasOnePointPerHourWithDataAndBreaksAtGaps() throws {
        let series = Self.temperature
        let svg = LineChart.svg(series, window: Self.window, id: "c")
        let d = try #require(Self.pathData(svg))
        #expect(Self.pointCount(d) == series.points.count)
        #expect(series.points.count == 79)
        // Three runs: three subpaths; the lone hour is a dot (moveto + closepath), nothing drawn across a gap.
        let subpaths = d.split(separator: "M")
        #expect(subpaths.count == 3, "\(d)")
        #expect(subpaths[0].filter { $0 == "L" }.count == 9)
        #expect(subpaths[1].trimmingCharacters(in: .whitespaces).hasSuffix("Z"))
        #expect(!subpaths[1].contains("L"))
        #expect(subpaths[2].filter { $0 == "L" }.count == 67)
        #expect(!subpaths[0].contains("Z") && !subpaths[2].contains("Z"))
        // The first point is at the plot's left edge, the last at its right edge (640 − 16).
        #expect(d.hasPrefix("M64 "))
        #expect(d.contains(" L624 "))
    }

    @Test func xPositionsFollowTheHourAndYThePointsValue() throws {
        let first = Self.end - 167 * Self.hour
        let series = ChartSeries(property: "p", labelDE: "P", labelEN: "P", unit: "1", stationCount: 1, points: [
            ChartPoint(hourMicros: first, value: 0), ChartPoint(hourMicros: first + Self.hour, value: 10),
            ChartPoint(hourMicros: Self.end, value: 5),
        ])
        let d = try #require(Self.pathData(LineChart.svg(series, window: Self.window, id: "c")))
        // Ticks 0…10 step 2 (lower 0, upper 10): y = 28 + (10 − v) / 10 × 188; x = 64 + h / 167 × 560.
        #expect(d == "M64 216 L67.35 28 M624 122Z", "\(d)")
    }

    @Test func anEmptySeriesSaysSoAndDrawsNoPath() {
        let series = ChartSeries(property: "p", labelDE: "Windgeschwindigkeit", labelEN: "Wind speed", unit: "m/s", stationCount: 0, points: [])
        let svg = LineChart.svg(series, window: Self.window, id: "c")
        #expect(Self.pathData(svg) == nil)
        #expect(svg.contains(">Keine Daten in diesen 7 Tagen</text>"))
        #expect(svg.contains("keine Daten in diesem Zeitraum"))
        #expect(!LineChart.sparkline(series, window: Self.window, id: "s").contains("<path"))
    }

    // MARK: Axes

    @Test func valueTicksAreNiceAndCoverEveryValue() {
        let scale = ValueScale(min: -2.1, max: 8.4)
        #expect(scale.step == 2)
        #expect(scale.ticks == [-4, -2, 0, 2, 4, 6, 8, 10])
        #expect(scale.decimals == 0)
        let pressure = ValueScale(min: 1009.5, max: 1015.4)
        #expect(pressure.step == 1)
        #expect(pressure.ticks.first == 1009 && pressure.ticks.last == 1016)
        let small = ValueScale(min: 0.01, max: 0.07)
        #expect(small.step == 0.02)
        #expect(small.decimals == 2)
        #expect(small.ticks == [0, 0.02, 0.04, 0.06, 0.08])
        // One value: a band around it, never a division by zero.
        let flat = ValueScale(min: 5, max: 5)
        #expect(flat.lower < 5 && flat.upper > 5)
        for tick in ValueScale(min: -37.3, max: 1234.5).ticks { #expect(tick.truncatingRemainder(dividingBy: 200) == 0) }
    }

    @Test func tickLabelsUseTheLanguagesNumbersAndARealMinus() {
        let svg = LineChart.svg(Self.temperature, window: Self.window, id: "c")
        #expect(svg.contains(">\u{2212}4</text>"))
        #expect(svg.contains(">10</text>"))
        #expect(ChartTexts(.de).number(-1234567.891, decimals: 2) == "\u{2212}1.234.567,89")
        #expect(ChartTexts(.en).number(1015.44, decimals: 1) == "1015.4")
        #expect(ChartTexts(.de).number(0.3, decimals: 1) == "0,3")
        #expect(ChartTexts(.de).number(-0.04, decimals: 1) == "0,0" || ChartTexts(.de).number(-0.04, decimals: 1) == "\u{2212}0,0")
    }

    @Test func timeAxisIsLabelledAtMidnightsInBerlin() {
        // 21.10. 01:00 CEST … 27.10. 23:00 CET: midnights of 22.–27.10. (27.10. 00:00 is still CEST = 26.10. 22:00Z).
        let midnights = BerlinTime.midnights(from: Self.end - 167 * Self.hour, to: Self.end)
        #expect(midnights.count == 6)
        #expect(midnights.first == 1_729_548_000_000_000)   // 2024-10-21T22:00:00Z
        #expect(midnights.last == 1_729_980_000_000_000)    // 2024-10-26T22:00:00Z
        let svg = LineChart.svg(Self.temperature, window: Self.window, id: "c")
        for label in ["Di 22.10.", "Sa 26.10.", "So 27.10."] { #expect(svg.contains(">\(label)</text>"), "\(label)") }
        #expect(svg.contains(">Ortszeit Berlin</text>"))
        let english = LineChart.svg(Self.temperature, window: Self.window, id: "c", language: .en)
        #expect(english.contains(">Sun 27 Oct</text>"))
        #expect(english.contains(">Berlin time</text>"))
        // Spring: 31.03.2024 has 23 hours; its midnight and the next are 23 h apart.
        let spring = BerlinTime.midnights(from: 1_711_753_200_000_000, to: 1_711_922_400_000_000)   // 30.03. 00:00 CET … 01.04. 00:00 CEST
        #expect(spring.count == 3)
        #expect(spring[2] - spring[1] == 23 * Self.hour)
    }

    @Test func unitsAreShownAsPeopleWriteThem() {
        #expect(LineChart.unitSymbol("Cel") == "°C")
        #expect(LineChart.unitSymbol("ug/m3") == "µg/m³")
        #expect(LineChart.unitSymbol("kW.h") == "kWh")
        #expect(LineChart.unitSymbol("MW.h") == "MWh")
        #expect(LineChart.unitSymbol("m/s") == "m/s")
        #expect(LineChart.unitSymbol("%") == "%")
        #expect(LineChart.unitSymbol("1") == "")
        #expect(LineChart.unitSymbol("W.h/m2") == "Wh/m²")
        #expect(LineChart.unitSymbol("mol/m3") == "mol/m³")   // not in the table: the general rule
        let svg = LineChart.svg(Self.temperature, window: Self.window, id: "c")
        #expect(svg.contains(">Lufttemperatur in °C</text>"))
        #expect(LineChart.svg(Self.temperature, window: Self.window, id: "c", language: .en).contains(">Air temperature (°C)</text>"))
    }

    // MARK: Accessibility and escaping

    @Test func titleAndDescriptionSayWhatTheChartShows() {
        let svg = LineChart.svg(Self.temperature, window: Self.window, id: "chart-1")
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""))
        #expect(svg.contains("role=\"img\" aria-labelledby=\"chart-1-title chart-1-desc\""))
        #expect(svg.contains("<title id=\"chart-1-title\">Lufttemperatur, 7 Tage bis 27. Okt. 2024</title>"))
        #expect(svg.contains("<desc id=\"chart-1-desc\">Stündliches Mittel an 3 Stationen: Lufttemperatur, 21. Okt. – 27. Okt. 2024 (Ortszeit Berlin), Minimum \u{2212}2,1 °C, Maximum 8,4 °C; 79 von 168 Stunden mit Daten.</desc>"))
        let english = LineChart.svg(Self.temperature, window: Self.window, id: "chart-1", language: .en)
        #expect(english.contains("<desc id=\"chart-1-desc\">Hourly mean of air temperature at 3 stations, 21 Oct – 27 Oct 2024 (Berlin time), min \u{2212}2.1 °C, max 8.4 °C; 79 of 168 hours with data.</desc>"))
        #expect(ChartTexts.inSentence("PM2.5") == "PM2.5")
        #expect(ChartTexts.inSentence("NO2 concentration") == "NO2 concentration")
        #expect(ChartTexts.inSentence("Wind speed") == "wind speed")
        // The axes are decoration for screen readers (the desc says it); no script, nothing from elsewhere.
        #expect(svg.components(separatedBy: "aria-hidden=\"true\"").count == 3)
        for forbidden in ["<script", "href=", "xlink", "url(", "<image", "<foreignObject", "onload"] { #expect(!svg.contains(forbidden), "\(forbidden)") }
    }

    @Test func everyTextIsEscaped() {
        var series = Self.temperature
        series.labelDE = "<script>alert(\"x\")</script> & 'Ö'"
        series.labelEN = series.labelDE
        for svg in [LineChart.svg(series, window: Self.window, id: "c"), LineChart.sparkline(series, window: Self.window, id: "s"),
                    LineChart.svg(series, window: Self.window, id: "c", language: .en)] {
            #expect(!svg.contains("<script"))
            #expect(svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Ö&#39;"))
        }
    }

    @Test func sparklineIsTinyWithoutAxesButLabelled() throws {
        let svg = LineChart.sparkline(Self.temperature, window: Self.window, id: "spark-x")
        #expect(svg.contains("viewBox=\"0 0 120 32\""))
        #expect(svg.contains("role=\"img\" aria-labelledby=\"spark-x-title spark-x-desc\""))
        #expect(!svg.contains("<text") && !svg.contains("<line"))
        let d = try #require(Self.pathData(svg))
        #expect(Self.pointCount(d) == 79)
        #expect(d.hasPrefix("M3 29 "))   // the minimum at the bottom left
    }

    // MARK: Golden files

    static let cases: [(String, String)] = {
        let energy = ChartSeries(property: "electricity_consumption", labelDE: "Stromverbrauch", labelEN: "Electricity consumption", unit: "MW.h",
                                 stationCount: 1, points: (140...167).map { h in
                                     ChartPoint(hourMicros: end - Int64(167 - h) * hour, value: 0.0125 + Double(h % 5) * 0.003)
                                 })
        let empty = ChartSeries(property: "wind_speed", labelDE: "Windgeschwindigkeit", labelEN: "Wind speed", unit: "m/s", stationCount: 0, points: [])
        return [
            ("temperature-gaps-de", LineChart.svg(temperature, window: window, id: "chart-1")),
            ("temperature-gaps-en", LineChart.svg(temperature, window: window, id: "chart-1", language: .en)),
            ("energy-small-values", LineChart.svg(energy, window: window, id: "chart-2")),
            ("no-data", LineChart.svg(empty, window: window, id: "chart-3")),
            ("sparkline-temperature", LineChart.sparkline(temperature, window: window, id: "spark-1")),
        ]
    }()

    @Test(arguments: cases.map(\.0))
    func goldenSVG(_ name: String) throws {
        let svg = try #require(Self.cases.first { $0.0 == name }?.1)
        // Deterministic: the same input gives the same bytes.
        #expect(svg == Self.cases.first { $0.0 == name }?.1)
        let path = Golden.fixtures + "/charts/\(name).svg"
        if let update = ProcessInfo.processInfo.environment["DATENWERK_UPDATE_GOLDEN"],
           update.split(separator: ",").contains(where: { $0 == "charts/\(name)" }) {
            try FileManager.default.createDirectory(atPath: Golden.fixtures + "/charts", withIntermediateDirectories: true)
            try Data((svg + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }
        let expected = try #require((try? String(contentsOfFile: path, encoding: .utf8)), "no \(path); write it with DATENWERK_UPDATE_GOLDEN=charts/\(name)")
        #expect(svg + "\n" == expected, "charts/\(name).svg differs")
    }
}

/// The dataset page and the catalog page's sparklines.
@Suite struct DatasetPageTests {
    typealias S = PublishingSamples

    static var chart: DatasetChart {
        let humidity = ChartSeries(property: "relative_humidity", labelDE: "Relative Luftfeuchte", labelEN: "Relative humidity", unit: "%",
                                   stationCount: 2, points: [ChartPoint(hourMicros: LineChartTests.end, value: 80)])
        return DatasetChart(lastHourMicros: LineChartTests.end, series: [LineChartTests.temperature, humidity])
    }

    @Test func datasetPageHasAChartPerPropertyBesideTheMap() {
        let html = DatasetPage.render(catalog: S.catalog, baseURL: S.baseURL + "/", dataset: S.klima, facts: S.klimaFacts, stations: S.stations,
                                      chart: Self.chart)
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"de\">"))
        #expect(html.contains("<title>Klima &lt;Musterstadt&gt; &amp; &quot;Umland&quot; – Stundenwerte – Datenwerk Musterstadt – Offene Daten</title>"))
        #expect(html.components(separatedBy: "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"").count == 3)
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\""))
        // The charts come after the facts and before the map, in one row with it.
        let charts = html.range(of: "<section class=\"charts\"")!.lowerBound
        #expect(html.range(of: "</dl>")!.lowerBound < charts)
        #expect(charts < html.range(of: "class=\"map\"")!.lowerBound)
        #expect(html.contains("<h3 id=\"musterstadt-klima-charts\">Verlauf: 7 Tage bis 27. Okt. 2024</h3>"))
        #expect(html.contains("stündliche Mittel über alle Stationen"))
        #expect(html.contains("<figcaption>Relative Luftfeuchte (%), Stundenmittel, 2 Stationen</figcaption>"))
        #expect(html.contains("id=\"chart-musterstadt-klima-1-title\"") && html.contains("id=\"chart-musterstadt-klima-2-title\""))
        #expect(html.contains("href=\"http://127.0.0.1:8080/\">← Datenwerk Musterstadt – Offene Daten</a>"))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima?lang=en\" hreflang=\"en\""))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/observations.csv\""))
        #expect(!html.contains("<script") && !html.contains(" src=") && !html.contains("<link rel=\"stylesheet\""))
        // No sparkline entry on the dataset's own page.
        #expect(!html.contains("class=\"sparkline\""))
    }

    @Test func datasetPageWithoutDataSaysSo() {
        let html = DatasetPage.render(catalog: S.catalog, baseURL: S.baseURL, dataset: S.energie, facts: S.energieFacts, stations: [],
                                      chart: nil, language: .en)
        #expect(html.contains("<h3 id=\"musterstadt-energie-charts\">Last 7 days</h3>\n<p>no data yet</p>"))
        #expect(!html.contains("<svg"))
    }

    @Test func catalogPageShowsASparklinePerDatasetAndLinksItsPage() {
        let html = CatalogPage.render(catalog: S.catalog, baseURL: S.baseURL, datasets: [
            (S.klima, S.klimaFacts, S.stations), (S.energie, S.energieFacts, []),
        ], charts: [S.klima.id: Self.chart])
        // The property with the most hours: air temperature.
        #expect(html.components(separatedBy: "class=\"sparkline\"").count == 2)
        #expect(html.contains("<title id=\"spark-musterstadt-klima-title\">Lufttemperatur, 7 Tage bis 27. Okt. 2024</title>"))
        #expect(html.contains("<a href=\"http://127.0.0.1:8080/datasets/musterstadt-klima\">Diagramme der letzten 7 Tage<span class=\"vh\">"))
        #expect(html.contains("<a href=\"http://127.0.0.1:8080/datasets/musterstadt-energie\">Diagramme der letzten 7 Tage"))
        #expect(!html.contains("<script"))
    }
}
