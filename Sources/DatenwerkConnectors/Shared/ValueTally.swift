import DatenwerkCore
import DatenwerkPipeline

/// A connector mapping's books for one batch: the values its records offered (counted where the mapping first
/// sees them, before deciding their fate) and those it left out on purpose, by rule. The run around the mapping
/// hands them on in `ConnectorBatch.valuesRead` / `skipped`; every other value of a record ends as an
/// `.observation` or inside a `.quarantined` item.
struct ValueTally: Sendable {
    var valuesRead = 0
    var skipped = SkipCounts()
    /// Rows the decoder handed over that are not records (a header row a mapping reads itself, with
    /// `CSVOptions.header = false`): left out of "records read".
    var notRecords = 0

    init() {}

    /// `n` values offered by the source.
    mutating func read(_ n: Int = 1) { valuesRead += n }

    /// `n` values left out under `rule`.
    mutating func skip(_ rule: SkipRule, _ n: Int = 1) { skipped.add(rule, n) }

    /// Values offered and left out (both counted) under `rule`: a value the mapping sees and drops at once.
    mutating func readAndSkip(_ rule: SkipRule, _ n: Int = 1) {
        read(n)
        skip(rule, n)
    }

    /// The books so far, cleared for the next batch.
    mutating func take() -> ValueTally {
        defer { self = ValueTally() }
        return self
    }

    /// Values already settled by `items` (loaded observations and the values quarantined items stand for).
    static func settled<C: Collection>(_ items: C) -> Int where C.Element == StagedItem {
        var n = 0
        for item in items {
            switch item {
            case .observation: n += 1
            case .quarantined(let q): n += q.values
            case .station: break
            }
        }
        return n
    }

    /// How many values a record that failed stands for: those it offered (`self` against `before`, the books
    /// when the record began) that neither became items (`items` from `firstItem` on) nor were skipped. A record
    /// that failed before offering anything (unreadable, no id) offers one value as far as anyone can tell: it is
    /// counted as read here and stands for that one.
    mutating func unsettled(since before: ValueTally, items: [StagedItem], from firstItem: Int) -> Int {
        let offered = valuesRead - before.valuesRead
        guard offered > 0 else {
            read()
            return 1
        }
        let skippedHere = skipped.total - before.skipped.total
        return max(0, offered - skippedHere - Self.settled(items[firstItem...]))
    }
}
