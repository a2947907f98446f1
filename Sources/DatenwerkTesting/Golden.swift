import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// Fixture cases: `Fixtures/<connector>/<case>/pipeline.yaml` plus `expected.ndjson`, the WHOLE normalised
/// output (stations, observations with UCUM unit and UTC time, quarantine reasons), checked by hand.
/// `DATENWERK_UPDATE_GOLDEN=1 make test` rewrites the expected files (review the diff before committing).
package enum Golden {
    package static let fixtures = Paths.root + "/Tests/Fixtures"

    /// One line per staged item, stable and readable.
    package static func lines(_ items: [StagedItem]) -> [String] {
        items.map { item -> String in
            switch item {
            case .station(let s):
                var m: [JSONValue.Member] = [.init("station", .string(s.key))]
                if let name = s.name { m.append(.init("name", .string(name))) }
                if let kind = s.kind { m.append(.init("kind", .string(kind))) }
                if let p = s.location {
                    m.append(.init("lon", .number(round(p.longitude, 7))))
                    m.append(.init("lat", .number(round(p.latitude, 7))))
                    if let alt = p.altitude { m.append(.init("alt", .number(alt))) }
                }
                if case .object(let props) = s.properties, !props.isEmpty { m.append(.init("properties", s.properties)) }
                return JSONValue.object(m).serialized
            case .observation(let o):
                var m: [JSONValue.Member] = [
                    .init("station", .string(o.stationKey)), .init("property", .string(o.property)),
                    .init("unit", .string(Vocabulary.property(o.property)?.unit ?? "?")),
                    .init("start", .string(TimestampParser.formatISO8601(o.phenomenonStart))),
                ]
                if let end = o.phenomenonEnd { m.append(.init("end", .string(TimestampParser.formatISO8601(end)))) }
                m.append(.init("value", .number(round(o.result, 9))))
                if let q = o.quality { m.append(.init("quality", .string(q))) }
                return JSONValue.object(m).serialized
            case .quarantined(let q):
                let e = q.error
                var m: [JSONValue.Member] = [.init("quarantined", .string(e.reason)), .init("origin", .string((e.location.origin as NSString).lastPathComponent))]
                if let line = e.location.line { m.append(.init("line", .number(Double(line)))) }
                if let record = e.location.record { m.append(.init("record", .number(Double(record)))) }
                if let path = e.location.path { m.append(.init("path", .string(path))) }
                if let field = e.field { m.append(.init("field", .string(field))) }
                return JSONValue.object(m).serialized
            }
        }
    }

    package static func round(_ x: Double, _ digits: Int) -> Double {
        let f = pow(10, Double(digits))
        return (x * f).rounded() / f
    }
}
