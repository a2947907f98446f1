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
///   (`MQ_03290_FV12_GR (MQ0);80;166;…`), the date only in the first header cell. On DST days the header
///   still lists 24 hours, but a row holds 23 values (spring) or 25 (autumn): the number of values a row
///   has, not the header, says which hours it holds (see `HourColumnsMapping.map`).
///
/// Counts cover the local wall-clock hour they are labelled with, mapped to UTC: usually one hour;
/// the autumn hour 02:00 that a file lists once covers both real hours (two hours long); the spring
/// hour 02:00 does not exist. The placeholder row for it that some exports insert (zeros, repeated
/// timestamp of 03:00) is counted as `dst_placeholder`, not loaded. Text in a count cell
/// (`technische Störung`) quarantines that cell naming the column; the other columns of the row are kept.
/// Footers (`Jahressumme`) are counted as `footer`. Every value is accounted for: see the rules at each
/// mapping's `map`.
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
            var wide = options
            wide.header = false
            wide.columns = HourColumnsMapping.columns
            let makeDecoder: (String) -> AnyRecordDecoder = { .csv(CSVDecoder(options: wide, origin: $0)) }
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
        /// Set when the row just read was the first of two autumn 02:00 rows: the UTC start of the second.
        var secondOf: Int64?
        /// Set while the row after a dropped placeholder is mapped (it is the real hour, never a placeholder).
        var heldPlaceholder = false
        var tally: ValueTally? = ValueTally()

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

        /// Accounting: every column besides the time and station columns offers one value per row. The count and
        /// direction columns are loaded; an empty cell is `missing_value`; other columns (temperature, wind,
        /// weather text) are `unmapped_property` (`missing_value` when empty); a footer row counts all its
        /// cells as `footer`; the spring placeholder row's zeros are `dst_placeholder`. A held-back row's
        /// counts are read when their fate is known (the next row, or the end of the document).
        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            let at = record.location
            let names = record.fields.names
            let timeName = timeColumn ?? names[0]
            let totalName = countColumn ?? (names.count > 1 ? names[1] : names[0])
            let mapped = Set([totalName] + directions.map(\.column))
            let others = names.filter { $0 != timeName && $0 != stationColumn && !mapped.contains($0) }
            let valueColumns = mapped.count + others.count
            func isEmpty(_ name: String) -> Bool {
                guard let cell = record[name], !cell.isNull else { return true }
                return cell.text.trimmingCharacters(in: .whitespaces).isEmpty
            }
            // A row held back for this one is settled first (before anything here can return).
            let timeText = record[timeName]?.text.trimmingCharacters(in: .whitespaces) ?? ""
            let localAsUTC = try? parser.parse(timeText)
            let rowID = stationColumn.map { record[$0]?.text.trimmingCharacters(in: .whitespaces) ?? "" } ?? (station ?? "")
            if let held = pending {
                pending = nil
                tally?.read(held.values.count)
                if held.local == localAsUTC, held.station == rowID {
                    if held.placeholder {
                        // The placeholder for the missing spring hour: this row is the real hour.
                        tally?.skip(.dstPlaceholder, held.values.count)
                        heldPlaceholder = true
                    } else {
                        // Both autumn 02:00 hours are listed: the held row is the first one only.
                        emit(held.values, (held.interval.start, held.interval.start + CountersConnector.hour), into: &items)
                        secondOf = held.interval.start + CountersConnector.hour
                    }
                } else {
                    emit(held.values, held.interval, into: &items)
                }
            }
            let repeatedHour = secondOf
            secondOf = nil
            defer { heldPlaceholder = false }

            // Footer: an all-empty row, then `Jahressumme,4105177,,…`.
            if names.allSatisfy(isEmpty) {
                tally?.readAndSkip(.missingValue, valueColumns)
                return []
            }
            let lowered = timeText.lowercased()
            if Self.footerWords.contains(where: { lowered.hasPrefix($0) }) {
                tally?.readAndSkip(.footer, valueColumns)
                return []
            }
            for name in others {
                tally?.readAndSkip(isEmpty(name) ? .missingValue : .unmappedProperty)
            }
            let counted = mapped.count
            guard let localAsUTC else {
                tally?.read(counted)
                return [RecordError(at, field: timeName, "'\(timeText)' is not a time like '\(parser.format)'")]
            }
            if stationColumn != nil, rowID.isEmpty {
                tally?.read(counted)
                return [RecordError(at, field: stationColumn, "missing counter id")]
            }
            let id = rowID
            guard record.fields.position(of: totalName) != nil else {
                tally?.read(counted)
                return [RecordError(at, field: totalName, "no column '\(totalName)' (columns: \(names.joined(separator: ", ")))")]
            }

            // Counts per station key, and problems per column. Counts read now: empty, bad; the others when
            // their hour is known (now, or with the next row).
            var problems: [RecordError] = []
            var values: [(key: String, value: Double)] = []
            let base = "counters-csv:\(id)"
            let columns = [(column: totalName, suffix: "")] + directions
            for (column, suffix) in columns {
                guard record.fields.position(of: column) != nil else {
                    tally?.read()
                    problems.append(RecordError(at, field: column, "no column '\(column)'"))
                    continue
                }
                do {
                    guard let value = try CountersConnector.count(record[column]?.text ?? "", column: column) else {
                        tally?.readAndSkip(.missingValue)
                        continue
                    }
                    let key = suffix.isEmpty ? base : "\(base):\(suffix)"
                    emitStation(key, id: id, direction: suffix.isEmpty ? nil : (column, suffix), into: &items)
                    values.append((key, value))
                } catch {
                    tally?.read()
                    problems.append(RecordError(at, field: error.field, error.reason))
                }
            }

            let local = CountersConnector.civil(localAsUTC)
            if let repeatedHour {
                // The second of two autumn 02:00 rows: winter time.
                tally?.read(values.count)
                emit(values, (repeatedHour, repeatedHour + CountersConnector.hour), into: &items)
                return problems
            }
            guard let interval = CountersConnector.interval(zone, local) else {
                // The skipped spring hour itself (02:00): only an empty or zero placeholder is acceptable.
                tally?.read(values.count)
                if values.allSatisfy({ $0.value == 0 }) {
                    tally?.skip(.dstPlaceholder, values.count)
                    return problems
                }
                return problems + [RecordError(at, field: timeName, "\(timeText) does not exist in \(zone.identifier) (clocks skip this hour)")]
            }
            if interval.end - interval.start > CountersConnector.hour {
                pending = Pending(local: localAsUTC, station: id, interval: interval, placeholder: false, values: values)
                return problems
            }
            if !heldPlaceholder, !values.isEmpty, values.allSatisfy({ $0.value == 0 }), CountersConnector.followsGap(zone, local) {
                pending = Pending(local: localAsUTC, station: id, interval: interval, placeholder: true, values: values)
                return problems
            }
            tally?.read(values.count)
            emit(values, interval, into: &items)
            return problems
        }

        /// A row still held back when its document ends is what it looked like: the autumn hour listed once,
        /// or real zeros after the spring gap.
        mutating func endOfDocument(into items: inout [StagedItem]) {
            guard let held = pending else { return }
            pending = nil
            secondOf = nil
            tally?.read(held.values.count)
            emit(held.values, held.interval, into: &items)
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
        /// The header row of the document in progress: the hour columns start at `first`; the day and its
        /// length in real hours (23 on the spring day, 25 on the autumn day), or why the file cannot be read.
        struct Header {
            let origin: String
            let names: [String]
            let first: Int
            let stationIndex: Int
            let day: (year: Int, month: Int, day: Int)
            let midnight: Int64
            let realHours: Int
        }

        let zone: LocalTimeResolver
        let property: String
        let kindName: String
        let stationColumn: String?
        let date: (year: Int, month: Int, day: Int)?
        var header: Result<Header, FieldProblem>?
        /// Whether the rows of this file end with a `;` after the last hour (as the Münster exports do): assumed
        /// until a row ends with a non-empty field. With it, an empty last field is that delimiter, not the
        /// 23:00 value.
        var trailingDelimiter = true
        var stations = StationTracker()
        var tally: ValueTally? = ValueTally()

        /// The decoder reads the header row as a record (`header: false`) with this many columns, so that a row
        /// with more fields than the header (the autumn day's 25 hours) reaches the mapping instead of being
        /// refused by the decoder, and a short row (the spring day's 23) is told apart by its `.null` padding.
        static let columns = (1...64).map { "column_\($0)" }

        init(zone: LocalTimeResolver, property: String, stationColumn: String?, date: (year: Int, month: Int, day: Int)?) {
            self.zone = zone
            self.property = property
            kindName = property == "vehicle_count" ? "traffic_counter" : "bicycle_counter"
            self.stationColumn = stationColumn
            self.date = date
        }

        /// Reads the header row: where the hour columns start, the day (first cell, else the file name, else `date`).
        private func readHeader(_ names: [String], origin: String) -> Result<Header, FieldProblem> {
            guard let day = date ?? CountersConnector.day(in: names.first ?? "") ?? CountersConnector.day(in: (origin as NSString).lastPathComponent) else {
                return .failure(FieldProblem(field: names.first, "no date in the first header cell '\(names.first ?? "")' or the file name; set 'date'"))
            }
            guard let first = names.firstIndex(where: { Self.hourLabel($0) != nil }) else {
                return .failure(FieldProblem(field: nil, "no hour columns (0:00 … 23:00) in the header"))
            }
            var stationIndex = 0
            if let stationColumn {
                guard let index = names.firstIndex(of: stationColumn) else {
                    return .failure(FieldProblem(field: stationColumn, "no column '\(stationColumn)' in the header"))
                }
                stationIndex = index
            }
            guard let midnight = try? zone.utcMicroseconds(year: day.year, month: day.month, day: day.day, hour: 0),
                  let nextMidnight = try? zone.utcMicroseconds(year: day.year, month: day.month, day: day.day, hour: 24)
            else {
                return .failure(FieldProblem(field: nil, "\(day.year)-\(day.month)-\(day.day) is not a day in \(zone.identifier)"))
            }
            return .success(Header(origin: origin, names: names, first: first, stationIndex: stationIndex, day: day, midnight: midnight,
                                   realHours: Int((nextMidnight - midnight) / CountersConnector.hour)))
        }

        /// `13:00` → 13; nil for anything else (a repeated label `2:00_2` reads as 2).
        static func hourLabel(_ name: String) -> Int? {
            let label = name.trimmingCharacters(in: .whitespaces).split(separator: "_").first.map(String.init) ?? name
            let parts = label.split(separator: ":")
            guard parts.count == 2, let h = Int(parts[0]), (0...23).contains(h), Int(parts[1]) == 0 else { return nil }
            return h
        }

        /// Which hours a row holds is told by its number of values, not by the header: on the spring DST day
        /// a row holds 23 (the k-th value is the k-th real hour: 0:00, 1:00, 3:00 …), on the autumn day 25
        /// (0:00, 1:00, 2:00 CEST, 2:00 CET, 3:00 …), while the header still lists 24 labels. A row of 24 values
        /// on a DST day follows the labels: the spring `2:00` has no hour (an empty or zero cell is the
        /// publisher's placeholder, counted as `dst_placeholder`; any other count is quarantined), the autumn
        /// `2:00` covers both hours. An empty last field is the trailing `;` (until a row of the file ends with a
        /// non-empty field: then the file has none). Any other number of values quarantines the row, naming its line and the count.
        mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError] {
            var at = record.location
            at.record = at.record.map { $0 - 1 }   // the header is row 1
            let present = record.values.prefix { !$0.isNull }.map(\.text)
            if record.location.record == 1 || header == nil {
                tally?.notRecords += 1
                header = readHeader(present.map { $0.trimmingCharacters(in: .whitespaces) }, origin: at.origin)
                trailingDelimiter = true
                return []
            }
            let head: Header
            switch header! {
            case .success(let h): head = h
            case .failure(let problem):
                tally?.read(max(0, present.count - 1))
                return [RecordError(at, field: problem.field, problem.reason)]
            }
            let available = max(0, present.count - head.first)
            func allowed(_ n: Int) -> Bool { n == 24 || n == head.realHours }
            var count = available
            if let last = present.last, available > 0 {
                if !last.trimmingCharacters(in: .whitespaces).isEmpty {
                    trailingDelimiter = false   // this file does not end its rows with `;`
                } else if trailingDelimiter {
                    count = available - 1
                }
            }
            tally?.read(count)
            let idName = head.stationIndex < head.names.count ? head.names[head.stationIndex] : "column \(head.stationIndex + 1)"
            let label = head.stationIndex < present.count ? present[head.stationIndex].trimmingCharacters(in: .whitespaces) : ""
            guard !label.isEmpty else { return [RecordError(at, field: idName, "missing counter id")] }
            guard allowed(count) else {
                let expected = head.realHours == 24 ? "24" : "24 or \(head.realHours)"
                return [RecordError(at, field: nil,
                    "line \(at.line ?? 0) holds \(count) hour values (\(present.count) fields) for a day of \(head.realHours) hours in \(zone.identifier); expected \(expected)")]
            }
            let (id, properties) = Self.parseLabel(label)
            let key = "counters-csv:\(id)"
            let kindName = kindName
            stations.emit(key, into: &items) {
                Station(key: key, name: label, kind: kindName, properties: .object(properties))
            }
            let byLabels = count == 24 && head.realHours != 24
            var problems: [RecordError] = []
            for k in 0..<count {
                let index = head.first + k
                let interval: (start: Int64, end: Int64)?
                let column: String
                if byLabels {
                    column = index < head.names.count ? head.names[index] : "\(k):00"
                    interval = CountersConnector.interval(zone, (head.day.year, head.day.month, head.day.day, k))
                } else {
                    let start = head.midnight + Int64(k) * CountersConnector.hour
                    interval = (start, start + CountersConnector.hour)
                    column = Self.localLabel(start, zone: zone, repeated: head.realHours == 25 && k == 3)
                }
                do {
                    guard let value = try CountersConnector.count(present[index], column: column) else {
                        tally?.skip(interval == nil ? .dstPlaceholder : .missingValue)
                        continue
                    }
                    guard let interval else {
                        if value == 0 {
                            tally?.skip(.dstPlaceholder)
                            continue
                        }
                        problems.append(RecordError(at, field: column,
                            "count \(Int(value)) in hour \(column), which does not exist that day in \(zone.identifier) (clocks skip it); are the hour columns shifted?"))
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

        /// The local wall-clock label of an hour starting at `start` (µs UTC), for messages: `3:00`, `2:00 (CET)`
        /// for the autumn day's second 2:00.
        static func localLabel(_ start: Int64, zone: LocalTimeResolver, repeated: Bool) -> String {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: zone.identifier) ?? TimeZone(identifier: "UTC")!
            let hour = calendar.component(.hour, from: Date(timeIntervalSince1970: Double(start / 1_000_000)))
            return repeated ? "\(hour):00 (second)" : "\(hour):00"
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
