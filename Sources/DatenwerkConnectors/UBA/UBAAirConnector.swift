import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// Umweltbundesamt air data API v3, CSV output (`/api/air_data/v3/airquality/csv`).
///
/// One row per station and hour: station code, a date cell written as `"'2022-01-01 24:00'"`, one
/// column per component (`-` when missing) and an air quality index. Times are hour-ending and in
/// legal time (CET/CEST, as the footer says): `02:00` is followed by `04:00` in spring and `03:00`
/// appears twice in autumn, told apart only by row order. Header labels are localised (`lang=de`),
/// so columns are recognised by the chemical formula in brackets (`(NO₂)`, `(PM₂,₅)`), not by text.
struct UBAAirConnector: ConfiguredConnector {
    let kind = "uba-air"
    let summary = "Umweltbundesamt air data API v3 (CSV): NO2, O3, PM10, PM2.5, SO2, CO per station and hour"

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true,
                                         "the API URL (…/air_data/v3/airquality/csv?…&station=<id>) or local CSV files (`*` matches several)")
        static let station = Setting<String>("station", "only rows of this station code (e.g. DENW095); the API is asked by numeric id, the file names the code")
        static let stationName = Setting<String>("station_name", "the station's name (the CSV carries only its code), e.g. Münster-Geist")
        static let components = Setting<[String]>("components", "only these components (NO2, O3, PM10, PM2.5, SO2, CO); default: all columns of the file")
        static let timezone = DefaultedSetting.timezone(default: "Europe/Berlin", "the time zone of the date cells; UBA writes legal time (CET/CEST)")
        static let keys = [url.key, station.key, stationName.key, components.key, timezone.key]

        var url: String
        var station: String?
        var stationName: String?
        /// The known components asked for (nil: every column of the file).
        var components: Set<String>?
        var timezone: String

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            station = config[Self.station]
            stationName = config[Self.stationName]
            components = config[Self.components].map { Set($0.compactMap { UBAAirConnector.component(named: $0)?.name }) }
            timezone = config[Self.timezone]
        }
    }
    let sampleYAML = """
        version: 1
        name: uba-muenster-geist
        tenant: "05515000"
        schedule: "20 * * * *"
        source:
          kind: uba-air
          # Station 1140 is DENW095 (Münster-Geist, urban background). Without `lang` the labels are English.
          url: "https://www.umweltbundesamt.de/api/air_data/v3/airquality/csv?date_from=2024-01-01&date_to=2024-01-02&time_from=1&time_to=24&station=1140"
          station: DENW095
          station_name: Münster-Geist
          components: [NO2, O3, PM10, PM2.5]
        """

    /// A component the connector knows: formula as it appears in brackets, property, and the
    /// averaging period UBA uses for it in the air quality index (hours).
    struct Component: Sendable {
        let name: String
        let property: String
        let unit: String
        let hours: Int64
    }

    static let components: [Component] = [
        Component(name: "NO2", property: "no2_concentration", unit: "ug/m3", hours: 1),
        Component(name: "O3", property: "o3_concentration", unit: "ug/m3", hours: 1),
        Component(name: "PM10", property: "pm10_concentration", unit: "ug/m3", hours: 24),
        Component(name: "PM2.5", property: "pm2_5_concentration", unit: "ug/m3", hours: 24),
        Component(name: "SO2", property: "so2_concentration", unit: "ug/m3", hours: 1),
        Component(name: "CO", property: "co_concentration", unit: "mg/m3", hours: 8),
    ]

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        let known = Self.components.map(\.name)
        for name in config[C.components] ?? [] where Self.component(named: name) == nil {
            let hint = closestMatch(to: name, in: known).map { "; did you mean '\($0)'?" } ?? ""
            problems.append(ConfigProblem(key: C.components.name, "unknown component '\(name)' (known: \(known.joined(separator: ", ")))\(hint)"))
        }
        if let problem = checkTimeZone(config, C.timezone) { problems.append(problem) }
        return problems
    }

    /// `PM2,5`, `pm25`, `PM₂.₅` → the PM2.5 component.
    static func component(named text: String) -> Component? {
        let key = normalizedFormula(text).replacingOccurrences(of: ".", with: "")
        return components.first { $0.name.replacingOccurrences(of: ".", with: "") == key }
    }

    /// Upper case, ASCII digits for subscripts, `,` read as a decimal point: `PM₂,₅` → `PM2.5`.
    static func normalizedFormula(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x2080...0x2089: out.unicodeScalars.append(Unicode.Scalar(scalar.value - 0x2080 + 0x30)!)
            case 0x2C, 0x2E: out += "."   // , .
            case 0x20: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out.uppercased()
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let mapping = try Mapping(
            zone: LocalTimeResolver(zone: config.timezone), station: config.station, stationName: config.stationName,
            requestedID: Self.stationID(inURL: config.url), components: config.components)
        return DocumentRun(locations: try expandLocation(config.url), session: context.session, decoder: { origin in
            var options = CSVOptions()
            options.delimiter = UInt8(ascii: ";")
            // The footer: an empty line, then one quoted "Source: …" / "Quelle: …" statement.
            options.commentPrefixes = ["\"Source:", "\"Quelle:", "Source:", "Quelle:"]
            return .csv(CSVDecoder(options: options, origin: origin))
        }, mapping: mapping)
    }

    /// The numeric station id of an API URL (`…&station=1140`), kept next to the code of the file.
    static func stationID(inURL url: String) -> String? {
        guard url.hasPrefix("http"), let components = URLComponents(string: url) else { return nil }
        return components.queryItems?.first { $0.name == "station" }?.value
    }

    struct Mapping: RecordMapping {
        /// A value column: its position, component and unit conversion.
        struct Column {
            let index: Int
            let label: String
            let component: Component
            let conversion: Units.Conversion
        }

        let zone: LocalTimeResolver
        let later: LocalTimeResolver
        let station: String?
        let stationName: String?
        let requestedID: String?
        let components: Set<String>?
        var columns: [Column]?
        /// Every column from the third on offers one value per row (components and the air quality index).
        var offered = 0
        var stations = StationTracker()
        var tally: ValueTally? = ValueTally()
        /// The last interval start per station, to tell the two autumn `03:00` rows apart.
        var lastStart: [String: Int64] = [:]

        init(zone: LocalTimeResolver, station: String?, stationName: String?, requestedID: String?, components: Set<String>?) throws {
            self.zone = zone.with(ambiguity: .first)
            self.later = zone.with(ambiguity: .second)
            self.station = station
            self.stationName = stationName
            self.requestedID = requestedID
            self.components = components
        }

        /// Finds the value columns by the formula in brackets and the unit after ` in `.
        private func plan(_ names: [String]) throws(FieldProblem) -> [Column] {
            var columns: [Column] = []
            for (index, label) in names.enumerated() where index >= 2 {
                guard let open = label.firstIndex(of: "("), let close = label[open...].firstIndex(of: ")"),
                      let component = UBAAirConnector.component(named: String(label[label.index(after: open)..<close]))
                else { continue }   // air quality index, or a component outside the vocabulary
                if let components, !components.contains(component.name) { continue }
                var unit = component.unit
                if let range = label.range(of: " in ", options: .backwards) {
                    let text = String(label[range.upperBound...])
                    guard let symbol = Units.canonicalSymbol(text) else {
                        throw FieldProblem(field: label, "unknown unit '\(text)' in the header")
                    }
                    unit = symbol
                }
                guard let target = Vocabulary.property(component.property) else { continue }
                do {
                    columns.append(Column(index: index, label: label, component: component,
                                          conversion: try Units.conversion(from: unit, to: target.unit)))
                } catch {
                    throw FieldProblem(field: label, "\(error)")
                }
            }
            return columns
        }

        /// Accounting: each row offers one value per column after the date. A component column's `-` (or empty
        /// cell) is `missing_value`; the air quality index and components outside the vocabulary or not asked
        /// for in `components` are `unmapped_property`; rows of another station than `station` are `filtered`.
        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            let at = record.location
            offered = max(0, record.fields.names.count - 2)
            if columns == nil {
                do { columns = try plan(record.fields.names) } catch {
                    tally?.read(offered)
                    return [RecordError(at, field: error.field, error.reason)]
                }
            }
            let code = record.values.first?.text.trimmingCharacters(in: .whitespaces) ?? ""
            guard !code.isEmpty else {
                tally?.read(offered)
                return [RecordError(at, field: record.fields.names.first, "missing station code")]
            }
            if let station, station != code {
                tally?.readAndSkip(.filtered, offered)
                return []
            }
            let dateField = record.fields.names.count > 1 ? record.fields.names[1] : "Date"
            let dateText = record.values.count > 1 ? record.values[1].text : ""
            let end: Int64
            do {
                end = try hourEnd(dateText, station: code)
            } catch {
                tally?.read(offered)
                return [RecordError(at, field: dateField, error.reason)]
            }
            let key = "uba-air:\(code)"
            stations.emit(key, into: &items) {
                var properties: [JSONValue.Member] = [.init("code", .string(code)), .init("network", .string("UBA"))]
                if let requestedID { properties.append(.init("uba_id", .string(requestedID))) }
                return Station(key: key, name: stationName ?? code, kind: "air_quality_station", properties: .object(properties))
            }
            var problems: [RecordError] = []
            tally?.read(offered)
            let mapped = Set((columns ?? []).map(\.index))
            for index in 2..<(offered + 2) where !mapped.contains(index) {
                tally?.skip(Self.isMissing(record, index) ? .missingValue : .unmappedProperty)
            }
            for column in columns ?? [] {
                if Self.isMissing(record, column.index) {
                    tally?.skip(.missingValue)
                    continue
                }
                let cell = record.values[column.index].text.trimmingCharacters(in: .whitespaces)
                guard let value = Numbers.parse(cell, decimalComma: false) else {
                    problems.append(RecordError(at, field: column.label, "'\(cell)' is not a number (\(column.component.name))"))
                    continue
                }
                let hour: Int64 = 3_600_000_000
                items.append(.observation(Observation(
                    stationKey: key, property: column.component.property,
                    phenomenonStart: end - column.component.hours * hour, phenomenonEnd: end,
                    result: column.conversion.apply(value))))
            }
            return problems
        }

        /// An absent or empty cell, or UBA's missing marker `-`.
        static func isMissing(_ record: Record, _ index: Int) -> Bool {
            guard index < record.values.count, !record.values[index].isNull else { return true }
            let cell = record.values[index].text.trimmingCharacters(in: .whitespaces)
            return cell.isEmpty || cell == "-"
        }

        /// The UTC end of the hour a date cell names (`'2022-10-30 03:00'`, hour-ending, `24:00` allowed).
        /// The hour that ends there starts one local hour earlier; a local start that occurs twice
        /// is the later one when the previous row of the station already took the earlier one.
        private mutating func hourEnd(_ text: String, station: String) throws(FieldProblem) -> Int64 {
            let cell = text.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
            let parts = cell.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int($0) }
            guard parts.count == 5, let year = parts[0], let month = parts[1], let day = parts[2], let hour = parts[3], let minute = parts[4],
                  minute == 0, (1...24).contains(hour)
            else {
                throw FieldProblem(field: nil, "'\(cell)' is not an hour like '2022-01-01 01:00' (01:00 … 24:00)")
            }
            let hourMicros: Int64 = 3_600_000_000
            do {
                var start = try zone.utcMicroseconds(year: year, month: month, day: day, hour: hour - 1)
                let second = try later.utcMicroseconds(year: year, month: month, day: day, hour: hour - 1)
                if second != start, let last = lastStart[station], last >= start { start = second }
                lastStart[station] = start
                return start + hourMicros
            } catch {
                throw FieldProblem(field: nil, "'\(cell)' cannot end an hour: its start \(error)")
            }
        }
    }
}
