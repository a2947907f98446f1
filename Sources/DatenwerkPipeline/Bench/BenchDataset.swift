/// The data of `datenwerk bench`: a German municipal weather CSV as cities publish it, and the same data
/// normalised as the pipeline must load it, generated side by side so the load can be checked row by row.
///
/// The CSV: ISO-8859-1, `;`, CRLF, decimal comma, local time Europe/Berlin as `dd.MM.yyyy HH:mm` (the spring
/// hour that does not exist is absent, the repeated autumn hour appears twice, in order: `ambiguous: sequence`),
/// station positions as UTM zone 32 (EPSG:25832) Rechtswert/Hochwert, and four values per line: temperature
/// (°C), relative humidity (%), pressure (hPa) and wind speed (km/h, which the pipeline converts to m/s).
/// Lines are station by station, then in time order. Every station covers 24 Oct 2024 22:00Z to 1 Apr 2025
/// 22:00Z at least, so both DST changes (27 Oct 2024, 30 Mar 2025) are in every series.
///
/// The normalised rows: PostgreSQL COPY text, `station key \t property \t UTC start \t value` with SI values,
/// one per value. Values are a pure function of station and step, so any station can be generated alone.
/// No I/O here: the caller writes the bytes.
package struct BenchDataset: Sendable {
    /// Normalised observation rows (values): a multiple of 4.
    package let rows: Int
    package let stations: Int
    /// Minutes between two lines of a station (60 or 10).
    package let stepMinutes: Int
    /// The pipeline's name, also the station key prefix.
    package let pipeline: String

    /// 24 Oct 2024 22:00Z = 25 Oct 2024 00:00 CEST.
    package static let startSeconds: Int64 = 1_729_807_200
    /// Hours from the start to 1 Apr 2025 22:00Z (2 Apr 2025 00:00 CEST): both DST changes lie inside.
    package static let spanHours = 3_816
    package static let properties = ["air_temperature", "relative_humidity", "air_pressure", "wind_speed"]
    package static let columns = ["Lufttemperatur [°C]", "Rel. Luftfeuchte [%]", "Luftdruck [hPa]", "Windgeschwindigkeit [km/h]"]
    package static let units = ["Cel", "%", "hPa", "km/h"]

    /// `rows` is rounded down to a multiple of 4 (one CSV line holds four values). Hourly steps with as many
    /// stations as fit the span (at most 200); beyond that 10-minute steps, and at most 200 stations whose
    /// series then run past the span.
    package init(rows: Int, pipeline: String = "bench") {
        let lines = max(1, rows / 4)
        self.rows = lines * 4
        self.pipeline = pipeline
        if lines / Self.spanHours <= 200 {
            stepMinutes = 60
            stations = max(1, lines / Self.spanHours)
        } else {
            stepMinutes = 10
            stations = min(200, max(1, lines / (Self.spanHours * 6)))
        }
    }

    package var lines: Int { rows / 4 }

    /// Lines (time steps) of station `index` (0-based): the lines shared out, the first stations one more.
    package func steps(of index: Int) -> Int {
        lines / stations + (index < lines % stations ? 1 : 0)
    }

    package func stationID(_ index: Int) -> String {
        let digits = String(index + 1)
        return "S" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }

    package func stationKey(_ index: Int) -> String { pipeline + ":" + stationID(index) }

    static let places = ["Hauptstraße", "Südpark", "Mühlenweg", "Großer Garten", "Bahnhofstraße", "Überseeallee", "Schloßplatz", "Königsallee"]

    package func stationName(_ index: Int) -> String { "\(Self.places[index % Self.places.count]) \(index / Self.places.count + 1)" }

    /// UTM32 east and north in centimetres (printed with a decimal comma).
    package func stationPosition(_ index: Int) -> (east: Int64, north: Int64) {
        (36_000_000 + Int64(index % 20) * 152_337, 570_000_000 + Int64(index / 20) * 121_741)
    }

    // MARK: Values

    /// The four values of station `index` at `step`, as integers of their printed precision:
    /// temperature in 0.1 °C, humidity in %, pressure in 0.1 hPa, wind in 0.1 km/h.
    package func values(_ index: Int, _ step: Int) -> (temperature: Int, humidity: Int, pressure: Int, wind: Int) {
        var z = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: step) &* 0xBF58_476D_1CE4_E5B9 &+ 0x1234_5678
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let t = Int(z % 451) - 100          // -10.0 … 35.0 °C
        let h = Int((z >> 12) % 81) + 20    // 20 … 100 %
        let p = Int((z >> 24) % 851) + 9_600  // 960.0 … 1045.0 hPa
        let w = Int((z >> 40) % 801)        // 0.0 … 80.0 km/h
        return (t, h, p, w)
    }

    /// The UTC second of a station's `step`.
    package func utcSeconds(_ step: Int) -> Int64 { Self.startSeconds + Int64(step) * Int64(stepMinutes) * 60 }

    // MARK: Bytes

    /// The CSV header line, ISO-8859-1, CRLF.
    package var csvHeader: [UInt8] {
        Self.latin1("Messstelle;Name;Rechtswert;Hochwert;Datum/Zeit;" + Self.columns.joined(separator: ";") + "\r\n")
    }

    /// The CSV lines of station `index`, appended to `out` (ISO-8859-1, CRLF).
    package func appendCSV(station index: Int, to out: inout [UInt8]) {
        var prefix = Self.latin1(stationID(index) + ";" + stationName(index) + ";")
        let (east, north) = stationPosition(index)
        Self.appendFixed(east, decimals: 2, separator: UInt8(ascii: ","), to: &prefix)
        prefix.append(UInt8(ascii: ";"))
        Self.appendFixed(north, decimals: 2, separator: UInt8(ascii: ","), to: &prefix)
        prefix.append(UInt8(ascii: ";"))
        for step in 0..<steps(of: index) {
            out.append(contentsOf: prefix)
            let local = Self.berlin(utcSeconds(step))
            Self.append2(local.day, to: &out); out.append(UInt8(ascii: "."))
            Self.append2(local.month, to: &out); out.append(UInt8(ascii: "."))
            Self.appendInt(local.year, to: &out); out.append(UInt8(ascii: " "))
            Self.append2(local.hour, to: &out); out.append(UInt8(ascii: ":"))
            Self.append2(local.minute, to: &out)
            let v = values(index, step)
            out.append(UInt8(ascii: ";")); Self.appendFixed(Int64(v.temperature), decimals: 1, separator: UInt8(ascii: ","), to: &out)
            out.append(UInt8(ascii: ";")); Self.appendInt(v.humidity, to: &out)
            out.append(UInt8(ascii: ";")); Self.appendFixed(Int64(v.pressure), decimals: 1, separator: UInt8(ascii: ","), to: &out)
            out.append(UInt8(ascii: ";")); Self.appendFixed(Int64(v.wind), decimals: 1, separator: UInt8(ascii: ","), to: &out)
            out.append(13); out.append(10)
        }
    }

    /// The normalised rows of station `index` as COPY text (`key \t property \t 2024-10-24 22:00:00+00 \t value`).
    package func appendNormalised(station index: Int, to out: inout [UInt8]) {
        let key = Array(stationKey(index).utf8)
        let names = Self.properties.map { Array($0.utf8) }
        for step in 0..<steps(of: index) {
            var time: [UInt8] = []
            Self.appendUTC(utcSeconds(step), to: &time)
            let v = values(index, step)
            for (column, name) in names.enumerated() {
                out.append(contentsOf: key); out.append(9)
                out.append(contentsOf: name); out.append(9)
                out.append(contentsOf: time); out.append(9)
                switch column {
                case 0: Self.appendFixed(Int64(v.temperature), decimals: 1, separator: UInt8(ascii: "."), to: &out)
                case 1: Self.appendInt(v.humidity, to: &out)
                case 2: Self.appendFixed(Int64(v.pressure), decimals: 1, separator: UInt8(ascii: "."), to: &out)
                default: out.append(contentsOf: Array(Self.metresPerSecond(tenthsKmh: v.wind).description.utf8))
                }
                out.append(10)
            }
        }
    }

    /// km/h → m/s, computed here on its own (the pipeline's result may differ in the last bit).
    package static func metresPerSecond(tenthsKmh: Int) -> Double { Double(tenthsKmh) / 36.0 }

    /// The pipeline file for the CSV at `csvPath` (UTF-8 YAML).
    package func pipelineYAML(csvPath: String) -> String {
        let values = zip(zip(Self.columns, Self.properties), Self.units)
            .map { "    - { field: \"\($0.0.0)\", property: \($0.0.1), unit: \"\($0.1)\" }" }.joined(separator: "\n")
        return """
            version: 1
            name: \(pipeline)
            tenant: "05515000"
            dataset:
              title: Benchmark-Messnetz
              description: Erzeugte Wetterwerte (Latin-1, Ortszeit über beide Zeitumstellungen, UTM32) für datenwerk bench.
              theme: ENVI
            source:
              kind: file
              path: "\(csvPath)"
              format: { kind: csv, delimiter: ";", encoding: iso-8859-1 }
            observations:
              station:
                id: Messstelle
                name: Name
                coordinates: { x: Rechtswert, y: Hochwert, crs: "EPSG:25832" }
              time: { field: "Datum/Zeit", format: dd.MM.yyyy HH:mm, timezone: Europe/Berlin, ambiguous: sequence }
              decimal: comma
              values:
            \(values)

            """
    }

    // MARK: Europe/Berlin, written out (an oracle independent of the pipeline's time zone code)

    package struct LocalTime: Equatable, Sendable {
        package var year, month, day, hour, minute: Int

        package init(year: Int, month: Int, day: Int, hour: Int, minute: Int) {
            (self.year, self.month, self.day, self.hour, self.minute) = (year, month, day, hour, minute)
        }
    }

    /// Local time in Europe/Berlin (EU rule since 1996: CEST from the last Sunday of March 01:00Z to the last
    /// Sunday of October 01:00Z).
    package static func berlin(_ utc: Int64) -> LocalTime {
        let year = civil(Int(utc / 86_400)).year
        let summer = utc >= lastSunday(year: year, month: 3) * 86_400 + 3_600 && utc < lastSunday(year: year, month: 10) * 86_400 + 3_600
        let local = utc + (summer ? 7_200 : 3_600)
        let date = civil(Int(floorDiv(local, 86_400)))
        let seconds = Int(local - floorDiv(local, 86_400) * 86_400)
        return LocalTime(year: date.year, month: date.month, day: date.day, hour: seconds / 3_600, minute: seconds % 3_600 / 60)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Days since 1970-01-01 of the last Sunday of `month`.
    static func lastSunday(year: Int, month: Int) -> Int64 {
        let last = days(year: year, month: month + 1, day: 1) - 1
        let weekday = (last + 4) % 7  // 1970-01-01 was a Thursday (4); Sunday = 0
        return Int64(last - weekday)
    }

    /// Days since 1970-01-01 (H. Hinnant's days_from_civil).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    // MARK: Byte helpers

    /// ISO-8859-1 bytes of text made of code points below 256.
    package static func latin1(_ text: String) -> [UInt8] {
        text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    static func appendInt(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        var digits: [UInt8] = []
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        } while v > 0
        out.append(contentsOf: digits.reversed())
    }

    static func append2(_ value: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") + UInt8(value / 10))
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `scaled` / 10^decimals with exactly `decimals` digits after `separator` (`-0,5`, `12,3`).
    static func appendFixed(_ scaled: Int64, decimals: Int, separator: UInt8, to out: inout [UInt8]) {
        if scaled < 0 { out.append(UInt8(ascii: "-")) }
        var unit: UInt64 = 1
        for _ in 0..<decimals { unit *= 10 }
        let magnitude = scaled.magnitude
        appendInt(Int(magnitude / unit), to: &out)
        out.append(separator)
        var fraction = magnitude % unit
        var digits: [UInt8] = []
        for _ in 0..<decimals {
            digits.append(UInt8(ascii: "0") + UInt8(fraction % 10))
            fraction /= 10
        }
        out.append(contentsOf: digits.reversed())
    }

    /// `2024-10-24 22:00:00+00`.
    static func appendUTC(_ seconds: Int64, to out: inout [UInt8]) {
        let date = civil(Int(floorDiv(seconds, 86_400)))
        let inDay = Int(seconds - floorDiv(seconds, 86_400) * 86_400)
        appendInt(date.year, to: &out); out.append(UInt8(ascii: "-"))
        append2(date.month, to: &out); out.append(UInt8(ascii: "-"))
        append2(date.day, to: &out); out.append(UInt8(ascii: " "))
        append2(inDay / 3_600, to: &out); out.append(UInt8(ascii: ":"))
        append2(inDay % 3_600 / 60, to: &out); out.append(UInt8(ascii: ":"))
        append2(inDay % 60, to: &out)
        out.append(contentsOf: Array("+00".utf8))
    }
}
