import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// SMARD (Bundesnetzagentur) chart data: electricity generation per source and consumption (grid load).
///
/// Two steps: `{url}/{filter}/{region}/index_{resolution}.json` lists the block starts (epoch ms, Monday 00:00
/// Europe/Berlin), then one file per block, `{url}/{filter}/{region}/{filter}_{region}_{resolution}_{start}.json`,
/// with `series: [[epoch_ms, MWh or null], …]`. `null` means "not yet published" (the current week is padded
/// with them): skipped, not quarantined. Values are energy per interval in MWh; an interval ends one resolution
/// step after its start (days, weeks, months and years in German local time).
///
/// One station per filter and region (`smard:<filter>-<region>`), so generation by lignite and by wind never
/// share a series.
struct SMARDConnector: ConfiguredConnector {
    let kind = "smard"
    let summary = "SMARD.de (Bundesnetzagentur) chart data: electricity generation per energy source and consumption, hourly or quarter-hourly, in MWh"

    /// The length of one value, as SMARD names it in its file names.
    enum Resolution: String, ConfigChoice {
        case quarterhour, hour, day, week, month, year
    }

    /// What a filter measures.
    enum Property: String, ConfigChoice {
        case electricityGeneration = "electricity_generation"
        case electricityConsumption = "electricity_consumption"
    }

    struct Configuration: ConnectorConfiguration {
        static let filter = Setting<String>("filter", required: true, "the SMARD filter id, e.g. 4067 (wind onshore), 1223 (lignite), 410 (grid load)")
        static let region = DefaultedSetting("region", default: "DE", "DE, AT, LU, DE-LU, DE-AT-LU, 50Hertz, Amprion, TenneT, TransnetBW, APG, Creos")
        static let resolution = DefaultedSetting("resolution", default: Resolution.hour, "length of one value")
        static let property = Setting<Property>("property", required: true, "what the filter measures")
        static let url = DefaultedSetting("url", .location, default: "https://www.smard.de/app/chart_data", "the chart_data base (a local mirror folder works too)")
        static let blocks = DefaultedSetting("blocks", default: 1, "how many of the latest weekly blocks to read from the index")
        static let since = Setting<String>("since", "read the blocks that reach past this instant (ISO 8601) instead of the latest `blocks`; values up to it are skipped")
        static let index = Setting<String>("index", .location, "a local index_<resolution>.json instead of the one under `url`")
        static let series = Setting<String>("series", .location, "local series files (`*` matches several) instead of fetching blocks")
        static let keys = [filter.key, region.key, resolution.key, property.key, url.key, blocks.key, since.key, index.key, series.key]

        var filter: String
        var region: String
        var resolution: Resolution
        var property: Property
        /// `url` without a trailing `/`.
        var base: String
        var blocks: Int
        /// `since` in µs.
        var since: Int64?
        var index: String?
        var series: String?

        init(_ config: ConnectorConfig) throws {
            filter = try config.required(Self.filter)
            region = config[Self.region]
            resolution = config[Self.resolution]
            property = try config.required(Self.property)
            base = config[Self.url]
            while base.hasSuffix("/") { base.removeLast() }
            blocks = config[Self.blocks]
            since = try config[Self.since].map { try SensorThingsConnector.instant.parse($0) }
            index = config[Self.index]
            series = config[Self.series]
        }
    }
    let sampleYAML = """
        version: 1
        name: smard-wind-onshore
        tenant: "00000000"
        schedule: "15 * * * *"
        source:
          kind: smard
          filter: "4067"        # Wind Onshore
          region: DE
          resolution: quarterhour
          property: electricity_generation
          url: https://www.smard.de/app/chart_data
          blocks: 2
        """

    /// Filters whose values are prices (€/MWh), not energy.
    static let priceFilters: Set<String> = ["4169", "4996", "4997", "4170", "252", "253", "254", "255", "256", "257", "258", "259", "260", "261", "262", "5078"]

    /// Names of the common filters (SMARD's own labels).
    static let filterNames: [String: String] = [
        "1223": "Braunkohle", "1224": "Kernenergie", "1225": "Wind Offshore", "1226": "Wasserkraft",
        "1227": "Sonstige Konventionelle", "1228": "Sonstige Erneuerbare", "4066": "Biomasse", "4067": "Wind Onshore",
        "4068": "Photovoltaik", "4069": "Steinkohle", "4070": "Pumpspeicher", "4071": "Erdgas",
        "410": "Stromverbrauch: Gesamt (Netzlast)", "4359": "Stromverbrauch: Residuallast", "4387": "Stromverbrauch: Pumpspeicher",
    ]

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        if let filter = config[C.filter] {
            if filter.isEmpty || !filter.allSatisfy(\.isNumber) {
                problems.append(ConfigProblem(key: C.filter.name, "'\(filter)' is not a SMARD filter id (digits, e.g. 4067)"))
            } else if Self.priceFilters.contains(filter) {
                problems.append(ConfigProblem(key: C.filter.name, "filter \(filter) is a market price in €/MWh, not electricity generation or consumption"))
            }
        }
        if config.has(C.blocks), config[C.blocks] < 1 {
            problems.append(ConfigProblem(key: C.blocks.name, "must be at least 1, not \(config[C.blocks])"))
        }
        if let since = config[C.since], (try? SensorThingsConnector.instant.parse(since)) == nil {
            problems.append(ConfigProblem(key: C.since.name, "'\(since)' is not an ISO 8601 instant such as 2025-01-01T00:00:00Z"))
        }
        if config.has(C.series), config.has(C.index) {
            problems.append(ConfigProblem(key: C.index.name, "not used when 'series' names the files; remove one of them"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let plan: SMARDRun.Plan
        if let series = config.series {
            plan = .files(try expandLocation(series))
        } else {
            plan = .index(config.index ?? "\(config.base)/\(config.filter)/\(config.region)/index_\(config.resolution.rawValue).json")
        }
        return SMARDRun(
            plan: plan, base: config.base, filter: config.filter, region: config.region, resolution: config.resolution,
            property: config.property, blocks: config.blocks, since: config.since, session: context.session)
    }
}

/// Reads the index (when there is one), then each block file; one block is a small document (≤ 672 points).
struct SMARDRun: ConnectorRun {
    enum Plan {
        case index(String)
        case files([String])
    }

    private var plan: Plan?
    private var files: [String] = []
    let base: String
    let filter: String
    let region: String
    let resolution: String
    let property: String
    let blocks: Int
    let since: Int64?
    let session: FetchSession
    private var stationSent = false
    private(set) var bytesRead = 0
    private(set) var origins: [String] = []
    private let step: Step

    /// The length of one value.
    enum Step {
        case fixed(Int64)
        case calendar(Calendar.Component, Int)
    }

    static let berlin: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        return calendar
    }()

    init(plan: Plan, base: String, filter: String, region: String, resolution: SMARDConnector.Resolution, property: SMARDConnector.Property,
         blocks: Int, since: Int64?, session: FetchSession) {
        self.plan = plan
        self.base = base
        self.filter = filter
        self.region = region
        self.resolution = resolution.rawValue
        self.property = property.rawValue
        self.blocks = blocks
        self.since = since
        self.session = session
        switch resolution {
        case .quarterhour: step = .fixed(900_000_000)
        case .hour: step = .fixed(3_600_000_000)
        case .day: step = .calendar(.day, 1)
        case .week: step = .calendar(.day, 7)
        case .month: step = .calendar(.month, 1)
        case .year: step = .calendar(.year, 1)
        }
    }

    var stationKey: String { "smard:\(filter)-\(region)" }

    func end(of start: Int64) -> Int64 {
        switch step {
        case .fixed(let micros): return start + micros
        case .calendar(let component, let count):
            let date = Date(timeIntervalSince1970: Double(start) / 1e6)
            let next = Self.berlin.date(byAdding: component, value: count, to: date) ?? date
            return Int64((next.timeIntervalSince1970 * 1000).rounded()) * 1000
        }
    }

    /// One small JSON document, whole.
    private mutating func document(_ location: String) async throws -> (JSONValue, String) {
        let reader = try await ChunkReader.open(location, session: session)
        origins.append(reader.origin)
        let bytes = try await reader.readAll(limit: 8 << 20)
        bytesRead += bytes.count
        do {
            return (try JSONParser.parse(bytes), reader.origin)
        } catch {
            throw ExtractError("\(reader.origin) is not valid JSON: \(error)")
        }
    }

    /// The block starts to read: the latest `blocks`, or those that reach past `since`.
    private mutating func readIndex(_ location: String) async throws -> [String] {
        let (index, origin) = try await document(location)
        guard case .array(let entries) = index["timestamps"] ?? .null else {
            throw ExtractError("\(origin): expected {\"timestamps\": [epoch ms, …]}, found no 'timestamps' list")
        }
        var starts: [Int64] = []
        for (i, entry) in entries.enumerated() {
            guard let ms = entry.numberValue, ms.rounded() == ms else {
                throw ExtractError("\(origin), $.timestamps[\(i)]: \(entry.serialized) is not an epoch-millisecond timestamp")
            }
            starts.append(Int64(ms))
        }
        starts.sort()
        let chosen: [Int64]
        if let since {
            // A block runs until the next one starts; keep those that end after `since`.
            chosen = starts.enumerated().filter { i, _ in i + 1 >= starts.count || starts[i + 1] * 1000 > since }.map(\.element)
        } else {
            chosen = Array(starts.suffix(blocks))
        }
        return chosen.map { "\(base)/\(filter)/\(region)/\(filter)_\(region)_\(resolution)_\($0).json" }
    }

    mutating func next() async throws -> ConnectorBatch? {
        if let plan {
            self.plan = nil
            switch plan {
            case .index(let location): files = try await readIndex(location)
            case .files(let list): files = list
            }
        }
        guard !files.isEmpty else { return nil }
        let (block, origin) = try await document(files.removeFirst())
        guard case .array(let series) = block["series"] ?? .null else {
            throw ExtractError("\(origin): expected {\"series\": [[epoch ms, value], …]}, found no 'series' list")
        }
        var items: [StagedItem] = []
        // Accounting: each point of the series is one value; `null` (not yet published) is `missing_value`,
        // a point up to `since` is `already_loaded`, a malformed point is quarantined.
        var skipped = SkipCounts()
        if !stationSent {
            stationSent = true
            let name = SMARDConnector.filterNames[filter].map { "SMARD \($0), \(region)" } ?? "SMARD filter \(filter), \(region)"
            items.append(.station(Station(key: stationKey, name: name, kind: "electricity_market_area", properties: .object([
                .init("filter", .string(filter)), .init("region", .string(region)), .init("resolution", .string(resolution)),
            ]))))
        }
        for (i, point) in series.enumerated() {
            let at = SourceLocation(origin: origin, record: i + 1, path: "$.series[\(i)]")
            func reject(_ field: String, _ reason: String) {
                items.append(.quarantined(QuarantinedRecord(error: RecordError(at, field: field, reason), raw: point.serialized)))
            }
            guard case .array(let pair) = point, pair.count == 2 else {
                reject("series[\(i)]", "expected a [timestamp, value] pair, found \(point.serialized)")
                continue
            }
            guard let ms = pair[0].numberValue, ms.rounded() == ms, abs(ms) < 253_402_300_800_000 else {
                reject("series[\(i)][0]", "\(pair[0].serialized) is not an epoch-millisecond timestamp")
                continue
            }
            let start = Int64(ms) * 1000
            switch pair[1] {
            case .null:
                skipped.add(.missingValue)   // not yet published
                continue
            case .number(let value):
                if let since, start <= since {
                    skipped.add(.alreadyLoaded)
                    continue
                }
                items.append(.observation(Observation(stationKey: stationKey, property: property, phenomenonStart: start, phenomenonEnd: end(of: start), result: value)))
            default:
                reject("series[\(i)][1]", "\(pair[1].serialized) is not a number")
            }
        }
        return ConnectorBatch(items: items, recordsRead: series.count, valuesRead: series.count, skipped: skipped)
    }
}
