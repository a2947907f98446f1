import DatenwerkCore
import DatenwerkFormats
import DatenwerkPublishing
import Logging
import PostgresNIO

/// The SQL of the SensorThings API (`/sta/v1.1/`, docs/sensorthings.md): each entity set is a fixed query over the
/// common model, a path's constraints and a `$filter` become a WHERE clause, `$orderby` an ORDER BY. Column names
/// come only from the per-set whitelists below; every value from a request is a bind parameter (never part of the
/// SQL text). Rows are limited to the stations in `scope` (those of public datasets).
package final class SensorThingsQueries: Sendable {
    package let connections: ServerConnections

    package init(connections: ServerConnections) {
        self.connections = connections
    }

    /// The 22-bit id of a property key: the first 24 bits of its MD5, masked (stable across PostgreSQL versions).
    static func propertyID(_ column: String) -> String { "((('x' || left(md5(\(column)), 6))::bit(24)::int8) & 4194303)" }

    /// The property key whose id is the bound parameter, as a scalar subquery: PostgreSQL evaluates it once (an
    /// InitPlan) and uses it in the primary key's index condition (station, property, start), so a Datastream's
    /// Observations in time order are a backward index scan per partition, stopped after the page (docs/sensorthings.md).
    /// Ids are 22 bits of an MD5: `SensorThingsServerTests` checks that the vocabulary's ids are distinct.
    static func propertyKey(_ parameter: String) -> String {
        "(SELECT pk.key FROM datenwerk.observed_properties pk WHERE \(propertyID("pk.key")) = \(parameter) ORDER BY pk.key LIMIT 1)"
    }

    static func micros(_ column: String) -> String { "(extract(epoch FROM \(column)) * 1000000)::int8" }

    /// Longest time one statement of a request may take (`SET LOCAL statement_timeout`).
    package static let statementTimeoutMilliseconds = 30_000

    /// A request's `$filter` or values could not be evaluated by PostgreSQL (an overflow, a value out of range), or
    /// its statement ran longer than `statementTimeoutMilliseconds`.
    package struct EvaluationError: Error, CustomStringConvertible {
        package var description: String
    }

    /// One request's statements, on one connection in one read-only transaction with a statement timeout:
    /// whatever a request asks, it can neither write nor hold a backend for longer than the timeout per statement.
    /// The transaction always ends before the connection goes back (ROLLBACK after an error).
    package func transaction<T: Sendable>(_ body: (Session) async throws -> T) async throws -> T {
        let logger = connections.logger
        return try await connections.withConnection { connection in
            _ = try await connection.collect("BEGIN READ ONLY", logger: logger)
            do {
                _ = try await connection.collect(PostgresQuery(unsafeSQL: "SET LOCAL statement_timeout = \(Self.statementTimeoutMilliseconds)"), logger: logger)
                let result = try await body(Session(connection: connection, logger: logger))
                _ = try await connection.collect("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.collect("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// One page of `set` in a transaction of its own (see `Session.list`).
    package func list(_ set: STAEntitySet, scope: [Int64], constraints: [STAConstraint], options: STAQueryOptions,
                      limit: Int, count: Bool) async throws -> (entities: [STAEntity], count: Int?) {
        try await transaction { try await $0.list(set, scope: scope, constraints: constraints, options: options, limit: limit, count: count) }
    }

    /// The statements of one request (`transaction`).
    package struct Session: Sendable {
        let connection: GuardedConnection
        let logger: Logger

        func read(_ query: PostgresQuery) async throws -> [PostgresRow] { try await connection.collect(query, logger: logger) }

        /// One page of `set`: rows matching every constraint and the filter, in order, `limit` at most after `skip`;
        /// with `count`, also how many match in all.
        package func list(_ set: STAEntitySet, scope: [Int64], constraints: [STAConstraint], options: STAQueryOptions,
                          limit: Int, count: Bool) async throws -> (entities: [STAEntity], count: Int?) {
            var query = SQLBuilder()
            let source = SensorThingsQueries.source(set)
            let scopeParameter = query.bind(scope)
            var conditions = [source.scope(scopeParameter)]
            for constraint in constraints { conditions.append(SensorThingsQueries.condition(constraint, set: set, query: &query)) }
            if let filter = options.filter { conditions.append(try SensorThingsQueries.compile(filter, set: set, query: &query)) }
            let whereClause = conditions.map { "(\($0))" }.joined(separator: " AND ")
            var order = options.orderBy.map { "\(SensorThingsQueries.column($0.property, set: set)) \($0.descending ? "DESC" : "ASC")" }
            order += source.key
            var countQuery = query
            query.sql = "SELECT \(source.columns) FROM \(source.from) WHERE \(whereClause) ORDER BY \(order.joined(separator: ", ")) "
                + "LIMIT \(query.bind(Int64(limit))) OFFSET \(query.bind(Int64(options.skip)))"
            let entities: [STAEntity]
            var total: Int?
            do {
                let rows = try await read(query.query)
                entities = try rows.map { try SensorThingsQueries.decode($0, set: set) }
                if count {
                    countQuery.sql = "SELECT count(*)::int8 FROM \(source.from) WHERE \(whereClause)"
                    total = Int(try await read(countQuery.query).first?.decode(Int64.self) ?? 0)
                }
            } catch let error as PSQLError {
                // Class 22 (data exception): a value of the request PostgreSQL cannot compute with, e.g. an overflow
                // in `$filter` arithmetic. The request's fault: a 400, without the server's text.
                if let state = error.serverInfo?[.sqlState], state.hasPrefix("22") {
                    throw EvaluationError(description: "the $filter cannot be evaluated (SQLSTATE \(state): a value out of range or an overflow)")
                }
                if error.serverInfo?[.sqlState] == "57014" {
                    throw EvaluationError(description: "the request took longer than \(SensorThingsQueries.statementTimeoutMilliseconds / 1000) s; "
                                          + "narrow it (a Datastream's Observations, a phenomenonTime range, a smaller $top)")
                }
                throw error
            }
            return (entities, total)
        }
    }

    // MARK: Entity sets

    struct Source {
        var from: String
        var columns: String
        /// The scope condition on the bound station ids.
        var scope: (String) -> String
        /// The order that makes pages stable (the natural key).
        var key: [String]
    }

    static func source(_ set: STAEntitySet) -> Source {
        switch set {
        case .things:
            return Source(from: "datenwerk.stations s",
                          columns: "s.id, coalesce(s.name, s.key), s.key, s.kind, s.tenant, s.altitude, s.properties::text",
                          scope: { "s.id = ANY(\($0))" }, key: ["s.id"])
        case .locations, .featuresOfInterest:
            return Source(from: "datenwerk.stations s", columns: "s.id, coalesce(s.name, s.key), s.key, ST_AsGeoJSON(s.geom, 7)",
                          scope: { "s.id = ANY(\($0)) AND s.geom IS NOT NULL" }, key: ["s.id"])
        case .historicalLocations:
            return Source(from: "datenwerk.stations s", columns: "s.id, \(micros("s.created_at"))",
                          scope: { "s.id = ANY(\($0)) AND s.geom IS NOT NULL" }, key: ["s.id"])
        case .datastreams, .sensors:
            return Source(from: "datenwerk.series se JOIN datenwerk.stations s ON s.id = se.station_id JOIN datenwerk.observed_properties p ON p.key = se.property",
                          columns: "se.station_id, \(propertyID("se.property")), coalesce(s.name, s.key), s.key, s.kind, p.key, p.label_en, p.label_de, p.unit, "
                            + "\(micros("se.first_start")), \(micros("coalesce(se.last_end, se.last_start)")), ST_AsGeoJSON(s.geom, 7)",
                          scope: { "se.station_id = ANY(\($0))" }, key: ["se.station_id", "se.property"])
        case .observedProperties:
            return Source(from: "datenwerk.observed_properties p",
                          columns: "\(propertyID("p.key")), p.key, p.label_en, p.label_de, p.unit, p.range_min, p.range_max",
                          scope: { "EXISTS (SELECT 1 FROM datenwerk.series se WHERE se.property = p.key AND se.station_id = ANY(\($0)))" },
                          key: ["p.key"])
        case .observations:
            return Source(from: "datenwerk.observations o",
                          columns: "o.station_id, \(propertyID("o.property")), \(micros("o.phenomenon_start")), \(micros("o.phenomenon_end")), "
                            + "CASE WHEN \(belowGate) THEN 'NaN'::float8 ELSE o.result END, "
                            + "CASE WHEN \(belowGate) THEN '\(DatasetMetadata.suppressedQuality)' ELSE o.quality END",
                          scope: { "o.station_id = ANY(\($0))" }, key: ["o.station_id", "o.property", "o.phenomenon_start"])
        }
    }

    /// The SQL of a property in `$filter` and `$orderby` (the whitelist: only these names reach SQL).
    static func column(_ property: String, set: STAEntitySet) -> String {
        switch (set, property) {
        case (.things, "id"), (.locations, "id"), (.historicalLocations, "id"), (.featuresOfInterest, "id"): return "s.id"
        case (.things, "name"), (.locations, "name"), (.featuresOfInterest, "name"): return "coalesce(s.name, s.key)"
        case (.things, "description"): return "(coalesce(s.kind || ' ', '') || s.key)"
        case (.locations, "description"), (.featuresOfInterest, "description"): return "s.key"
        case (.locations, "encodingType"), (.featuresOfInterest, "encodingType"): return "'application/geo+json'::text"
        case (.locations, "location"), (.featuresOfInterest, "feature"), (.datastreams, "observedArea"): return "s.geom"
        case (.historicalLocations, "time"): return "s.created_at"
        case (.datastreams, "id"), (.sensors, "id"): return "(se.station_id * 4194304 + \(propertyID("se.property")))"
        case (.datastreams, "name"): return "(p.label_en || ' at ' || coalesce(s.name, s.key))"
        case (.sensors, "name"): return "('Sensor: ' || p.label_en || ' at ' || coalesce(s.name, s.key))"
        case (.datastreams, "description"), (.sensors, "description"): return "(p.label_de || ' – ' || coalesce(s.name, s.key) || ' (' || s.key || ')')"
        case (.datastreams, "observationType"): return "'\(observationType)'::text"
        case (.datastreams, "phenomenonTime"): return "se.first_start"
        case (.datastreams, "resultTime"): return "coalesce(se.last_end, se.last_start)"
        case (.sensors, "encodingType"): return "'text/plain'::text"
        case (.sensors, "metadata"): return "coalesce(s.kind, 'station')"
        case (.observedProperties, "id"): return propertyID("p.key")
        case (.observedProperties, "name"): return "p.label_en"
        case (.observedProperties, "definition"): return "('urn:datenwerk:property:' || p.key)"
        case (.observedProperties, "description"): return "p.label_de"
        case (.observations, "id"):
            return "((o.station_id * 4194304 + \(propertyID("o.property")))::text || ':' || \(micros("o.phenomenon_start"))::text)"
        case (.observations, "phenomenonTime"): return "o.phenomenon_start"
        case (.observations, "resultTime"): return "coalesce(o.phenomenon_end, o.phenomenon_start)"
        case (.observations, "result"): return "(CASE WHEN \(belowGate) THEN NULL ELSE o.result END)"
        case (.observations, "resultQuality"): return "o.quality"
        case (.observations, "validTime"): return "NULL::timestamptz"
        default: return "NULL"   // not reached: the parser accepts only the set's properties
        }
    }

    /// The privacy gate (docs/privacy.md): true when the observation's result is below its series' `min_count`
    /// (`datenwerk.series_min_count`). Such a result is written as null with the quality `suppressed`, and a
    /// `$filter` or `$orderby` on `result` sees NULL — a suppressed value cannot be narrowed down by filtering.
    /// A correlated lookup per row (not a join), so a Datastream's Observations keep their index order.
    static let belowGate = "datenwerk.below_min_count(o.result, (SELECT g.min_count FROM datenwerk.series_min_count g "
        + "WHERE g.station_id = o.station_id AND g.property = o.property))"

    static let observationType = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"

    static func condition(_ constraint: STAConstraint, set: STAEntitySet, query: inout SQLBuilder) -> String {
        switch (constraint, set) {
        case (.key(.int(let id)), .things), (.key(.int(let id)), .locations), (.key(.int(let id)), .historicalLocations),
             (.key(.int(let id)), .featuresOfInterest):
            return "s.id = \(query.bind(id))"
        case (.key(.int(let id)), .datastreams), (.key(.int(let id)), .sensors):
            guard id >= 0 else { return "false" }
            return "se.station_id = \(query.bind(STAIds.station(ofDatastream: id))) AND se.property = \(propertyKey(query.bind(STAIds.property(ofDatastream: id))))"
        case (.key(.int(let id)), .observedProperties):
            return "\(propertyID("p.key")) = \(query.bind(id))"
        case (.key(.string(let id)), .observations):
            guard let (datastream, start) = STAIds.observation(id) else { return "false" }
            return "o.station_id = \(query.bind(STAIds.station(ofDatastream: datastream))) "
                + "AND o.property = \(propertyKey(query.bind(STAIds.property(ofDatastream: datastream)))) "
                + "AND o.phenomenon_start = 'epoch'::timestamptz + \(query.bind(start)) * interval '1 microsecond'"
        case (.station(let id), .datastreams), (.station(let id), .sensors): return "se.station_id = \(query.bind(id))"
        case (.station(let id), .observations): return "o.station_id = \(query.bind(id))"
        case (.datastream(let id), .observations):
            guard id >= 0 else { return "false" }
            return "o.station_id = \(query.bind(STAIds.station(ofDatastream: id))) AND o.property = \(propertyKey(query.bind(STAIds.property(ofDatastream: id))))"
        case (.property(let id), .datastreams), (.property(let id), .sensors):
            return "se.property = \(propertyKey(query.bind(id)))"
        default:
            return "false"
        }
    }

    // MARK: $filter

    /// The expression as SQL: properties through `column`, every literal a bind parameter.
    static func compile(_ expression: STAExpression, set: STAEntitySet, query: inout SQLBuilder) throws -> String {
        func sql(_ e: STAExpression) throws -> String { try compile(e, set: set, query: &query) }
        switch expression {
        case .integer(let n): return "\(query.bind(n))::int8"
        case .number(let d): return "\(query.bind(d))::float8"
        case .string(let s): return "\(query.bind(s))::text"
        case .bool(let b): return "\(query.bind(b))::bool"
        case .null: return "NULL"
        case .time(let micros): return "('epoch'::timestamptz + \(query.bind(micros))::int8 * interval '1 microsecond')"
        case .geometry(let g): return "ST_GeomFromText(\(query.bind(g.wkt))::text, 4326)"
        case .property(let name): return column(name, set: set)
        case .compare(.eq, .property("id"), .string(let id)) where set == .observations,
             .compare(.eq, .string(let id), .property("id")) where set == .observations:
            // The natural key's columns, not the id's text computed for every row: a primary key lookup.
            return condition(.key(.string(id)), set: set, query: &query)
        case .compare(.eq, .property("id"), .integer(let id)) where set == .datastreams || set == .sensors,
             .compare(.eq, .integer(let id), .property("id")) where set == .datastreams || set == .sensors:
            return condition(.key(.int(id)), set: set, query: &query)
        case .compare(let op, let l, let r):
            if case .null = r { return "(\(try sql(l)) IS \(op == .eq ? "" : "NOT ")NULL)" }
            if case .null = l { return "(\(try sql(r)) IS \(op == .eq ? "" : "NOT ")NULL)" }
            let symbol = ["eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="][op.rawValue]!
            return "(\(try sql(l)) \(symbol) \(try sql(r)))"
        case .and(let l, let r): return "(\(try sql(l)) AND \(try sql(r)))"
        case .or(let l, let r): return "(\(try sql(l)) OR \(try sql(r)))"
        case .not(let e): return "(NOT \(try sql(e)))"
        case .negate(let e): return "(-(\(try sql(e))))"
        case .arithmetic(let op, let l, let r):
            let a = try sql(l), b = try sql(r)
            switch op {
            case .add: return "((\(a))::float8 + (\(b))::float8)"
            case .sub: return "((\(a))::float8 - (\(b))::float8)"
            case .mul: return "((\(a))::float8 * (\(b))::float8)"
            case .div: return "((\(a))::float8 / NULLIF((\(b))::float8, 0))"
            case .mod: return "mod((\(a))::numeric, NULLIF((\(b))::numeric, 0))"
            }
        case .function(let f, let args):
            let a = try args.map { try sql($0) }
            switch f {
            case .substringof: return "(strpos(\(a[1]), \(a[0])) > 0)"
            case .contains: return "(strpos(\(a[0]), \(a[1])) > 0)"
            case .startswith: return "starts_with(\(a[0]), \(a[1]))"
            case .endswith: return "(right(\(a[0]), length(\(a[1]))) = \(a[1]))"
            case .length: return "length(\(a[0]))::float8"
            case .tolower: return "lower(\(a[0]))"
            case .toupper: return "upper(\(a[0]))"
            case .trim: return "btrim(\(a[0]))"
            case .concat: return "(\(a[0]) || \(a[1]))"
            case .indexof: return "(strpos(\(a[0]), \(a[1])) - 1)::float8"
            case .year, .month, .day, .hour, .minute, .second:
                return "extract(\(f.rawValue) FROM (\(a[0])) AT TIME ZONE 'UTC')::float8"
            case .round: return "round((\(a[0]))::float8)"
            case .floor: return "floor((\(a[0]))::float8)"
            case .ceiling: return "ceil((\(a[0]))::float8)"
            case .geoIntersects, .stIntersects: return "ST_Intersects(\(a[0]), \(a[1]))"
            case .stWithin: return "ST_Within(\(a[0]), \(a[1]))"
            case .stContains: return "ST_Contains(\(a[0]), \(a[1]))"
            case .geoDistance: return "ST_Distance((\(a[0]))::geography, (\(a[1]))::geography)"
            }
        }
    }

    // MARK: Rows → entities

    static func json(_ text: String?) -> JSONValue {
        guard let text, let value = try? JSONParser.parse(Array(text.utf8)) else { return .null }
        return value
    }

    static func time(_ micros: Int64?) -> JSONValue { micros.map { .string(STATime.format($0)) } ?? .null }

    static func decode(_ row: PostgresRow, set: STAEntitySet) throws -> STAEntity {
        switch set {
        case .things:
            let (id, name, key, kind, tenant, altitude, properties) = try row.decode((Int64, String, String, String?, String, Double?, String).self)
            var props: [JSONValue.Member] = [.init("key", .string(key)), .init("tenant", .string(tenant))]
            if let kind { props.append(.init("kind", .string(kind))) }
            if let altitude { props.append(.init("altitude", .number(altitude))) }
            if case .object(let extra) = json(properties) { props += extra.filter { m in !props.contains { $0.key == m.key } } }
            return STAEntity(key: .int(id), members: [
                .init("name", .string(name)), .init("description", .string(kind.map { "\($0) \(key)" } ?? key)), .init("properties", .object(props)),
            ])
        case .locations, .featuresOfInterest:
            let (id, name, key, geometry) = try row.decode((Int64, String, String, String?).self)
            return STAEntity(key: .int(id), members: [
                .init("name", .string(name)), .init("description", .string(key)), .init("encodingType", .string("application/geo+json")),
                .init(set == .locations ? "location" : "feature", json(geometry)),
            ])
        case .historicalLocations:
            let (id, created) = try row.decode((Int64, Int64).self)
            return STAEntity(key: .int(id), members: [.init("time", time(created))])
        case .datastreams, .sensors:
            let (station, propertyID, stationName, stationKey, kind, property, labelEN, labelDE, unit, first, last, area)
                = try row.decode((Int64, Int64, String, String, String?, String, String, String, String, Int64, Int64, String?).self)
            let id = STAIds.datastream(station: station, property: propertyID)
            if set == .sensors {
                return STAEntity(key: .int(id), members: [
                    .init("name", .string("Sensor: \(labelEN) at \(stationName)")),
                    .init("description", .string("\(labelDE) – \(stationName) (\(stationKey))")),
                    .init("encodingType", .string("text/plain")), .init("metadata", .string(kind ?? "station")),
                ])
            }
            return STAEntity(key: .int(id), members: [
                .init("name", .string("\(labelEN) at \(stationName)")),
                .init("description", .string("\(labelDE) – \(stationName) (\(stationKey))")),
                .init("unitOfMeasurement", .object([
                    .init("name", .string(unit)), .init("symbol", .string(unit)),
                    .init("definition", .string("http://unitsofmeasure.org/ucum.html#para-30")),
                ])),
                .init("observationType", .string(observationType)),
                .init("observedArea", json(area)),
                .init("phenomenonTime", .string(STATime.format(first) + "/" + STATime.format(last))),
                .init("properties", .object([.init("station", .string(stationKey)), .init("property", .string(property))])),
            ])
        case .observedProperties:
            let (id, key, labelEN, labelDE, unit, low, high) = try row.decode((Int64, String, String, String, String, Double?, Double?).self)
            var props: [JSONValue.Member] = [.init("key", .string(key)), .init("unit", .string(unit)), .init("label_de", .string(labelDE))]
            if let low { props.append(.init("range_min", .number(low))) }
            if let high { props.append(.init("range_max", .number(high))) }
            return STAEntity(key: .int(id), members: [
                .init("name", .string(labelEN)), .init("definition", .string("urn:datenwerk:property:\(key)")),
                .init("description", .string(labelDE)), .init("properties", .object(props)),
            ])
        case .observations:
            let (station, propertyID, start, end, result, quality) = try row.decode((Int64, Int64, Int64, Int64?, Double, String?).self)
            let datastream = STAIds.datastream(station: station, property: propertyID)
            let phenomenon = STATime.format(start) + (end.map { "/" + STATime.format($0) } ?? "")
            return STAEntity(key: .string(STAIds.observation(datastream: datastream, startMicros: start)), members: [
                .init("phenomenonTime", .string(phenomenon)), .init("resultTime", time(end ?? start)),
                .init("result", result.isFinite ? .number(result) : .null), .init("resultQuality", quality.map { .string($0) } ?? .null),
            ])
        }
    }

    /// SQL with numbered binds.
    struct SQLBuilder {
        var sql = ""
        var binds = PostgresBindings()

        mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
    }
}
