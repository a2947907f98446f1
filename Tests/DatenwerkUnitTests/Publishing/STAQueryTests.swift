import DatenwerkCore
@testable import DatenwerkPublishing
import Foundation
import Testing

/// The SensorThings query parser (`STAQuery.swift`): paths, query options, `$filter` into a typed AST with its
/// precedence, and every hostile input ending in a typed `STAQueryError`, never a trap.
@Suite struct STAQueryTests {
    func filter(_ text: String) throws -> STAExpression { try STAFilterParser.parse(text) }

    func error(_ text: String, set: STAEntitySet = .observations) -> STAQueryError? {
        do {
            _ = try STAQueryOptions.parse([("$filter", text)], for: set)
            return nil
        } catch {
            return error
        }
    }

    @Test("comparisons, logic and arithmetic follow OData precedence")
    func precedence() throws {
        #expect(try filter("result add 2 mul 3 gt 10") == .compare(.gt, .arithmetic(.add, .property("result"), .arithmetic(.mul, .integer(2), .integer(3))), .integer(10)))
        #expect(try filter("a eq 1 or b eq 2 and c eq 3")
                == .or(.compare(.eq, .property("a"), .integer(1)), .and(.compare(.eq, .property("b"), .integer(2)), .compare(.eq, .property("c"), .integer(3)))))
        #expect(try filter("(a eq 1 or b eq 2) and not c eq 3")
                == .and(.or(.compare(.eq, .property("a"), .integer(1)), .compare(.eq, .property("b"), .integer(2))), .not(.compare(.eq, .property("c"), .integer(3)))))
        #expect(try filter("result sub 1 sub 2 eq 0") == .compare(.eq, .arithmetic(.sub, .arithmetic(.sub, .property("result"), .integer(1)), .integer(2)), .integer(0)))
        #expect(try filter("id gt -1") == .compare(.gt, .property("id"), .integer(-1)))
        #expect(try filter("result le -2.5e1") == .compare(.le, .property("result"), .number(-25)))
        #expect(try filter("-(result) lt 3") == .compare(.lt, .negate(.property("result")), .integer(3)))
    }

    @Test("literals: strings with quotes, instants, geometries, functions")
    func literals() throws {
        #expect(try filter("name eq 'O''Brien'") == .compare(.eq, .property("name"), .string("O'Brien")))
        #expect(try filter("phenomenonTime ge 2024-10-27T01:00:00.000Z") == .compare(.ge, .property("phenomenonTime"), .time(1_729_990_800_000_000)))
        #expect(try filter("phenomenonTime lt 2024-10-27T03:00:00+02:00") == .compare(.lt, .property("phenomenonTime"), .time(1_729_990_800_000_000)))
        #expect(try filter("substringof('Klima', name)") == .function(.substringof, [.string("Klima"), .property("name")]))
        #expect(try filter("startswith(name, 'MS') and endswith(name, '1')")
                == .and(.function(.startswith, [.property("name"), .string("MS")]), .function(.endswith, [.property("name"), .string("1")])))
        let g = try filter("geo.intersects(location, geography'POLYGON((7 51, 8 51, 8 52, 7 52, 7 51))')")
        #expect(g == .function(.geoIntersects, [.property("location"), .geometry(STAGeometry(wkt: "POLYGON((7.0 51.0,8.0 51.0,8.0 52.0,7.0 52.0,7.0 51.0))"))]))
        #expect(try filter("st_within(location, geometry'POINT(7.5 51.5)')") == .function(.stWithin, [.property("location"), .geometry(STAGeometry(wkt: "POINT(7.5 51.5)"))]))
        #expect(STATime.format(1_729_990_800_000_000) == "2024-10-27T01:00:00Z")
        #expect(STATime.format(1_729_990_800_123_400) == "2024-10-27T01:00:00.123400Z")
        #expect(STATime.parse(STATime.format(-62_135_596_800_000_000)) == -62_135_596_800_000_000)   // 0001-01-01
    }

    @Test("type checks against the entity set")
    func types() {
        #expect(error("result gt 3") == nil)
        #expect(error("phenomenonTime ge 2024-01-01T00:00:00Z and result lt 10.5") == nil)
        #expect(error("name eq 'x'", set: .things) == nil)
        #expect(error("geo.intersects(location, geography'POINT(7 51)')", set: .locations) == nil)
        #expect(error("result eq 'x'")?.kind == .type)
        #expect(error("phenomenonTime gt 5")?.kind == .type)
        #expect(error("nosuch eq 1")?.kind == .unknownProperty)
        #expect(error("parameters eq 1")?.kind == .unsupported)
        #expect(error("result add 'a' eq 1")?.kind == .type)
        #expect(error("result")?.kind == .type)   // a number where a condition is wanted
    }

    @Test("hostile $filter values end in a typed error, never a trap")
    func hostile() {
        let cases: [(String, STAQueryError.Kind)] = [
            ("result eq 1; DROP TABLE datenwerk.observations; --", .syntax),
            ("result eq 1) OR (1=1", .syntax),
            ("name eq '' OR 1=1 --'", .syntax),
            ("result eq 1 UNION SELECT * FROM pg_user", .syntax),
            ("result gt 1e400", .number),
            ("result gt -1e400", .number),
            ("id eq 99999999999999999999999", .number),
            ("result eq " + String(repeating: "9", count: 50), .number),
            ("result eq 1" + String(repeating: " or result eq 1", count: 3000), .tooLong),
            ("result eq 1" + String(repeating: " or result eq 1", count: 1000), .tooLong),
            ("name eq '" + String(repeating: "x", count: 100_000) + "'", .tooLong),
            (String(repeating: "(", count: 10_000) + "result eq 1" + String(repeating: ")", count: 10_000), .tooDeep),
            (String(repeating: "(", count: 1000) + "result eq 1" + String(repeating: ")", count: 1000), .tooDeep),
            (String(repeating: "not ", count: 1000) + "result eq 1", .tooDeep),
            (String(repeating: "-", count: 1000) + "result eq 1", .tooDeep),
            ("phenomenonTime gt 2024-13-45T99:00:00Z", .syntax),
            ("phenomenonTime gt 2024-02-30T00:00:00Z", .syntax),
            ("geo.intersects(location, geography'POLYGON((7 51, 8 51, 7 51))')", .syntax),
            ("geo.intersects(location, geography'POINT(1e400 5)')", .syntax),
            ("geo.intersects(location, geography'POINT(7 51)); DROP TABLE x; --')", .syntax),
            ("geo.intersects(location, geography'CIRCLE(7 51)')", .unsupported),
            ("pg_sleep(10) eq 1", .unsupported),
            ("result eq 1 eq 1", .syntax),
            ("name eq 'unclosed", .syntax),
            ("result eq \u{0}", .syntax),
            ("", .syntax),
            ("this is not ( a filter", .syntax),
        ]
        for (text, kind) in cases {
            let found = error(text, set: .observations) ?? error(text, set: .locations)
            #expect(found?.kind == kind, "\(text.prefix(80)): \(String(describing: found))")
            #expect(found?.option == "$filter")
        }
    }

    @Test("10k nested parentheses within the length limit are a depth error")
    func deepNesting() {
        let text = String(repeating: "(", count: 10_000) + "result eq 1" + String(repeating: ")", count: 10_000)
        #expect(throws: STAQueryError.self) { try STAFilterParser.parse(text) }
        do {
            _ = try STAFilterParser.parse(text)
        } catch {
            #expect(error.kind == .tooDeep)
        }
    }

    @Test("paths: entity sets, ids, navigation, properties")
    func paths() throws {
        let things = try STAResource.parse("Things")
        #expect(things.set == .things && !things.single && things.constraints.isEmpty)
        let one = try STAResource.parse("Things(7)")
        #expect(one.single && one.constraints == [.key(.int(7))])
        let nav = try STAResource.parse("Things(7)/Datastreams")
        #expect(nav.set == .datastreams && !nav.single && nav.constraints == [.station(7)] && nav.along.count == 1)
        let d = STAIds.datastream(station: 7, property: 12345)
        let obs = try STAResource.parse("Datastreams(\(d))/Observations")
        #expect(obs.set == .observations && obs.constraints == [.datastream(d)])
        let up = try STAResource.parse("Observations('\(d):1000')/Datastream/Thing")
        #expect(up.set == .things && up.single && up.constraints == [.key(.int(7))] && up.along.count == 2)
        let property = try STAResource.parse("Things(7)/name/$value")
        #expect(property.property == "name" && property.rawValue)
        #expect(STAIds.observation("\(d):1000")! == (d, 1000))
        #expect(STAIds.station(ofDatastream: d) == 7 && STAIds.property(ofDatastream: d) == 12345)
        for bad in ["Nothing", "Things(abc)", "Things('1')", "Observations(1)", "Things(1)/Nothing", "Things(99999999999999999999)"] {
            #expect(throws: STAQueryError.self, "\(bad)") { try STAResource.parse(bad) }
        }
        #expect(throws: STAQueryError.self) { try STAResource.parse("Things/Datastreams") }
        #expect(throws: STAQueryError.self) { try STAResource.parse(String(repeating: "Things(1)/Locations(1)/", count: 20)) }
    }

    @Test("query options: top, skip, count, orderby, select, nested expand")
    func options() throws {
        let o = try STAQueryOptions.parse([("$top", "5"), ("$skip", "10"), ("$count", "true"), ("$orderby", "phenomenonTime desc,id"),
                                           ("$select", "id,result"), ("x", "ignored")], for: .observations)
        #expect(o.top == 5 && o.skip == 10 && o.count)
        #expect(o.orderBy == [STAOrder(property: "phenomenonTime", descending: true), STAOrder(property: "id", descending: false)])
        #expect(o.select == ["id", "result"])
        #expect(try STAQueryOptions.parse([("$top", "999999")], for: .things).top == STALimits.maxTop)
        let e = try STAQueryOptions.parse([("$expand", "Observations($top=1;$orderby=phenomenonTime desc),ObservedProperty,Thing/Locations($select=name)")], for: .datastreams)
        #expect(e.expand.map(\.navigation) == ["Observations", "ObservedProperty", "Thing"])
        #expect(e.expand[0].options.top == 1 && e.expand[0].options.orderBy == [STAOrder(property: "phenomenonTime", descending: true)])
        #expect(e.expand[2].options.expand.first?.navigation == "Locations" && e.expand[2].options.expand.first?.options.select == ["name"])
        let nested = try STAQueryOptions.parse([("$expand", "Datastreams($expand=Observations($filter=result gt 1;$top=2))")], for: .things)
        #expect(nested.expand[0].options.expand[0].options.filter == .compare(.gt, .property("result"), .integer(1)))
        for (name, value) in [("$top", "-1"), ("$top", "1e400"), ("$skip", "abc"), ("$count", "yes"), ("$orderby", "nosuch"), ("$orderby", "id sideways"),
                              ("$select", "nosuch"), ("$expand", "Nothing"), ("$expand", "Datastreams($top=x)"), ("$expand", "Datastreams(("),
                              ("$expand", String(repeating: "Datastreams/Thing/", count: 10) + "Datastreams"), ("$bogus", "1")] {
            #expect(throws: STAQueryError.self, "\(name)=\(value.prefix(60))") { try STAQueryOptions.parse([(name, value)], for: .things) }
        }
        #expect(throws: STAQueryError.self) { try STAQueryOptions.parse([("$filter", "a"), ("$filter", "b")], for: .things) }
    }

    @Test("random byte strings never trap the parser")
    func randomInputs() {
        var generator = STASplitMix(seed: 15)
        let alphabet = Array("()',-. 0123456789eE+:TZabdeglmnoqrstuxy/geography'POINT".utf8)
        for _ in 0..<5000 {
            let length = Int(generator.next() % 80)
            let bytes = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            let text = String(decoding: bytes, as: UTF8.self)
            if let expression = try? STAFilterParser.parse(text) {
                _ = try? STAFilterParser.check(expression, set: .observations)
            }
        }
    }
}

struct STASplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
