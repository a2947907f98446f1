import DatenwerkCore
import DatenwerkFormats
import Foundation
import Synchronization

/// One quarantined record as stored, to be tried again.
package struct StoredQuarantine: Sendable {
    package var id: Int64
    package var error: RecordError
    package var raw: String
    package var fields: JSONValue?

    package init(id: Int64, error: RecordError, raw: String, fields: JSONValue?) {
        self.id = id
        self.error = error
        self.raw = raw
        self.fields = fields
    }
}

/// `datenwerk quarantine replay`: quarantined records go through the pipeline's *current* configuration
/// once more, as one run. Records that map now are loaded and leave quarantine in that run's transaction;
/// those still bad stay, with the new reason; a failed run changes nothing.
///
/// What can be replayed:
/// - records of a `source:` + `observations:` pipeline that were decoded (their fields are stored; JSON
///   records are parsed again from their raw text when stored before fields were kept);
/// - whole bodies of a push connector (`ttn`): each is handed to the connector again as if pushed.
/// Fragments of other connectors' documents (one XML element, one CSV line without its header) cannot be
/// rebuilt; they are reported as not replayable and stay, and a new run (or a backfill of the window) reads
/// them from the source again.
package final class QuarantineReplay: Sendable {
    /// The next page of stored records with an id greater than the argument (empty at the end).
    package typealias Pages = @Sendable (_ afterID: Int64) async throws -> [StoredQuarantine]

    package struct StillBad: Sendable {
        package var id: Int64
        package var error: RecordError
    }

    private struct Outcome {
        var loaded: [Int64] = []
        var filtered: [Int64] = []
        var stillBad: [StillBad] = []
        var notReplayable: [(id: Int64, reason: String)] = []
    }

    let pages: Pages
    private let outcome = Mutex(Outcome())

    package init(pages: @escaping Pages) {
        self.pages = pages
    }

    /// Records that map now (loaded with the run) or that the transform now filters out: they leave quarantine.
    package var resolvedIDs: [Int64] { outcome.withLock { $0.loaded + $0.filtered } }
    package var loadedCount: Int { outcome.withLock { $0.loaded.count } }
    package var filteredCount: Int { outcome.withLock { $0.filtered.count } }
    /// Records that are still bad, with the reason the current configuration gives.
    package var stillBadRecords: [StillBad] { outcome.withLock { $0.stillBad } }
    package var notReplayableRecords: [(id: Int64, reason: String)] { outcome.withLock { $0.notReplayable } }

    func resolved(_ id: Int64, loaded didLoad: Bool) {
        outcome.withLock { if didLoad { $0.loaded.append(id) } else { $0.filtered.append(id) } }
    }
    func bad(_ id: Int64, _ error: RecordError) { outcome.withLock { $0.stillBad.append(StillBad(id: id, error: error)) } }
    func skip(_ id: Int64, _ reason: String) { outcome.withLock { $0.notReplayable.append((id, reason)) } }

    /// One line for the run's events and the CLI.
    package var summary: String {
        outcome.withLock { o in
            let total = o.loaded.count + o.filtered.count + o.stillBad.count + o.notReplayable.count
            var text = "replayed \(total) quarantined record\(total == 1 ? "" : "s"): \(o.loaded.count) loaded"
            if !o.filtered.isEmpty { text += ", \(o.filtered.count) filtered out by the transform" }
            text += ", \(o.stillBad.count) still quarantined"
            if !o.notReplayable.isEmpty { text += ", \(o.notReplayable.count) not replayable" }
            return text
        }
    }
}

/// The extractor of a replay run: stored records instead of the source.
struct ReplayRun: ConnectorRun {
    enum Mode {
        /// A generic pipeline: transform steps and observation mapping, as in `MappedSource`.
        case mapped(RecordTransformer, ObservationMapper, jsonRecords: Bool)
        /// A push connector: each stored body is pushed again.
        case pushed(any PushConnector, ConnectorConfig, ConnectorContext)
        /// Nothing can be rebuilt; every record is reported with this reason.
        case none(String)
    }

    let replay: QuarantineReplay
    var mode: Mode
    private var after: Int64 = 0
    private var done = false
    var bytesRead = 0
    var origins: [String] = []

    init(replay: QuarantineReplay, mode: Mode) {
        self.replay = replay
        self.mode = mode
    }

    mutating func next() async throws -> ConnectorBatch? {
        guard !done else { return nil }
        let page = try await replay.pages(after)
        guard let last = page.last else {
            done = true
            return nil
        }
        after = last.id
        var items: [StagedItem] = []
        for stored in page {
            bytesRead += stored.raw.utf8.count
            if origins.last != stored.error.location.origin { origins.append(stored.error.location.origin) }
            try await replayOne(stored, into: &items)
        }
        return ConnectorBatch(items: items, recordsRead: page.count)
    }

    private mutating func replayOne(_ stored: StoredQuarantine, into items: inout [StagedItem]) async throws {
        // Which of two values is right is not a mapping question: replaying one would load it by chance.
        if stored.error.reason.hasPrefix("conflicting_duplicate:") {
            replay.skip(stored.id, "it is one of several different values for one station, property and time in a run; correct the source (or remove the wrong record) and run the pipeline again, or backfill the window")
            return
        }
        switch mode {
        case .none(let reason):
            replay.skip(stored.id, reason)
        case .mapped(var transformer, var mapper, let jsonRecords):
            defer { mode = .mapped(transformer, mapper, jsonRecords: jsonRecords) }
            let record: Record
            if let fields = stored.fields {
                record = Record(json: fields, location: stored.error.location, raw: stored.raw)
            } else if jsonRecords, let value = try? JSONParser.parse(Array(stored.raw.utf8)) {
                record = Record(json: value, location: stored.error.location, raw: stored.raw)
            } else {
                replay.skip(stored.id, "it was rejected before it had fields (\(stored.error.reason)); a mapping change cannot fix that: correct the source and run the pipeline again")
                return
            }
            var scratch: [Record] = []
            let before = items.count
            if let (error, _) = MappedSource.map(record, transformer: &transformer, mapper: &mapper, scratch: &scratch, into: &items) {
                replay.bad(stored.id, error)
            } else {
                replay.resolved(stored.id, loaded: items.count > before)
            }
        case .pushed(let connector, let config, var context):
            context.pushed = [PushedDocument(origin: stored.error.location.origin, body: Array(stored.raw.utf8))]
            var run = try connector.start(config, context: context)
            var firstBad: RecordError?
            var loaded = false
            while let batch = try await run.next() {
                for item in batch.items {
                    if case .quarantined(let q) = item {
                        firstBad = firstBad ?? q.error
                    } else {
                        if case .observation = item { loaded = true }
                        items.append(item)
                    }
                }
            }
            if let firstBad {
                replay.bad(stored.id, firstBad)
            } else {
                replay.resolved(stored.id, loaded: loaded)
            }
        }
    }
}
