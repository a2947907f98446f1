import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing
import Yams

/// Deploy/grafana: the provisioning files parse and agree with the dashboards, and every SQL query of every
/// dashboard (panel targets and template variables) runs against a loaded database as a `grant-reader` role
/// over TCP, after Grafana's template variables and PostgreSQL macros are expanded the way Grafana does
/// (`GrafanaQueryExpander`, modelled on pkg/tsdb/grafana-postgresql-datasource/macros.go).
@Suite struct GrafanaDashboardTests {
    static let directory = Paths.root + "/Deploy/grafana"

    // MARK: - Files

    static func yaml(_ path: String) throws -> [String: Any] {
        let text = try String(contentsOfFile: directory + "/" + path, encoding: .utf8)
        guard let node = try Yams.load(yaml: text) as? [String: Any] else { throw TestFailure("\(path) is not a YAML mapping") }
        return node
    }

    static func datasource() throws -> [String: Any] {
        let file = try yaml("provisioning/datasources/datenwerk.yaml")
        guard let list = file["datasources"] as? [[String: Any]], list.count == 1, let first = list.first else {
            throw TestFailure("provisioning/datasources/datenwerk.yaml must hold exactly one data source")
        }
        return first
    }

    struct Dashboard {
        var file: String
        var json: [String: Any]
        var uid: String { json["uid"] as? String ?? "" }
        /// Every panel, rows' collapsed panels included.
        var panels: [[String: Any]] {
            var out: [[String: Any]] = []
            for panel in json["panels"] as? [[String: Any]] ?? [] {
                out.append(panel)
                out += panel["panels"] as? [[String: Any]] ?? []
            }
            return out.filter { $0["type"] as? String != "row" }
        }
        var variables: [[String: Any]] { (json["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] }
    }

    static func dashboards() throws -> [Dashboard] {
        let folder = directory + "/dashboards"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        return try files.map { file in
            let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw TestFailure("\(file) is not a JSON object") }
            return Dashboard(file: file, json: json)
        }
    }

    /// Grafana unit ids the dashboards may use (packages/grafana-data/src/valueFormats/categories.ts), besides
    /// custom `suffix:…` units.
    static let grafanaUnits: Set<String> = [
        "none", "short", "percent", "percentunit", "dB", "degree", "ppm", "conμgm3", "conmgm3", "conngm3", "watt", "kwatt",
        "megwatt", "Wm2", "watth", "kwatth", "joule", "volt", "amp", "lux", "flowcms", "lengthmm", "lengthm", "lengthkm",
        "pressurehpa", "celsius", "kelvin", "s", "m", "h", "d", "ms", "dtdurations", "velocityms", "velocitykmh", "m3", "litre",
        "dateTimeAsIso", "dateTimeFromNow",
    ]

    static func isGrafanaUnit(_ id: String) -> Bool {
        grafanaUnits.contains(id) || (id.hasPrefix("suffix:") && id.count > "suffix:".count)
    }

    // MARK: - Structure

    @Test func provisioningAndDashboardsAgree() throws {
        let source = try Self.datasource()
        let uid = try #require(source["uid"] as? String)
        #expect(["grafana-postgresql-datasource", "postgres"].contains(source["type"] as? String ?? ""))
        let jsonData = try #require(source["jsonData"] as? [String: Any])
        #expect(jsonData["postgresVersion"] as? Int == 1500)
        #expect(jsonData["timescaledb"] as? Bool == false)
        // Secrets and places come from the environment (Grafana expands ${VAR} in provisioning values).
        let secure = try #require(source["secureJsonData"] as? [String: Any])
        #expect(secure["password"] as? String == "${DATENWERK_READER_PASSWORD}")
        for value in [source["user"], source["url"], jsonData["database"], jsonData["sslmode"]] {
            let text = value as? String ?? ""
            #expect(text.hasPrefix("${DATENWERK_"), "\(text) should come from the environment")
        }
        let readme = try String(contentsOfFile: Self.directory + "/README.md", encoding: .utf8)
        #expect(readme.contains("grant-reader"))

        let provider = try #require((try Self.yaml("provisioning/dashboards/datenwerk.yaml")["providers"] as? [[String: Any]])?.first)
        #expect(provider["type"] as? String == "file")
        let path = try #require((provider["options"] as? [String: Any])?["path"] as? String)
        #expect(readme.contains(path), "the README should say where to mount the dashboards (\(path))")

        let dashboards = try Self.dashboards()
        #expect(dashboards.count >= 3)
        #expect(Set(dashboards.map(\.uid)).count == dashboards.count, "dashboard uids must be unique")
        for dashboard in dashboards {
            let name = dashboard.file
            #expect(!dashboard.uid.isEmpty && dashboard.uid.count <= 40, "\(name): uid")
            #expect(!(dashboard.json["title"] as? String ?? "").isEmpty, "\(name): title")
            #expect((dashboard.json["schemaVersion"] as? Int ?? 0) >= 36, "\(name): schemaVersion")
            let variableNames = Set(dashboard.variables.compactMap { $0["name"] as? String })
            for variable in dashboard.variables where variable["type"] as? String == "query" {
                #expect((variable["datasource"] as? [String: Any])?["uid"] as? String == uid, "\(name): variable \(variable["name"] ?? "?")")
                #expect(!(variable["query"] as? String ?? "").isEmpty, "\(name): variable \(variable["name"] ?? "?") has no query")
            }
            let panels = dashboard.panels
            #expect(!panels.isEmpty, "\(name): no panels")
            #expect(Set(panels.compactMap { $0["id"] as? Int }).count == panels.count, "\(name): panel ids must be unique")
            for panel in panels {
                let title = "\(name) panel \(panel["title"] ?? "?")"
                #expect((panel["datasource"] as? [String: Any])?["uid"] as? String == uid, "\(title): data source")
                if let repeatName = panel["repeat"] as? String { #expect(variableNames.contains(repeatName), "\(title): repeats \(repeatName)") }
                let targets = panel["targets"] as? [[String: Any]] ?? []
                #expect(!targets.isEmpty, "\(title): no targets")
                let refIds = targets.compactMap { $0["refId"] as? String }
                #expect(Set(refIds).count == targets.count, "\(title): refIds")
                for target in targets {
                    #expect((target["datasource"] as? [String: Any])?["uid"] as? String == uid, "\(title): target data source")
                    #expect(!(target["rawSql"] as? String ?? "").isEmpty, "\(title): target without rawSql")
                    #expect(["table", "time_series"].contains(target["format"] as? String ?? ""), "\(title): format")
                }
                for transformation in panel["transformations"] as? [[String: Any]] ?? [] where transformation["id"] as? String == "configFromData" {
                    let ref = (transformation["options"] as? [String: Any])?["configRefId"] as? String ?? ""
                    #expect(refIds.contains(ref), "\(title): configFromData reads \(ref)")
                }
                for unit in Self.units(in: panel) { #expect(Self.isGrafanaUnit(unit), "\(title): unit \(unit)") }
                // Every variable a query or title uses exists (the expander throws on unknown names).
                let expander = GrafanaQueryExpander(from: Date(), to: Date(), interval: "1h",
                                                    variables: Dictionary(uniqueKeysWithValues: variableNames.map { ($0, .init(values: ["x"], multi: true)) }))
                for text in targets.compactMap({ $0["rawSql"] as? String }) + [panel["title"] as? String ?? ""] {
                    #expect(throws: Never.self, "\(title)") { _ = try expander.expand(text) }
                }
            }
        }
    }

    /// Units set in a panel's field config (defaults and overrides).
    static func units(in panel: [String: Any]) -> [String] {
        let config = panel["fieldConfig"] as? [String: Any] ?? [:]
        var out: [String] = []
        if let unit = (config["defaults"] as? [String: Any])?["unit"] as? String { out.append(unit) }
        for override in config["overrides"] as? [[String: Any]] ?? [] {
            for property in override["properties"] as? [[String: Any]] ?? [] where property["id"] as? String == "unit" {
                if let unit = property["value"] as? String { out.append(unit) }
            }
        }
        return out
    }

    /// Every canonical unit of the vocabulary has its own Grafana unit in every unit query of the dashboards.
    @Test func everyVocabularyUnitMapsToAGrafanaUnit() throws {
        let units = Set(Vocabulary.properties.map(\.unit))
        var cases = 0
        for dashboard in try Self.dashboards() {
            for panel in dashboard.panels {
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    let sql = target["rawSql"] as? String ?? ""
                    guard sql.contains("AS unit") && sql.contains("CASE") else { continue }
                    cases += 1
                    var mapping: [String: String] = [:]
                    for match in sql.matches(of: #/WHEN '([^']*)' THEN '([^']*)'/#) {
                        mapping[String(match.output.1)] = String(match.output.2)
                    }
                    for unit in units.sorted() {
                        let id = mapping[unit]
                        #expect(id.map(Self.isGrafanaUnit) == true, "\(dashboard.file) \(panel["title"] ?? "?"): UCUM \(unit) → \(id ?? "nothing")")
                    }
                }
            }
        }
        #expect(cases >= 4, "the map and time series panels take their unit from the data")
    }

    // MARK: - Running the queries

    /// The example pipelines (hourly climate, quarter-hourly energy), a pipeline with quarantined records and
    /// one that fails; then every dashboard query as the reader role, for a short range (raw observations) and a
    /// long one (hourly aggregates).
    @Test func everyQueryRunsAsTheReaderRoleOnLoadedData() async throws {
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            var quarantined = 0
            for name in ["examples/musterstadt-klima.yaml", "examples/musterstadt-energie.yaml"] {
                let report = try await runner.run(try PipelineSpec.load(file: Paths.pipeline(name)), trigger: "test")
                #expect(report.succeeded, "\(name)")
                quarantined += report.totals.quarantined
            }
            let quarantining = try await runner.run(try PipelineSpec.load(file: try QuarantineReplayTests.writeStrictVersion()), trigger: "test")
            #expect(quarantining.succeeded && quarantining.totals.quarantined == 3)
            quarantined += quarantining.totals.quarantined
            let broken = try await runner.run(try spec("""
                version: 1
                name: grafana-broken
                tenant: "05515000"
                source: { kind: file, path: /nonexistent/grafana-broken.csv, format: { kind: csv } }
                observations:
                  station: { id: station }
                  time: { field: time, format: iso8601 }
                  values: [{ field: v, property: air_temperature }]
                """), trigger: "test")
            #expect(!broken.succeeded)

            let name = "grafana_" + UUID().uuidString.prefix(8).lowercased()
            let password = "pw-\(UUID().uuidString)"
            try await AggregateMaintenance(db).grantReader(name: name, password: password, statementTimeoutMilliseconds: 10_000, connectionLimit: 5)
            defer { Task { try? await db.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(name)"), logger: db.logger) } }
            let location = db.location
            let port = try await TestDatabase.embeddedCluster()?.configuration.port ?? location.port
            let host = location.unixSocketPath == nil ? (location.host ?? "localhost") : "127.0.0.1"
            let reader = try await PostgresConnection.connect(
                configuration: .init(host: host, port: port, username: name, password: password, database: location.database, tls: .disable),
                id: 1, logger: db.logger)
            do {
                try await Self.runEverything(DashboardRunner(connection: reader, logger: db.logger), quarantined: quarantined)
            } catch {
                try? await reader.close()
                throw error
            }
            try await reader.close()
        }
    }

    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    /// Within 2 days: the queries read `datenwerk_api.observations` (klima 26–27 Oct, energie early 27 Oct 2024).
    static var shortRange: (Date, Date) { (utc("2024-10-26T22:00:00Z"), utc("2024-10-27T06:00:00Z")) }
    /// Over 2 days: they read `datenwerk_api.hourly` (the klima file also has 30–31 March 2024).
    static var longRange: (Date, Date) { (utc("2024-03-29T00:00:00Z"), utc("2024-10-28T00:00:00Z")) }

    static func runEverything(_ reader: DashboardRunner, quarantined: Int) async throws {
        var results: [String: [[String: Any]]] = [:]   // "uid/panel id/refId/range/repeat value" → rows
        for dashboard in try dashboards() {
            for (rangeName, range) in [("short", shortRange), ("long", longRange)] {
                // Template variables in order, each query seeing the ones before it; a variable that is not
                // multi-select is tried with every one of its values (the panels follow it).
                for scenario in try await reader.scenarios(dashboard.variables, from: range.0, to: range.1) {
                    for panel in dashboard.panels {
                        let panelName = "\(dashboard.file) panel \(panel["id"] ?? "?") \(panel["title"] ?? "?") [\(rangeName)]"
                        var repeats: [(String, [String: GrafanaQueryExpander.Variable])] = [("", scenario)]
                        if let repeatName = panel["repeat"] as? String, let all = scenario[repeatName] {
                            repeats = all.values.map { value in
                                var scoped = scenario
                                scoped[repeatName] = .init(values: [value], multi: all.multi)
                                return (value, scoped)
                            }
                        }
                        for (repeatValue, variables) in repeats {
                            let expander = GrafanaQueryExpander(from: range.0, to: range.1, interval: "1h", variables: variables)
                            var columns: Set<String> = []
                            var configColumns: Set<String> = []
                            let configRefs = Set((panel["transformations"] as? [[String: Any]] ?? []).compactMap {
                                ($0["options"] as? [String: Any])?["configRefId"] as? String })
                            for target in panel["targets"] as? [[String: Any]] ?? [] {
                                let refId = target["refId"] as? String ?? "?"
                                let context = "\(panelName) \(repeatValue) \(refId)"
                                let sql = try expander.expand(target["rawSql"] as? String ?? "")
                                let rows = try await reader.rows(sql, context: context)
                                #expect(!rows.isEmpty, "\(context): no rows\n\(sql)")
                                let names = rows.first.map { Array($0.keys) } ?? []
                                if configRefs.contains(refId) {
                                    configColumns.formUnion(names)
                                    for row in rows { #expect(isGrafanaUnit(row["unit"] as? String ?? ""), "\(context): \(row)") }
                                } else {
                                    columns.formUnion(names)
                                }
                                if target["format"] as? String == "time_series" {
                                    #expect(try await reader.firstColumn(sql, context: context) == "time", "\(context): a time series needs a time column first")
                                }
                                results["\(dashboard.uid)/\(panel["id"] ?? "?")/\(refId)/\(rangeName)/\(scenarioKey(scenario))\(repeatValue)"] = rows
                            }
                            for field in fieldNames(panel) { #expect(columns.contains(field), "\(panelName): the panel refers to field \(field); the queries give \(columns.sorted())") }
                            for field in configFieldNames(panel) { #expect(configColumns.contains(field), "\(panelName): config field \(field)") }
                        }
                    }
                }
            }
        }
        try checkContents(results, quarantined: quarantined)
    }

    static func scenarioKey(_ variables: [String: GrafanaQueryExpander.Variable]) -> String {
        variables.filter { !$0.value.multi }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.values.joined(separator: ","))/" }.joined()
    }

    /// Field names a panel's config, transformations and layers refer to (they must come out of its queries).
    static func fieldNames(_ panel: [String: Any]) -> Set<String> {
        var out: Set<String> = []
        let config = panel["fieldConfig"] as? [String: Any] ?? [:]
        for override in config["overrides"] as? [[String: Any]] ?? [] {
            let matcher = override["matcher"] as? [String: Any] ?? [:]
            if matcher["id"] as? String == "byName", let name = matcher["options"] as? String { out.insert(name) }
            for property in override["properties"] as? [[String: Any]] ?? [] where property["id"] as? String == "custom.fillBelowTo" {
                if let name = property["value"] as? String { out.insert(name) }
            }
        }
        for transformation in panel["transformations"] as? [[String: Any]] ?? [] {
            let options = transformation["options"] as? [String: Any] ?? [:]
            if let applyTo = options["applyTo"] as? [String: Any], applyTo["id"] as? String == "byName", let name = applyTo["options"] as? String { out.insert(name) }
            if let excluded = options["excludeByName"] as? [String: Any] { out.formUnion(excluded.keys) }
        }
        for layer in (panel["options"] as? [String: Any])?["layers"] as? [[String: Any]] ?? [] {
            if let location = layer["location"] as? [String: Any] {
                for key in ["latitude", "longitude"] { if let name = location[key] as? String { out.insert(name) } }
            }
            if let color = ((layer["config"] as? [String: Any])?["style"] as? [String: Any])?["color"] as? [String: Any], let name = color["field"] as? String {
                out.insert(name)
            }
        }
        return out
    }

    static func configFieldNames(_ panel: [String: Any]) -> Set<String> {
        var out: Set<String> = []
        for transformation in panel["transformations"] as? [[String: Any]] ?? [] where transformation["id"] as? String == "configFromData" {
            for mapping in (transformation["options"] as? [String: Any])?["mappings"] as? [[String: Any]] ?? [] {
                if let name = mapping["fieldName"] as? String { out.insert(name) }
            }
        }
        return out
    }

    /// What the loaded data must show: the right stations on the map, the same hourly means from the raw
    /// observations (short range) as from the hourly aggregates (long range), bands in order, the failing
    /// pipeline and the quarantine in the health dashboard, units from the data.
    static func checkContents(_ results: [String: [[String: Any]]], quarantined: Int) throws {
        func rows(_ key: String) throws -> [[String: Any]] {
            guard let rows = results[key] else { throw TestFailure("no result for \(key); have \(results.keys.sorted().prefix(40))") }
            return rows
        }
        func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

        // Map: the three climate stations, in Münster (UTM 32 → WGS84), with their unit.
        let map = try rows("datenwerk-station-map/1/A/short/property=air_temperature/")
        #expect(map.count == 3)
        for row in map {
            let lat = number(row["latitude"]) ?? 0, lon = number(row["longitude"]) ?? 0
            #expect(lat > 51.9 && lat < 52.0 && lon > 7.5 && lon < 7.7, "\(row)")
            #expect(row["unit"] as? String == "Cel" && (number(row["age"]) ?? 0) > 0)
        }
        #expect(try rows("datenwerk-station-map/1/UNIT/short/property=air_temperature/").first?["unit"] as? String == "celsius")
        #expect(try rows("datenwerk-station-map/1/UNIT/short/property=electricity_consumption/").first?["unit"] as? String == "suffix:MWh")
        #expect(try rows("datenwerk-timeseries/1/UNIT/long/wind_speed").first?["unit"] as? String == "velocityms")

        // Time series: hourly series (klima, its own aggregate) and quarter-hourly (energie, observations_hourly).
        for property in ["air_temperature", "electricity_consumption", "electric_power"] {
            let short = try rows("datenwerk-timeseries/1/A/short/\(property)")
            let long = try rows("datenwerk-timeseries/1/A/long/\(property)")
            func keyed(_ rows: [[String: Any]]) -> [String: Double] {
                var out: [String: Double] = [:]
                for row in rows { out["\(number(row["time"]) ?? -1) \(row["metric"] as? String ?? "?")"] = number(row["value"]) }
                return out
            }
            let (raw, hourly) = (keyed(short), keyed(long))
            let start = shortRange.0.timeIntervalSince1970, end = shortRange.1.timeIntervalSince1970
            let inside = long.filter { (number($0["time"]) ?? 0) >= start && (number($0["time"]) ?? 0) <= end }
            #expect(!raw.isEmpty && inside.count == raw.count, "\(property): \(raw.count) buckets from observations, \(inside.count) from hourly")
            for (key, value) in raw {
                let other = hourly[key]
                #expect(other.map { abs($0 - value) <= 1e-9 * max(1, abs(value)) } == true, "\(property) \(key): observations \(value), hourly \(other.map(String.init(describing:)) ?? "missing")")
            }
            for range in ["short", "long"] {
                let band = try rows("datenwerk-timeseries/2/A/\(range)/\(property)")
                #expect(!band.isEmpty)
                for row in band {
                    let lo = number(row["min"]) ?? .nan, mean = number(row["mean"]) ?? .nan, hi = number(row["max"]) ?? .nan
                    #expect(lo <= mean + 1e-9 && mean <= hi + 1e-9, "\(property) \(range): \(row)")
                }
            }
        }
        // The three climate stations by name, and replay-demo's two (no name: their key).
        #expect(Set(try rows("datenwerk-timeseries/1/A/long/air_temperature").compactMap { $0["metric"] as? String })
            == ["Münster Domplatz", "Hafen Süd", "Grüner Weg / Geist", "replay:s1", "replay:s2"])

        // Pipeline health.
        #expect(number(try rows("datenwerk-pipelines/1/A/short/").first?["failing"]) == 1)
        #expect(number(try rows("datenwerk-pipelines/2/A/short/").first?["failures_24h"]) == 1)
        // Everything the runs set aside (the examples' bad lines, replay-demo's 3) is open and new.
        #expect(number(try rows("datenwerk-pipelines/3/A/short/").first?["quarantine_open"]) == Double(quarantined))
        #expect(number(try rows("datenwerk-pipelines/4/A/short/").first?["quarantine_new_24h"]) == Double(quarantined))
        let table = try rows("datenwerk-pipelines/5/A/short/")
        let replay = table.first { $0["pipeline"] as? String == "replay-demo" }
        #expect(replay.map { number($0["quarantine_open"]) == 3 && number($0["quarantine_new_24h"]) == 3 && number($0["failures_24h"]) == 0 } == true)
        #expect(Set(table.compactMap { $0["pipeline"] as? String }) == ["musterstadt-klima", "musterstadt-energie", "replay-demo", "grafana-broken"])
        #expect(table.first?["pipeline"] as? String == "grafana-broken" && table.first?["last_status"] as? String == "failed", "failing pipelines first")
        #expect(table.first { $0["pipeline"] as? String == "musterstadt-klima" }.map { number($0["seconds_since_success"]) != nil } == true)
    }
}

/// Runs expanded dashboard SQL on the reader's connection.
struct DashboardRunner {
    let connection: PostgresConnection
    let logger: Logger

    /// The rows as JSON objects (`row_to_json` over the query as written, so every column keeps its name).
    func rows(_ sql: String, context: String) async throws -> [[String: Any]] {
        do {
            // As written first: the statement Grafana sends must run on its own.
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
            var out: [[String: Any]] = []
            for try await text in try await connection.query(PostgresQuery(unsafeSQL: "SELECT row_to_json(q)::text FROM (\n\(sql)\n) q"), logger: logger).decode(String.self) {
                guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { throw TestFailure("not an object: \(text)") }
                out.append(object)
            }
            return out
        } catch let error as PSQLError {
            throw TestFailure("\(context): \(error.serverInfo?[.message] ?? String(reflecting: error))\n\(sql)")
        }
    }

    func firstColumn(_ sql: String, context: String) async throws -> String? {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        guard let row = rows.first else { return nil }
        var cells = row.makeIterator()
        return cells.next()?.columnName
    }

    /// Evaluates the template variables in order. Multi-select variables take all their values (Grafana's
    /// "All"); every other one branches into one scenario per value.
    func scenarios(_ variables: [[String: Any]], from: Date, to: Date) async throws -> [[String: GrafanaQueryExpander.Variable]] {
        var scenarios: [[String: GrafanaQueryExpander.Variable]] = [[:]]
        for variable in variables {
            let name = variable["name"] as? String ?? "?"
            guard variable["type"] as? String == "query" else { throw TestFailure("variable \(name): only query variables are expected") }
            let multi = variable["multi"] as? Bool == true || variable["includeAll"] as? Bool == true
            var next: [[String: GrafanaQueryExpander.Variable]] = []
            for scenario in scenarios {
                let sql = try GrafanaQueryExpander(from: from, to: to, interval: "1h", variables: scenario).expand(variable["query"] as? String ?? "")
                let rows = try await rows(sql, context: "variable \(name)")
                let values = rows.compactMap { row -> String? in
                    if let value = row["__value"] { return value as? String }
                    return row.count == 1 ? row.values.first as? String : nil
                }
                #expect(!values.isEmpty && values.count == rows.count, "variable \(name): values \(values) from \(rows.count) rows\n\(sql)")
                if multi {
                    next.append(scenario.merging([name: .init(values: values, multi: true)]) { $1 })
                } else {
                    next += values.map { scenario.merging([name: .init(values: [$0], multi: false)]) { $1 } }
                }
            }
            scenarios = next
        }
        return scenarios
    }
}

/// Grafana's two expansion steps for a PostgreSQL query: the front end's template variables (`$var`,
/// `${var}`, `${var:format}`, `[[var]]`, `$__interval`, `$__interval_ms`, `$__from`, `$__to`), then the
/// data source's macros (`$__timeFilter(col)`, `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(col, interval)`,
/// `$__timeGroupAlias(…)`, `$__time(col)`, `$__timeEpoch(col)`, `$__unixEpochFilter(col)`, `$__unixEpochFrom()`,
/// `$__unixEpochTo()`), as in pkg/tsdb/grafana-postgresql-datasource/macros.go without TimescaleDB. Unknown
/// variables and macros are errors.
struct GrafanaQueryExpander {
    struct Variable: Sendable {
        var values: [String]
        /// Multi-select or "Include All": Grafana's SQL data sources then quote and comma-join the values.
        var multi: Bool
    }

    var from: Date
    var to: Date
    var interval: String
    var variables: [String: Variable]

    func expand(_ text: String) throws -> String {
        try macros(try templateVariables(text))
    }

    static func quote(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }

    static func seconds(_ interval: String) throws -> Double {
        guard let match = interval.trimmingCharacters(in: CharacterSet(charactersIn: "' ")).wholeMatch(of: #/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w|y)/#),
              let number = Double(match.output.1) else { throw TestFailure("interval '\(interval)'") }
        let unit: Double = switch match.output.2 {
        case "ms": 0.001
        case "s": 1
        case "m": 60
        case "h": 3600
        case "d": 86400
        case "w": 604_800
        default: 31_536_000
        }
        return number * unit
    }

    func templateVariables(_ text: String) throws -> String {
        var failure: String?
        let fromMs = Int64((from.timeIntervalSince1970 * 1000).rounded()), toMs = Int64((to.timeIntervalSince1970 * 1000).rounded())
        let builtins: [String: String] = [
            "__interval": interval, "__interval_ms": String(Int64(((try? Self.seconds(interval)) ?? 0) * 1000)),
            "__from": String(fromMs), "__to": String(toMs), "__range_s": String((toMs - fromMs) / 1000),
        ]
        let pattern = #/\$\{([A-Za-z0-9_]+)(?::([A-Za-z]+))?\}|\[\[([A-Za-z0-9_]+)(?::([A-Za-z]+))?\]\]|\$([A-Za-z0-9_]+)/#
        let result = text.replacing(pattern) { match -> String in
            let name = String(match.output.1 ?? match.output.3 ?? match.output.5 ?? "")
            let format = (match.output.2 ?? match.output.4).map(String.init)
            if let builtin = builtins[name] { return builtin }
            guard let variable = variables[name] else {
                // `$__name(` is a data-source macro, expanded next.
                if match.output.5 != nil && name.hasPrefix("__") { return String(match.output.0) }
                failure = failure ?? "unknown template variable '\(name)'"
                return String(match.output.0)
            }
            switch format {
            case nil:
                return variable.multi ? variable.values.map(Self.quote).joined(separator: ",")
                    : variable.values.joined(separator: ",").replacingOccurrences(of: "'", with: "''")
            case "sqlstring", "singlequote":
                return variable.values.map(Self.quote).joined(separator: ",")
            case "csv", "raw":
                return variable.values.joined(separator: ",")
            case "doublequote":
                return variable.values.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",")
            case let other?:
                failure = failure ?? "format '\(other)' of variable '\(name)' is not handled by the test"
                return String(match.output.0)
            }
        }
        if let failure { throw TestFailure(failure) }
        return result
    }

    func macros(_ text: String) throws -> String {
        var failure: String?
        let formatter = ISO8601DateFormatter()
        let fromText = formatter.string(from: from), toText = formatter.string(from: to)
        func number(_ value: Double) -> String { value == value.rounded() ? String(Int64(value)) : String(value) }
        let result = text.replacing(#/\$([_a-zA-Z0-9]+)\(([^)]*)\)/#) { match -> String in
            let name = String(match.output.1)
            let args = match.output.2.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let column = args.first ?? ""
            do {
                switch name {
                case "__time": return "\(column) AS \"time\""
                case "__timeEpoch": return "extract(epoch from \(column)) as \"time\""
                case "__timeFilter": return "\(column) BETWEEN '\(fromText)' AND '\(toText)'"
                case "__timeFrom": return "'\(fromText)'"
                case "__timeTo": return "'\(toText)'"
                case "__timeGroup", "__timeGroupAlias":
                    guard args.count >= 2 else { throw TestFailure("\(name) needs a column and an interval") }
                    let step = number(try Self.seconds(args[1]))
                    return "floor(extract(epoch from \(column))/\(step))*\(step)" + (name == "__timeGroupAlias" ? " AS \"time\"" : "")
                case "__unixEpochFilter":
                    return "\(column) >= \(Int64(from.timeIntervalSince1970)) AND \(column) <= \(Int64(to.timeIntervalSince1970))"
                case "__unixEpochFrom": return String(Int64(from.timeIntervalSince1970))
                case "__unixEpochTo": return String(Int64(to.timeIntervalSince1970))
                default: throw TestFailure("unknown macro $\(name)")
                }
            } catch {
                failure = failure ?? "\(error)"
                return String(match.output.0)
            }
        }
        if let failure { throw TestFailure(failure) }
        return result
    }
}

@Suite struct GrafanaQueryExpanderTests {
    @Test func expandsVariablesAndMacrosLikeGrafana() throws {
        let utc = ISO8601DateFormatter()
        let expander = GrafanaQueryExpander(
            from: utc.date(from: "2024-10-26T22:00:00Z")!, to: utc.date(from: "2024-10-27T06:00:00Z")!, interval: "5m",
            variables: ["station": .init(values: ["a", "o'b"], multi: true), "property": .init(values: ["air_temperature"], multi: false)])
        #expect(try expander.expand("x IN ($station) AND p = '$property' AND q = ${property:sqlstring} AND c = '${station:csv}' AND [[property]]")
            == "x IN ('a','o''b') AND p = 'air_temperature' AND q = 'air_temperature' AND c = 'a,o'b' AND air_temperature")
        #expect(try expander.expand("SELECT $__timeGroupAlias(t, $__interval), $__interval_ms WHERE $__timeFilter(t) AND $__timeTo() > $__timeFrom()")
            == "SELECT floor(extract(epoch from t)/300)*300 AS \"time\", 300000 WHERE t BETWEEN '2024-10-26T22:00:00Z' AND '2024-10-27T06:00:00Z' AND '2024-10-27T06:00:00Z' > '2024-10-26T22:00:00Z'")
        #expect(throws: TestFailure.self) { try expander.expand("SELECT $nope") }
        #expect(throws: TestFailure.self) { try expander.expand("SELECT $__nope(x)") }
        #expect(throws: TestFailure.self) { try expander.expand("SELECT ${station:json}") }
    }
}
