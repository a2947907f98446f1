import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

extension TextEncoding: ConfigChoice {}

/// Municipal traffic and bicycle counter exports as CSV, in two layouts:
///
/// - `hourly-rows`: one row per local hour (`1/1/2016 0:00,137,49,88,…`), a total column and
///   optional direction columns (each direction becomes its own station `<station>:<suffix>`);
/// - `hour-columns`: one file per day, one row per counter, one column per local hour
///   (`MQ_03290_FV12_GR (MQ0);80;166;…`), the date only in the first header cell.
///
/// Counts cover the local wall-clock hour they are labelled with, mapped to UTC: usually one hour;
/// the autumn hour 02:00 that a file lists once covers both real hours (two hours long); the spring
/// hour 02:00 does not exist. The placeholder row for it that some exports insert (zeros, repeated
/// timestamp of 03:00) is dropped. Text in a count cell (`technische Störung`) quarantines the row
/// naming the column; the other columns of the row are kept. Footers (`Jahressumme`) are skipped.
struct CountersConnector: ConfiguredConnector {
    let kind = "counters-csv"
    let summary = "Municipal bicycle / vehicle counter CSV (hourly rows or one column per hour), local time with DST"

    enum Layout: String, ConfigChoice {
        case hourlyRows = "hourly-rows", hourColumns = "hour-columns"
    }

    enum Property: String, ConfigChoice {
        case bicycleCount = "bicycle_count", vehicleCount = "vehicle_count"
    }

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true, "the CSV URL or local files (`*` matches several, e.g. one file per day)")
        static let layout = DefaultedSetting("layout", default: Layout.hourlyRows,
                                             "hourly-rows: one row per hour; hour-columns: one row per counter, one column per hour of the day")
        static let property = DefaultedSetting("property", default: Property.bicycleCount, "what is counted")
        static let station = Setting<String>("station", "the counter's id for hourly-rows files without a station column (e.g. neutor)")
        static let stationName = Setting<String>("station_name", "the counter's name (hourly-rows)")
        static let stationColumn = Setting<String>("station_column", "the column with the counter id; default for hour-columns: the first column")
        static let timeColumn = Setting<String>("time_column", "hourly-rows: the column with the hour; default: the first column")
        static let timeFormat = DefaultedSetting("time_format", default: "M/d/yyyy H:mm", "hourly-rows: the pattern of the hour cells (local time, start of the hour)")
        static let countColumn = Setting<String>("count_column", "hourly-rows: the column with the total count; default: the second column")
        static let directions = Setting<[String: String]>("directions", "hourly-rows: direction columns → station suffix, e.g. {\"FR stadteinwärts\": in}")
        static let date = Setting<String>("date", "hour-columns: the day (yyyy-MM-dd) when the first header cell does not name it")
        static let timezone = DefaultedSetting.timezone(default: "Europe/Berlin", "the time zone of the local times")
        static let encoding = DefaultedSetting("encoding", default: TextEncoding.utf8, "the file's character encoding")
        static let delimiter = Setting<String>("delimiter", "the field separator; default: ',' for hourly-rows, ';' for hour-columns")
        static let keys = [url.key, layout.key, property.key, station.key, stationName.key, stationColumn.key, timeColumn.key, timeFormat.key,
                           countColumn.key, directions.key, date.key, timezone.key, encoding.key, delimiter.key]

        var url: String
        var layout: Layout
        var property: Property
        var station: String?
        var stationName: String?
        var stationColumn: String?
        var timeColumn: String?
        var timeFormat: String
        var countColumn: String?
        var directions: [String: String]
        var date: (year: Int, month: Int, day: Int)?
        var timezone: String
        var csv: CSVOptions

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            layout = config[Self.layout]
            property = config[Self.property]
            station = config[Self.station]
            stationName = config[Self.stationName]
            stationColumn = config[Self.stationColumn]
            timeColumn = config[Self.timeColumn]
            timeFormat = config[Self.timeFormat]
            countColumn = config[Self.countColumn]
            directions = config[Self.directions] ?? [:]
            date = config[Self.date].flatMap(CountersConnector.day(in:))
            timezone = config[Self.timezone]
            csv = CSVOptions()
            csv.delimiter = config[Self.delimiter]?.utf8.first ?? UInt8(ascii: layout == .hourColumns ? ";" : ",")
            csv.encoding = config[Self.encoding]
        }
    }
    let sampleYAML = """
        version: 1
        name: muenster-fahrrad-neutor
        tenant: "05515000"
        source:
          kind: counters-csv
          url: https://raw.githubusercontent.com/codeformuenster/open-data/master/verkehrsdaten/fahrrad/zaehlstelle_neutor_2016_stundenauswertung.csv
          layout: hourly-rows
          property: bicycle_count
          station: neutor
          station_name: Neutor
          count_column: Neutor (gesamt)
          directions: { "FR stadteinwärts": stadteinwaerts, "FR stadtauswärts": stadtauswaerts }
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        let layout = config[C.layout]
        if layout == .hourlyRows, !config.has(C.station), !config.has(C.stationColumn) {
            problems.append(ConfigProblem(key: C.station.name, "hourly-rows needs 'station' (the counter's id) or 'station_column'"))
        }
        if layout == .hourColumns {
            for key in [C.timeColumn.key, C.countColumn.key, C.directions.key, C.stationName.key] where config.has(key) {
                problems.append(ConfigProblem(key: key.name, "'\(key.name)' applies to layout hourly-rows only; hour-columns files name each counter in its row"))
            }
        }
        if let delimiter = config[C.delimiter], delimiter.utf8.count != 1 {
            problems.append(ConfigProblem(key: C.delimiter.name, "the delimiter must be one ASCII character, found '\(delimiter)'"))
        }
        if let problem = checkTimeZone(config, C.timezone) { problems.append(problem) }
        if layout == .hourlyRows {
            do { _ = try TimestampParser(format: config[C.timeFormat], zone: nil) } catch {
                problems.append(ConfigProblem(key: C.timeFormat.name, "\(error)"))
            }
        }
        if let date = config[C.date], Self.day(in: date) == nil {
            problems.append(ConfigProblem(key: C.date.name, "'\(date)' is not a day like 2015-01-01"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let zone = try LocalTimeResolver(zone: config.timezone)
        let property = config.property.rawValue
        let options = config.csv
        let locations = try expandLocation(config.url)
        let makeDecoder: (String) -> AnyRecordDecoder = { .csv(CSVDecoder(options: options, origin: $0)) }
        switch config.layout {
        case .hourColumns:
            let mapping = HourColumnsMapping(zone: zone, property: property, stationColumn: config.stationColumn, date: config.date)
            return DocumentRun(locations: locations, session: context.session, decoder: makeDecoder, mapping: mapping)
        case .hourlyRows:
            let mapping = try HourlyRowsMapping(
                zone: zone, property: property, station: config.station, stationName: config.stationName,
                stationColumn: config.stationColumn, timeColumn: config.timeColumn,
                timeFormat: config.timeFormat, countColumn: config.countColumn, directions: config.directions)
            return DocumentRun(locations: locations, session: context.session, decoder: makeDecoder, mapping: mapping)
        }
    }

    /// The first `yyyy?MM?dd` in a text (`Name  /  Date: 2015_01_01`, `2015-01-01`, a file name).
    static func day(in text: String) -> (year: Int, month: Int, day: Int)? {
        let scalars = Array(text.unicodeScalars)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= scalars.count else { return nil }
            var value = 0
            for k in from..<(from + count) {
                guard let d = Int(String(scalars[k])), scalars[k].isASCII else { return nil }
                value = value * 10 + d
            }
            return value
        }
        let separators: Set<Unicode.Scalar> = ["_", "-", "."]
        var i = 0
        while i + 10 <= scalars.count {
            if let year = digits(i, 4), separators.contains(scalars[i + 4]), let month = digits(i + 5, 2),
               separators.contains(scalars[i + 7]), let day = digits(i + 8, 2),
               (1...12).contains(month), (1...31).contains(day)
            {
                return (year, month, day)
            }
            i += 1
        }
        return nil
    }


    static let hour: Int64 = 3_600_000_000

    /// A count cell: empty → nil, a whole non-negative number → value, anything else → problem.
    static func count(_ cell: String, column: String) throws(FieldProblem) -> Double? {
        let text = cell.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return nil }
        guard let value = Numbers.parse(text, decimalComma: false), value >= 0, value == value.rounded() else {
            throw FieldProblem(field: column, "'\(text)' is not a count")
        }
        return value
    }

    /// The UTC interval of a local wall-clock hour. A repeated autumn hour covers both occurrences
    /// (two hours); an hour whose end falls into the spring gap ends one hour after its start.
    /// Nil when the whole hour falls into the spring gap.
    static func interval(_ zone: LocalTimeResolver, _ local: (year: Int, month: Int, day: Int, hour: Int)) -> (start: Int64, end: Int64)? {
        let first = zone.with(ambiguity: .first)
        guard let start = try? first.utcMicroseconds(year: local.year, month: local.month, day: local.day, hour: local.hour) else {
            return nil
        }
        let next = local.hour + 1   // hour 24 is accepted as the end of the day
        guard let end = try? first.utcMicroseconds(year: local.year, month: local.month, day: local.day, hour: next) else {
            return (start, start + hour)
        }
        return (start, end)
    }
}

// MARK: - One row per hour

extension CountersConnector {
    struct HourlyRowsMapping: RecordMapping {
        let zone: LocalTimeResolver
        let property: String
        let kindName: String
        let station: String?
        let stationName: String?
        let stationColumn: String?
        let timeColumn: String?
        let countColumn: String?
        let directions: [(column: String, suffix: String)]
        let parser: TimestampParser
        var stations = StationTracker()
        /// A row whose meaning depends on the next one: a zero row right after the spring gap (a
        /// placeholder when the next row repeats its time) or an autumn 02:00 row (both hours unless
        /// the next row repeats it).
        var pending: Pending?

        struct Pending {
            var local: Int64
            var station: String
            var interval: (start: Int64, end: Int64)
            var placeholder: Bool
            var values: [(key: String, value: Double)]
        }

        init(zone: LocalTimeResolver, property: String, station: String?, stationName: String?, stationColumn: String?,
             timeColumn: String?, timeFormat: String, countColumn: String?, directions: [String: String]) throws {
            self.zone = zone
            self.property = property
            kindName = property == "vehicle_count" ? "traffic_counter" : "bicycle_counter"
            self.station = station
            self.stationName = stationName
            self.stationColumn = stationColumn
            self.timeColumn = timeColumn
            self.countColumn = countColumn
            self.directions = directions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            parser = try TimestampParser(format: timeFormat, zone: .utc)
        }

        static let footerWords = ["jahressumme", "summe", "gesamt", "total", "monatssumme", "mittelwert"]

        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            let at = record.location
            let names = record.fields.names
            // Footer: an all-empty row, then `Jahressumme,4105177,,…`.
            if record.values.allSatisfy({ $0.isNull || $0.text.trimmingCharacters(in: .whitespaces).isEmpty }) { return [] }
            let timeName = timeColumn ?? names[0]
            let timeText = record[timeName]?.text.trimmingCharacters(in: .whitespaces) ?? ""
            let lowered = timeText.lowercased()
            if Self.footerWords.contains(where: { lowered.hasPrefix($0) }) { return [] }

            guard let localAsUTC = try? parser.parse(timeText) else {
                return [RecordError(at, field: timeName, "'\(timeText)' is not a time like '\(parser.format)'")]
            }
            let id: String
            if let stationColumn {
                id = record[stationColumn]?.text.trimmingCharacters(in: .whitespaces) ?? ""
                guard !id.isEmpty else { return [RecordError(at, field: stationColumn, "missing counter id")] }
            } else {
                id = station ?? ""
            }
            let totalName = countColumn ?? (names.count > 1 ? names[1] : names[0])
            guard record.fields.position(of: totalName) != nil else {
                return [RecordError(at, field: totalName, "no column '\(totalName)' (columns: \(names.joined(separator: ", ")))")]
            }

            // Counts per station key, and problems per column.
            var problems: [RecordError] = []
            var values: [(key: String, value: Double)] = []
            let base = "counters-csv:\(id)"
            let columns = [(column: totalName, suffix: "")] + directions
            for (column, suffix) in columns {
                guard record.fields.position(of: column) != nil else {
                    problems.append(RecordError(at, field: column, "no column '\(column)'"))
                    continue
                }
                do {
                    guard let value = try CountersConnector.count(record[column]?.text ?? "", column: column) else { continue }
                    let key = suffix.isEmpty ? base : "\(base):\(suffix)"
                    emitStation(key, id: id, direction: suffix.isEmpty ? nil : (column, suffix), into: &items)
                    values.append((key, value))
                } catch {
                    problems.append(RecordError(at, field: error.field, error.reason))
                }
            }

            let local = CountersConnector.civil(localAsUTC)
            if let held = pending {
                pending = nil
                if held.local == localAsUTC, held.station == id {
                    if !held.placeholder {
                        // Both autumn 02:00 hours are listed: the held row is the first one only.
                        emit(held.values, (held.interval.start, held.interval.start + CountersConnector.hour), into: &items)
                        if let later = try? zone.with(ambiguity: .second).utcMicroseconds(
                            year: local.year, month: local.month, day: local.day, hour: local.hour)
                        {
                            emit(values, (later, later + CountersConnector.hour), into: &items)
                            return problems
                        }
                    }
                    // A placeholder: dropped; this row is the real hour.
                } else {
                    emit(held.values, held.interval, into: &items)
                }
            }

            guard let interval = CountersConnector.interval(zone, local) else {
                // The skipped spring hour itself (02:00): only an empty or zero placeholder is acceptable.
                if values.allSatisfy({ $0.value == 0 }) { return problems }
                return problems + [RecordError(at, field: timeName, "\(timeText) does not exist in \(zone.identifier) (clocks skip this hour)")]
            }
            if interval.end - interval.start > CountersConnector.hour {
                pending = Pending(local: localAsUTC, station: id, interval: interval, placeholder: false, values: values)
                return problems
            }
            if values.allSatisfy({ $0.value == 0 }), CountersConnector.followsGap(zone, local) {
                pending = Pending(local: localAsUTC, station: id, interval: interval, placeholder: true, values: values)
                return problems
            }
            emit(values, interval, into: &items)
            return problems
        }

        private mutating func emitStation(_ key: String, id: String, direction: (column: String, suffix: String)?, into items: inout [StagedItem]) {
            let name = stationName ?? id
            let kindName = kindName
            stations.emit(key, into: &items) {
                var properties: [JSONValue.Member] = [.init("counter_id", .string(id))]
                var title = name
                if let direction {
                    properties.append(.init("direction", .string(direction.column)))
                    properties.append(.init("parent", .string("counters-csv:\(id)")))
                    title += " (\(direction.column))"
                }
                return Station(key: key, name: title, kind: kindName, properties: .object(properties))
            }
        }

        private func emit(_ values: [(key: String, value: Double)], _ interval: (start: Int64, end: Int64), into items: inout [StagedItem]) {
            for (key, value) in values {
                items.append(.observation(Observation(
                    stationKey: key, property: property, phenomenonStart: interval.start, phenomenonEnd: interval.end, result: value)))
            }
        }
    }

    /// Year, month, day and hour of a local wall-clock time read as if it were UTC.
    static func civil(_ localAsUTC: Int64) -> (year: Int, month: Int, day: Int, hour: Int) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let seconds = Double(localAsUTC / 1_000_000)
        let c = calendar.dateComponents([.year, .month, .day, .hour], from: Date(timeIntervalSince1970: seconds))
        return (c.year!, c.month!, c.day!, c.hour!)
    }

    /// Whether the local hour before this one fell into a spring gap (this is the first hour after it).
    static func followsGap(_ zone: LocalTimeResolver, _ local: (year: Int, month: Int, day: Int, hour: Int)) -> Bool {
        guard local.hour > 0 else { return false }
        do {
            _ = try zone.utcMicroseconds(year: local.year, month: local.month, day: local.day, hour: local.hour - 1)
            return false
        } catch {
            if case .nonexistent = error { return true }
            return false
        }
    }
}

// MARK: - One column per hour

extension CountersConnector {
    struct HourColumnsMapping: RecordMapping {
        /// An hour column: its position, label and UTC interval (nil: the hour does not exist that day).
        struct Column {
            let index: Int
            let label: String
            let interval: (start: Int64, end: Int64)?
        }

        let zone: LocalTimeResolver
        let property: String
        let kindName: String
        let stationColumn: String?
        let date: (year: Int, month: Int, day: Int)?
        var plan: Result<[Column], FieldProblem>?
        var planFields: FieldIndex?
        var stations = StationTracker()

        init(zone: LocalTimeResolver, property: String, stationColumn: String?, date: (year: Int, month: Int, day: Int)?) {
            self.zone = zone
            self.property = property
            kindName = property == "vehicle_count" ? "traffic_counter" : "bicycle_counter"
            self.stationColumn = stationColumn
            self.date = date
        }

        /// Maps the hour columns of one file to UTC intervals. When there are as many columns as the
        /// day has hours (23 in spring, 25 in autumn), column k is the k-th real hour. With 24 columns
        /// on a DST day the labels count: in spring `2:00` has no hour, in autumn `2:00` covers both.
        private func makePlan(_ names: [String], origin: String) -> Result<[Column], FieldProblem> {
            guard let day = date ?? CountersConnector.day(in: names.first ?? "") ?? CountersConnector.day(in: (origin as NSString).lastPathComponent) else {
                return .failure(FieldProblem(field: names.first, "no date in the first header cell '\(names.first ?? "")' or the file name; set 'date'"))
            }
            var hours: [(index: Int, label: String, hour: Int)] = []
            for (index, name) in names.enumerated() {
                let label = name.split(separator: "_").first.map(String.init) ?? name   // `2:00_2` for a repeated label
                let parts = label.split(separator: ":")
                guard parts.count == 2, let h = Int(parts[0]), (0...23).contains(h), Int(parts[1]) == 0 else { continue }
                hours.append((index, name, h))
            }
            guard !hours.isEmpty else { return .failure(FieldProblem(field: nil, "no hour columns (0:00 … 23:00) in the header")) }
            guard let midnight = try? zone.utcMicroseconds(year: day.year, month: day.month, day: day.day, hour: 0),
                  let nextMidnight = try? zone.utcMicroseconds(year: day.year, month: day.month, day: day.day, hour: 24)
            else {
                return .failure(FieldProblem(field: nil, "\(day.year)-\(day.month)-\(day.day) is not a day in \(zone.identifier)"))
            }
            let realHours = Int((nextMidnight - midnight) / CountersConnector.hour)
            if hours.count == realHours {
                return .success(hours.enumerated().map { k, column in
                    let start = midnight + Int64(k) * CountersConnector.hour
                    return Column(index: column.index, label: column.label, interval: (start, start + CountersConnector.hour))
                })
            }
            guard hours.count == 24 else {
                return .failure(FieldProblem(field: nil, "\(hours.count) hour columns for a day of \(realHours) hours in \(zone.identifier)"))
            }
            return .success(hours.map { column in
                Column(index: column.index, label: column.label,
                       interval: CountersConnector.interval(zone, (day.year, day.month, day.day, column.hour)))
            })
        }

        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            let at = record.location
            if plan == nil || planFields !== record.fields {
                plan = makePlan(record.fields.names, origin: at.origin)
                planFields = record.fields
            }
            let columns: [Column]
            switch plan! {
            case .success(let c): columns = c
            case .failure(let problem): return [RecordError(at, field: problem.field, problem.reason)]
            }
            let idName = stationColumn ?? record.fields.names[0]
            let label = record[idName]?.text.trimmingCharacters(in: .whitespaces) ?? ""
            guard !label.isEmpty else { return [RecordError(at, field: idName, "missing counter id")] }
            let (id, properties) = Self.parseLabel(label)
            let key = "counters-csv:\(id)"
            let kindName = kindName
            stations.emit(key, into: &items) {
                Station(key: key, name: label, kind: kindName, properties: .object(properties))
            }
            var problems: [RecordError] = []
            for column in columns {
                do {
                    guard let value = try CountersConnector.count(record.values[column.index].text, column: column.label) else { continue }
                    guard let interval = column.interval else {
                        if value == 0 { continue }
                        problems.append(RecordError(at, field: column.label,
                            "count \(Int(value)) in hour \(column.label), which does not exist that day in \(zone.identifier) (clocks skip it); are the hour columns shifted?"))
                        continue
                    }
                    items.append(.observation(Observation(
                        stationKey: key, property: property, phenomenonStart: interval.start, phenomenonEnd: interval.end, result: value)))
                } catch {
                    problems.append(RecordError(at, field: error.field, error.reason))
                }
            }
            return problems
        }

        /// `MQ_03290_FV12_GR (MQ0)` → id `MQ_03290_FV12_GR`, detector `MQ0`, junction `03290`,
        /// lane group `FV12`, turn `GR` (G straight, L left, R right); `LSA 3290 Schleifen (MQ1012)`
        /// is the sum of a junction's loops.
        static func parseLabel(_ label: String) -> (String, [JSONValue.Member]) {
            var id = label
            var properties: [JSONValue.Member] = []
            if label.hasSuffix(")"), let open = label.lastIndex(of: "(") {
                id = label[..<open].trimmingCharacters(in: .whitespaces)
                let detector = label[label.index(after: open)..<label.index(before: label.endIndex)]
                properties.append(.init("detector", .string(String(detector))))
            }
            let parts = id.split(separator: "_").map(String.init)
            let words = id.split(separator: " ").map(String.init)
            if parts.count == 4, parts[0] == "MQ", parts[2].hasPrefix("FV") {
                properties.append(.init("junction", .string(parts[1])))
                properties.append(.init("lane_group", .string(parts[2])))
                properties.append(.init("turn", .string(parts[3])))
            } else if words.count == 3, words[0] == "LSA", words[2] == "Schleifen" {
                // `LSA 3290 Schleifen`: all loops of one signal-controlled junction together.
                properties.append(.init("junction", .string(words[1])))
                properties.append(.init("all_loops", .bool(true)))
            }
            return (id.isEmpty ? label : id, properties)
        }
    }
}
