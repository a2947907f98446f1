import DatenwerkCore
import DatenwerkPipeline
import Logging
import PostgresNIO

/// The privacy gate's bookkeeping in the database (docs/privacy.md, migration 0010): each load writes its
/// pipeline's `min_count` (or its absence) to `datenwerk.dataset_privacy` and marks the series it wrote in
/// `datenwerk.private_series`, in the load's transaction — so the dashboard views (`datenwerk_api`) suppress
/// exactly what the spec says from the commit on. Downloads and the APIs that read one pipeline's rows take
/// the gate from the spec (`DatasetMetadata.minCount`) or from `dataset_privacy`.
enum PrivacyGate {
    /// Records the gate of `pipeline` and the series of this run's rows (starts `fromMicros…toMicros`; nil
    /// when the run wrote none).
    static func record(
        pipeline: PipelineSpec, runID: Int64, fromMicros: Int64?, toMicros: Int64?, on connection: GuardedConnection, logger: Logger
    ) async throws {
        let dataset = pipeline.datasetMetadata
        let minCount = dataset?.minCount
        let written = fromMicros != nil && toMicros != nil && fromMicros! <= toMicros!
        try await connection.query("""
            SELECT datenwerk.record_privacy(\(pipeline.name), \(dataset?.id ?? pipeline.name), \(minCount)::integer, \(runID),
                CASE WHEN \(written) THEN 'epoch'::timestamptz + \(fromMicros ?? 0) * interval '1 microsecond' END,
                CASE WHEN \(written) THEN 'epoch'::timestamptz + \(toMicros ?? 0) * interval '1 microsecond' END)
            """, logger: logger)
    }
}

/// SQL fragments of the privacy gate for the API queries.
enum PrivacySQL {
    /// True when `value` (an SQL expression) is below the gate of the pipeline whose name is bound at
    /// `pipeline` (`$n`); false when it has none.
    static func belowGate(_ value: String, pipeline: String) -> String {
        "datenwerk.below_min_count(\(value), (SELECT dp.min_count FROM datenwerk.dataset_privacy dp WHERE dp.pipeline = \(pipeline)))"
    }
}
