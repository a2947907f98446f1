import DatenwerkCore
import DatenwerkTransforms
import Foundation

/// One hour of a chart: the mean of the stations' hourly means in that UTC hour.
package struct ChartPoint: Sendable, Hashable {
    /// Start of the UTC hour, microseconds since 1970.
    package var hourMicros: Int64
    package var value: Double

    package init(hourMicros: Int64, value: Double) {
        self.hourMicros = hourMicros
        self.value = value
    }
}

/// One property of a dataset over the chart's window.
package struct ChartSeries: Sendable, Hashable {
    package var property: String
    package var labelDE: String
    package var labelEN: String
    /// Canonical UCUM unit (`Cel`, `ug/m3`).
    package var unit: String
    /// Stations with at least one hour in the window.
    package var stationCount: Int
    /// Sorted by hour, at most one per hour; hours without data are missing.
    package var points: [ChartPoint]

    package init(property: String, labelDE: String, labelEN: String, unit: String, stationCount: Int, points: [ChartPoint]) {
        self.property = property
        self.labelDE = labelDE
        self.labelEN = labelEN
        self.unit = unit
        self.stationCount = stationCount
        self.points = points
    }
}

/// The charts of one dataset: every property over the same 7 days, which end at the hour of the dataset's
/// latest observation (so a dataset that stopped in 2024 still shows its last week).
package struct DatasetChart: Sendable, Hashable {
    /// First hour of the window (UTC start, µs since 1970): `lastHourMicros` − 167 h.
    package var firstHourMicros: Int64
    /// Last hour of the window: the hour of the latest observation.
    package var lastHourMicros: Int64
    /// One per property, in the order they are drawn.
    package var series: [ChartSeries]

    package static let hours: Int64 = 7 * 24
    package static let hourMicros: Int64 = 3_600_000_000

    package init(lastHourMicros: Int64, series: [ChartSeries]) {
        self.lastHourMicros = lastHourMicros
        self.firstHourMicros = lastHourMicros - (Self.hours - 1) * Self.hourMicros
        self.series = series
    }
}

/// Server-drawn line charts as inline SVG: no script, nothing loaded from elsewhere, every text escaped, the
/// same bytes for the same input. Accessible: `role="img"`, `aria-labelledby` naming a `<title>` and a `<desc>`
/// that says in words what the chart shows (property, stations, dates, minimum and maximum).
///
/// The line is the hourly mean across the dataset's stations; an hour without data breaks it (a new subpath
/// starts, nothing is drawn across the gap); an hour alone between gaps is a dot (a zero-length subpath with
/// round caps). Each point of the path is exactly one `M` or `L` command. The time axis is labelled at local
/// midnights in Europe/Berlin; the value axis has "nice" ticks (1, 2 or 5 × 10^k) and names the unit.
package enum LineChart {
    /// Presentation attributes a stylesheet may override (the catalog page does, for dark mode).
    static let lineColour = "#0550ae"     // 7.3:1 on white
    static let textColour = "#57606a"     // 6.2:1 on white
    static let gridColour = "#d0d7de"

    package struct Layout: Sendable {
        package var width: Double = 640
        package var height: Double = 260
        package var left: Double = 64
        package var right: Double = 16
        package var top: Double = 28
        package var bottom: Double = 44
        package init() {}
        var plotWidth: Double { width - left - right }
        var plotHeight: Double { height - top - bottom }
    }

    /// The chart of one property. `id` must be unique on the page (it prefixes the title's and desc's ids).
    package static func svg(_ series: ChartSeries, window: DatasetChart, id: String, language: CatalogPage.Language = .de,
                            layout: Layout = Layout()) -> String {
        let t = ChartTexts(language)
        let label = t.label(series)
        let unit = unitSymbol(series.unit)
        let titleID = "\(id)-title", descID = "\(id)-desc"
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 \(n(layout.width)) \(n(layout.height))\""
        out += " width=\"\(n(layout.width))\" height=\"\(n(layout.height))\" role=\"img\" aria-labelledby=\"\(titleID) \(descID)\""
        out += " font-family=\"system-ui, sans-serif\" font-size=\"11\">"
        out += "<title id=\"\(titleID)\">\(HTML.escape(t.title(label, window: window)))</title>"
        out += "<desc id=\"\(descID)\">\(HTML.escape(t.description(series, label: label, unit: unit, window: window)))</desc>"

        let values = series.points.map(\.value).filter(\.isFinite)
        let scale = ValueScale(min: values.min() ?? 0, max: values.max() ?? 1)
        let x = { (micros: Int64) -> Double in
            layout.left + Double(micros - window.firstHourMicros) / Double(window.lastHourMicros - window.firstHourMicros) * layout.plotWidth
        }
        let y = { (value: Double) -> Double in
            layout.top + (scale.upper - value) / (scale.upper - scale.lower) * layout.plotHeight
        }
        let plotBottom = layout.top + layout.plotHeight, plotRight = layout.left + layout.plotWidth

        // Value axis: grid lines and labels at the ticks, the unit in the axis title.
        out += "<g class=\"axis y-axis\" aria-hidden=\"true\" fill=\"\(textColour)\" stroke-width=\"1\">"
        out += "<text class=\"axis-title\" x=\"\(n(layout.left))\" y=\"\(n(layout.top - 12))\">\(HTML.escape(t.valueAxisTitle(label, unit: unit)))</text>"
        for tick in scale.ticks {
            let ty = y(tick)
            out += "<line class=\"grid\" x1=\"\(n(layout.left))\" y1=\"\(n(ty))\" x2=\"\(n(plotRight))\" y2=\"\(n(ty))\" stroke=\"\(gridColour)\"/>"
            out += "<text x=\"\(n(layout.left - 6))\" y=\"\(n(ty + 4))\" text-anchor=\"end\">\(HTML.escape(t.number(tick, decimals: scale.decimals)))</text>"
        }
        out += "</g>"

        // Time axis: a tick and a date at every local midnight (Europe/Berlin) in the window.
        out += "<g class=\"axis x-axis\" aria-hidden=\"true\" fill=\"\(textColour)\" stroke-width=\"1\">"
        out += "<line class=\"baseline\" x1=\"\(n(layout.left))\" y1=\"\(n(plotBottom))\" x2=\"\(n(plotRight))\" y2=\"\(n(plotBottom))\" stroke=\"\(textColour)\"/>"
        for midnight in BerlinTime.midnights(from: window.firstHourMicros, to: window.lastHourMicros) {
            let tx = x(midnight)
            out += "<line class=\"tick\" x1=\"\(n(tx))\" y1=\"\(n(layout.top))\" x2=\"\(n(tx))\" y2=\"\(n(plotBottom + 4))\" stroke=\"\(gridColour)\"/>"
            if tx <= plotRight - 20 {
                out += "<text x=\"\(n(tx + 3))\" y=\"\(n(plotBottom + 16))\">\(HTML.escape(t.tickDate(midnight)))</text>"
            }
        }
        out += "<text class=\"axis-title\" x=\"\(n(plotRight))\" y=\"\(n(layout.height - 6))\" text-anchor=\"end\">\(HTML.escape(t.timeAxisTitle))</text>"
        out += "</g>"

        if series.points.isEmpty {
            out += "<text class=\"no-data\" x=\"\(n(layout.left + layout.plotWidth / 2))\" y=\"\(n(layout.top + layout.plotHeight / 2))\""
            out += " text-anchor=\"middle\" fill=\"\(textColour)\">\(HTML.escape(t.noDataInWindow))</text>"
        } else {
            out += "<path class=\"line\" d=\"\(path(series.points, x: x, y: y))\" fill=\"none\" stroke=\"\(lineColour)\" stroke-width=\"2\""
            out += " stroke-linejoin=\"round\" stroke-linecap=\"round\"/>"
        }
        out += "</svg>"
        return out
    }

    /// A tiny chart for the catalog page: the line only (no axes, no labels), 120 × 32 by default.
    package static func sparkline(_ series: ChartSeries, window: DatasetChart, id: String, language: CatalogPage.Language = .de,
                                  width: Double = 120, height: Double = 32) -> String {
        let t = ChartTexts(language)
        let label = t.label(series)
        let unit = unitSymbol(series.unit)
        let titleID = "\(id)-title", descID = "\(id)-desc"
        let values = series.points.map(\.value).filter(\.isFinite)
        let lower = values.min() ?? 0, upper = values.max() ?? 1
        let span = upper > lower ? upper - lower : 1
        let pad = 3.0
        let x = { (micros: Int64) -> Double in
            pad + Double(micros - window.firstHourMicros) / Double(window.lastHourMicros - window.firstHourMicros) * (width - 2 * pad)
        }
        let y = { (value: Double) -> Double in
            upper > lower ? pad + (upper - value) / span * (height - 2 * pad) : height / 2
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sparkline\" viewBox=\"0 0 \(n(width)) \(n(height))\""
        out += " width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-labelledby=\"\(titleID) \(descID)\">"
        out += "<title id=\"\(titleID)\">\(HTML.escape(t.title(label, window: window)))</title>"
        out += "<desc id=\"\(descID)\">\(HTML.escape(t.description(series, label: label, unit: unit, window: window)))</desc>"
        if !series.points.isEmpty {
            out += "<path class=\"line\" d=\"\(path(series.points, x: x, y: y))\" fill=\"none\" stroke=\"\(lineColour)\" stroke-width=\"1.5\""
            out += " stroke-linejoin=\"round\" stroke-linecap=\"round\"/>"
        }
        out += "</svg>"
        return out
    }

    /// `M x y L x y …`, a new `M` after every missing hour; a point alone gets `Z` (drawn as a dot).
    static func path(_ points: [ChartPoint], x: (Int64) -> Double, y: (Double) -> Double) -> String {
        var d = ""
        var previous: Int64?
        var runLength = 0
        for point in points where point.value.isFinite {
            let continues = previous.map { point.hourMicros - $0 <= DatasetChart.hourMicros } ?? false
            if !continues {
                if runLength == 1 { d += "Z" }
                d += d.isEmpty ? "M" : " M"
                runLength = 0
            } else {
                d += " L"
            }
            d += "\(n(x(point.hourMicros))) \(n(y(point.value)))"
            runLength += 1
            previous = point.hourMicros
        }
        if runLength == 1 { d += "Z" }
        return d
    }

    /// Rules for pages that show charts: the colours follow the page's (dark mode too).
    package static let css = """
        .chart{width:100%;height:auto;background:var(--bg);border:1px solid var(--line);border-radius:.25rem}\
        .chart .line,.sparkline .line{stroke:var(--accent)}.chart .axis,.chart .no-data{fill:var(--muted)}\
        .chart .grid,.chart .tick{stroke:var(--line)}.chart .baseline{stroke:var(--muted)}.sparkline{vertical-align:middle}
        """

    /// A coordinate: at most two decimals, no trailing zeros.
    static func n(_ value: Double) -> String { StationMap.n(value) }

    // MARK: Units

    /// A UCUM code as people write it: `Cel` → `°C`, `ug/m3` → `µg/m³`, `kW.h` → `kWh`; `1` (a count) → "".
    package static func unitSymbol(_ ucum: String) -> String {
        if let known = unitSymbols[ucum] { return known }
        var out = ""
        var previous: Character?
        for c in ucum {
            switch c {
            case "." where previous?.isLetter == true: out += "·"
            case "2" where previous?.isLetter == true: out += "²"
            case "3" where previous?.isLetter == true: out += "³"
            default: out.append(c)
            }
            previous = c
        }
        return out
    }

    static let unitSymbols: [String: String] = [
        "Cel": "°C", "[degF]": "°F", "K": "K", "deg": "°", "1": "", "%": "%",
        "ug/m3": "µg/m³", "mg/m3": "mg/m³", "ng/m3": "ng/m³",
        "W.h": "Wh", "kW.h": "kWh", "MW.h": "MWh", "GW.h": "GWh", "W.h/m2": "Wh/m²", "kW.h/m2": "kWh/m²",
        "J/cm2": "J/cm²", "J/m2": "J/m²", "L/m2": "l/m²", "m3/s": "m³/s", "m3/h": "m³/h", "L/s": "l/s",
        "[kn_i]": "kn", "[ppth]": "‰", "[ppm]": "ppm", "[ppb]": "ppb",
    ]
}

/// The value axis: ticks every 1, 2 or 5 × 10^k, four to seven of them, covering every value.
struct ValueScale: Equatable {
    var lower: Double
    var upper: Double
    var step: Double
    var ticks: [Double]
    /// Decimals the tick labels need.
    var decimals: Int

    init(min: Double, max: Double, targetTicks: Int = 5) {
        var low = min, high = max
        if !(low.isFinite && high.isFinite) { (low, high) = (0, 1) }
        if high - low < 1e-9 {
            let pad = Swift.max(abs(low) * 0.1, 1)
            (low, high) = (low - pad, high + pad)
        }
        let step = StationMap.niceStep((high - low) / Double(targetTicks - 1))
        let lower = (low / step).rounded(.down) * step
        let upper = (high / step).rounded(.up) * step
        var ticks: [Double] = []
        var i = 0
        while true {
            let tick = lower + Double(i) * step
            if tick > upper + step / 2 { break }
            // -0 and float dust (0.30000000000000004) as the label shows them.
            let cleaned = (tick / step).rounded() * step
            ticks.append(cleaned == 0 ? 0 : cleaned)
            i += 1
        }
        self.lower = lower
        self.upper = upper
        self.step = step
        self.ticks = ticks
        self.decimals = Swift.max(0, Int((-log10(step)).rounded(.up)))
    }
}

/// Local time in Europe/Berlin, where the municipalities live.
enum BerlinTime {
    static let resolver: LocalTimeResolver = {
        (try? LocalTimeResolver(zone: "Europe/Berlin")) ?? .utc
    }()

    /// Local (year, month, day, hour, minute, weekday 0 = Sunday) of a UTC instant.
    static func local(_ micros: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, weekday: Int, days: Int64) {
        let seconds = CivilTime.floorDiv(micros, 1_000_000) + Int64(resolver.offsetSeconds(atUTCMicroseconds: micros))
        let days = CivilTime.floorDiv(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (y, m, d) = CivilTime.date(days: days)
        let weekday = Int(((days + 4) % 7 + 7) % 7)   // 1970-01-01 was a Thursday
        return (y, m, d, Int(secondOfDay / 3600), Int(secondOfDay % 3600 / 60), weekday, days)
    }

    /// The UTC instants of the local midnights in [from, to].
    static func midnights(from: Int64, to: Int64) -> [Int64] {
        var result: [Int64] = []
        var day = local(from).days
        let lastDay = local(to).days
        while day <= lastDay {
            let (y, m, d) = CivilTime.date(days: day)
            if let instant = try? resolver.utcMicroseconds(year: y, month: m, day: d, hour: 0), instant >= from, instant <= to {
                result.append(instant)
            }
            day += 1
        }
        return result
    }
}

/// The chart's words in German and English.
struct ChartTexts {
    let language: CatalogPage.Language
    init(_ language: CatalogPage.Language) { self.language = language }
    private var de: Bool { language == .de }

    func label(_ series: ChartSeries) -> String { de ? series.labelDE : series.labelEN }

    /// `Lufttemperatur, 7 Tage bis 27.10.2024` / `Air temperature, 7 days to 27 Oct 2024`.
    func title(_ label: String, window: DatasetChart) -> String {
        "\(label), \(sevenDaysTo(window))"
    }

    func sevenDaysTo(_ window: DatasetChart) -> String {
        de ? "7 Tage bis \(date(window.lastHourMicros))" : "7 days to \(date(window.lastHourMicros))"
    }

    /// "Hourly mean of air temperature at 3 stations, 21 Oct – 27 Oct 2024 (Berlin time), min −2.1 °C, max 8.4 °C;
    /// 45 of 168 hours with data."
    func description(_ series: ChartSeries, label: String, unit: String, window: DatasetChart) -> String {
        let sameYear = BerlinTime.local(window.firstHourMicros).year == BerlinTime.local(window.lastHourMicros).year
        let range = "\(date(window.firstHourMicros, year: !sameYear)) – \(date(window.lastHourMicros))"
        let stations = de ? (series.stationCount == 1 ? "an 1 Station" : "an \(series.stationCount) Stationen")
            : (series.stationCount == 1 ? "at 1 station" : "at \(series.stationCount) stations")
        let values = series.points.map(\.value).filter(\.isFinite)
        guard let low = values.min(), let high = values.max() else {
            return de ? "Stündliches Mittel: \(label), \(range) (Ortszeit Berlin): keine Daten in diesem Zeitraum."
                : "Hourly mean of \(Self.inSentence(label)), \(range) (Berlin time): no data in this period."
        }
        // One more decimal than the axis labels, at least as many as the size of the values asks for.
        let decimals = Swift.min(6, Swift.max(Self.summaryDecimals(Swift.max(abs(low), abs(high))), ValueScale(min: low, max: high).decimals + 1))
        let hours = de ? "\(series.points.count) von \(DatasetChart.hours) Stunden mit Daten"
            : "\(series.points.count) of \(DatasetChart.hours) hours with data"
        return de
            ? "Stündliches Mittel \(stations): \(label), \(range) (Ortszeit Berlin), Minimum \(quantity(low, unit, decimals)), Maximum \(quantity(high, unit, decimals)); \(hours)."
            : "Hourly mean of \(Self.inSentence(label)) \(stations), \(range) (Berlin time), min \(quantity(low, unit, decimals)), max \(quantity(high, unit, decimals)); \(hours)."
    }

    /// `Air temperature` → `air temperature` inside a sentence; `PM2.5`, `NO2 concentration` stay as they are.
    static func inSentence(_ label: String) -> String {
        let letters = Array(label.prefix(2))
        guard letters.count == 2, letters[0].isUppercase, letters[1].isLowercase else { return label }
        return label.prefix(1).lowercased() + label.dropFirst()
    }

    static func summaryDecimals(_ magnitude: Double) -> Int { magnitude >= 100 ? 0 : magnitude >= 1 ? 1 : 2 }

    var timeAxisTitle: String { de ? "Ortszeit Berlin" : "Berlin time" }
    var noDataInWindow: String { de ? "Keine Daten in diesen 7 Tagen" : "No data in these 7 days" }

    func valueAxisTitle(_ label: String, unit: String) -> String {
        unit.isEmpty ? label : (de ? "\(label) in \(unit)" : "\(label) (\(unit))")
    }

    /// `−2,1 °C`, `75 %`, `180°`, `12` (a count).
    func quantity(_ value: Double, _ unit: String, _ decimals: Int) -> String {
        let number = self.number(value, decimals: decimals)
        if unit.isEmpty { return number }
        return unit == "°" ? number + unit : number + " " + unit   // NARROW NO-BREAK would be nicer; a space is safe
    }

    /// A number with `decimals` places, decimal comma in German, a real minus sign, digits grouped from 10 000.
    func number(_ value: Double, decimals: Int) -> String {
        let factor = LineChart.powerOfTen(decimals)
        let scaled = (value * factor).rounded()
        guard scaled.isFinite, abs(scaled) < 9e18 else { return "–" }
        let integer = Int64(scaled)
        let magnitude = integer.magnitude
        let whole = magnitude / UInt64(factor), fraction = magnitude % UInt64(factor)
        var digits = String(whole)
        if whole >= 10_000 {
            var grouped = ""
            for (i, c) in digits.enumerated() {
                if i > 0 && (digits.count - i) % 3 == 0 { grouped += de ? "." : "," }
                grouped.append(c)
            }
            digits = grouped
        }
        var out = integer < 0 ? "\u{2212}" + digits : digits
        if decimals > 0 {
            let f = String(fraction)
            out += (de ? "," : ".") + String(repeating: "0", count: decimals - f.count) + f
        }
        return out
    }

    static let weekdaysDE = ["So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"]
    static let weekdaysEN = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let monthsDE = ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."]
    static let monthsEN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sa 26.10.` / `Sat 26 Oct` (local date of a midnight).
    func tickDate(_ micros: Int64) -> String {
        let l = BerlinTime.local(micros)
        return de ? "\(Self.weekdaysDE[l.weekday]) \(l.day).\(l.month)."
            : "\(Self.weekdaysEN[l.weekday]) \(l.day) \(Self.monthsEN[l.month - 1])"
    }

    /// `27. Okt. 2024` / `27 Oct 2024` (local date in Berlin).
    func date(_ micros: Int64, year: Bool = true) -> String {
        let l = BerlinTime.local(micros)
        let y = year ? " \(l.year)" : ""
        return de ? "\(l.day). \(Self.monthsDE[l.month - 1])\(y)" : "\(l.day) \(Self.monthsEN[l.month - 1])\(y)"
    }
}

extension LineChart {
    static func powerOfTen(_ k: Int) -> Double {
        var p = 1.0
        for _ in 0..<Swift.max(0, k) { p *= 10 }
        return p
    }
}
