/// Where a record or a problem came from: a file or URL, and a line, record number or JSON path in it.
package struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// File path or URL (without credentials).
    package var origin: String
    /// 1-based physical line in the origin, when the format has lines.
    package var line: Int?
    /// 1-based record number within the origin.
    package var record: Int?
    /// JSON path of the record inside its document, e.g. `$.items[17]`.
    package var path: String?

    package init(origin: String, line: Int? = nil, record: Int? = nil, path: String? = nil) {
        self.origin = origin
        self.line = line
        self.record = record
        self.path = path
    }

    /// `data.csv:14` or `page-2.json, $.items[17]` or `data.csv, record 3`.
    package var description: String {
        if let line { return "\(origin):\(line)" }
        if let path { return "\(origin), \(path)" }
        if let record { return "\(origin), record \(record)" }
        return origin
    }
}

/// Field names of a record in order, with a name → index lookup. Shared by every row of one CSV file.
package final class FieldIndex: Sendable {
    package let names: [String]
    private let positions: [String: Int]

    package init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        positions.reserveCapacity(names.count)
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
    }

    package func position(of name: String) -> Int? { positions[name] }

    package var count: Int { names.count }
}

/// One decoded record from a source: named fields plus where it came from and its raw text.
///
/// CSV rows share one `FieldIndex`; JSON records get one per object.
package struct Record: Sendable {
    package var fields: FieldIndex
    package var values: [JSONValue]
    package var location: SourceLocation
    /// The raw payload as it appeared in the source (CSV line, JSON element text), kept for quarantine.
    package var raw: String

    package init(fields: FieldIndex, values: [JSONValue], location: SourceLocation, raw: String) {
        self.fields = fields
        self.values = values
        self.location = location
        self.raw = raw
    }

    /// A record from a JSON value; objects become fields, anything else becomes the single field `value`.
    package init(json: JSONValue, location: SourceLocation, raw: String) {
        if case .object(let members) = json {
            self.fields = FieldIndex(members.map(\.key))
            self.values = members.map(\.value)
        } else {
            self.fields = FieldIndex(["value"])
            self.values = [json]
        }
        self.location = location
        self.raw = raw
    }

    /// The value of a field. An exact field name wins; otherwise a dotted path
    /// (`location.latitude`, `sensordatavalues.0.value`) descends into JSON values.
    package subscript(name: String) -> JSONValue? {
        if let i = fields.position(of: name) { return values[i] }
        guard name.contains(".") else { return nil }
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var head = parts.removeFirst()
        // Allow field names that contain dots themselves: take the longest known prefix.
        while fields.position(of: head) == nil, !parts.isEmpty { head += "." + parts.removeFirst() }
        guard let i = fields.position(of: head) else { return nil }
        var value = values[i]
        for part in parts {
            if let index = Int(part), case .array = value {
                guard let next = value[index] else { return nil }
                value = next
            } else {
                guard let next = value[part] else { return nil }
                value = next
            }
        }
        return value
    }

    /// Sets a field, adding it at the end when it is new.
    package mutating func set(_ name: String, _ value: JSONValue) {
        if let i = fields.position(of: name) {
            values[i] = value
        } else {
            fields = FieldIndex(fields.names + [name])
            values.append(value)
        }
    }

    /// The record as one JSON object.
    package var asJSON: JSONValue {
        .object(zip(fields.names, values).map { JSONValue.Member($0, $1) })
    }
}
