import DatenwerkCore

/// Applies the `transform:` steps (rename, set, filter, melt) to records, in order.
/// Field indexes are cached, so rows that share a header share the transformed header too.
struct RecordTransformer {
    private let steps: [TransformStep]
    private var renameCache: [Int: (ObjectIdentifier, FieldIndex)] = [:]
    private var meltCache: [Int: (ObjectIdentifier, FieldIndex, [Int], [(Int, String)])] = [:]

    init(_ steps: [TransformStep]) { self.steps = steps }

    var isEmpty: Bool { steps.isEmpty }
    /// Records dropped by `filter` steps so far (the run counts their values as skipped: `filtered`).
    private(set) var filteredOut = 0

    mutating func apply(_ record: Record, into output: inout [Record]) {
        var records = [record]
        for (index, step) in steps.enumerated() {
            var next: [Record] = []
            next.reserveCapacity(records.count)
            for var r in records {
                switch step {
                case .rename(let pairs):
                    if let cached = renameCache[index], cached.0 == ObjectIdentifier(r.fields) {
                        r.fields = cached.1
                    } else {
                        let source = r.fields
                        var names = source.names
                        for (from, to) in pairs { if let i = source.position(of: from) { names[i] = to } }
                        r.fields = FieldIndex(names)
                        renameCache[index] = (ObjectIdentifier(source), r.fields)
                    }
                    next.append(r)
                case .set(let pairs):
                    for (field, value) in pairs { r.set(field, .string(value)) }
                    next.append(r)
                case .filter(let field, let values, let keep):
                    let text = r[field]?.text ?? ""
                    if values.contains(text) == keep { next.append(r) } else { filteredOut += 1 }
                case .melt(let idFields, let valueFields, let nameField, let valueField):
                    let plan: (ObjectIdentifier, FieldIndex, [Int], [(Int, String)])
                    if let cached = meltCache[index], cached.0 == ObjectIdentifier(r.fields) {
                        plan = cached
                    } else {
                        let ids = idFields.compactMap { r.fields.position(of: $0) }
                        let idSet = Set(idFields)
                        let names = valueFields ?? r.fields.names.filter { !idSet.contains($0) }
                        let columns = names.compactMap { name in r.fields.position(of: name).map { ($0, name) } }
                        plan = (ObjectIdentifier(r.fields), FieldIndex(idFields + [nameField, valueField]), ids, columns)
                        meltCache[index] = plan
                    }
                    let idValues = plan.2.map { r.values[$0] }
                    for (position, name) in plan.3 {
                        var values = idValues
                        values.append(.string(name))
                        values.append(r.values[position])
                        next.append(Record(fields: plan.1, values: values, location: r.location, raw: r.raw))
                    }
                }
            }
            records = next
        }
        output.append(contentsOf: records)
    }
}
