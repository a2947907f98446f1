import DatenwerkPublishing

/// The SQL of `datenwerk bench` (run through `psql`, which is part of what it measures). Kept here because all
/// SQL lives in DatenwerkPostgres. Nothing names the columns of `datenwerk.observations`: the statements read
/// the table's shape (key, partitions) from the catalog, so they follow whatever the migrations make of it.
package enum BenchSQL {
    /// The bench's own schema: the plain table of (a) and the copy of `observations` of (e).
    package static let schema = "datenwerk_bench"

    /// Drops Datenwerk's schema and its migration record, so `migrate` builds it again from nothing.
    package static let dropDatenwerk = """
        DROP SCHEMA IF EXISTS datenwerk_api CASCADE;
        DROP SCHEMA IF EXISTS datenwerk CASCADE;
        DROP TABLE IF EXISTS public.datenwerk_migrations;
        DROP SCHEMA IF EXISTS \(schema) CASCADE;
        CREATE SCHEMA \(schema);
        """

    /// Run before each timed step, each statement on its own (VACUUM refuses a transaction block): vacuum and
    /// analyze everything the steps before loaded, then write their dirty buffers out.
    package static let settle = ["VACUUM (ANALYZE)", "CHECKPOINT"]

    /// (a): a plain table without index or constraint for the normalised rows.
    package static let createPlain = """
        DROP TABLE IF EXISTS \(schema).plain;
        CREATE TABLE \(schema).plain (station text, property text, phenomenon_start timestamptz, result double precision);
        """

    package static let plainTable = "\(schema).plain"

    /// The columns of `datenwerk.observations`' primary key, comma-separated, in key order (one line).
    package static let observationKey = """
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ordinality)
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'datenwerk.observations'::regclass AND i.indisprimary
        """

    /// The columns of `datenwerk.observations` a COPY can write (not generated, not dropped), comma-separated.
    package static let copyColumns = """
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
        FROM pg_attribute
        WHERE attrelid = 'datenwerk.observations'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
        """

    /// Every row of `datenwerk.observations` (`columns`: from `copyColumns`) in key order (`key`: from
    /// `observationKey`), for `\copy (…) TO`.
    package static func dump(columns: String, orderBy key: String) -> String {
        "SELECT \(columns.isEmpty ? "*" : columns) FROM datenwerk.observations ORDER BY \(key.isEmpty ? "1" : key)"
    }

    /// (e): an empty copy of `datenwerk.observations` with its indexes, defaults and partitioning, and one
    /// partition for each of its partitions with the same bounds (no foreign keys: `LIKE` does not copy them).
    package static let createObservationsCopy = """
        DROP TABLE IF EXISTS \(schema).observations;
        DO $bench$
        DECLARE
            part record;
        BEGIN
            EXECUTE format('CREATE TABLE \(schema).observations (LIKE datenwerk.observations INCLUDING ALL) PARTITION BY %s',
                           pg_get_partkeydef('datenwerk.observations'::regclass));
            FOR part IN
                SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'datenwerk.observations'::regclass
            LOOP
                EXECUTE format('CREATE TABLE \(schema).%I PARTITION OF \(schema).observations %s', part.relname, part.bound);
            END LOOP;
        END
        $bench$;
        """

    package static let observationsCopy = "\(schema).observations"

    /// Checks what is in `datenwerk.observations_view` (the bench's database holds only its own pipeline) against
    /// the normalised rows in the plain table: one line per property
    /// `property|expected rows|loaded rows|missing|unexpected|different values|expected sum|loaded sum`
    /// (values equal within 1e-9, relative).
    package static let verify = """
            WITH loaded AS (
                SELECT v.station_key AS station, v.property, v.phenomenon_start, v.result FROM datenwerk.observations_view v
            ), joined AS (
                SELECT coalesce(e.property, l.property) AS property, e.result AS expected, l.result AS got
                FROM \(schema).plain e
                FULL JOIN loaded l ON l.station = e.station AND l.property = e.property AND l.phenomenon_start = e.phenomenon_start
            )
            SELECT property, count(expected), count(got),
                   count(*) FILTER (WHERE got IS NULL), count(*) FILTER (WHERE expected IS NULL),
                   count(*) FILTER (WHERE abs(got - expected) > 1e-9 * greatest(1, abs(expected))),
                   round(sum(expected)::numeric, 3), round(sum(got)::numeric, 3)
            FROM joined GROUP BY property ORDER BY property
            """

    /// The statement `datenwerk serve` runs for a whole dataset's download (ObservationStore.selection), with
    /// its one parameter (the pipeline) written in, for `\copy (…) TO`.
    package static func download(pipeline: String) -> String {
        let query = ObservationStore.selection(pipeline: pipeline, filter: ObservationFilter(), through: nil, keysOnly: false)
        return query.sql.replacingOccurrences(of: "$1", with: "'" + pipeline.replacingOccurrences(of: "'", with: "''") + "'")
    }

    /// The download statement (its FROM, WHERE and ORDER BY) with each row's observation columns, station key,
    /// name and geometry, for `ogr2ogr -sql`.
    package static func downloadWithGeometry(pipeline: String) -> String {
        let sql = download(pipeline: pipeline)
        let from = " FROM datenwerk.observations o"
        guard let range = sql.range(of: from) else {
            return "SELECT q.*, s.geom FROM (\(sql)) q JOIN datenwerk.stations s ON true LIMIT 0"
        }
        return "SELECT o.*, s.key AS station_key, s.name AS station_name, s.geom" + from
            + " JOIN datenwerk.stations s ON s.id = o.station_id" + sql[range.upperBound...]
    }

    /// Rows of a table (for the bench's own counts).
    package static func count(_ table: String) -> String { "SELECT count(*) FROM \(table)" }
}
