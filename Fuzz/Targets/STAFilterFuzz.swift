// Fuzz target: the SensorThings query parser (DatenwerkPublishing/STAQuery.swift) — `$filter` into its typed AST,
// the type check against every entity set, the other query options and resource paths.
// Nothing traps; the same input parses to the same result twice; a parsed filter has no more nodes than the limit
// allows; a parsed instant formats and parses back to itself; a parsed WKT literal parses again to itself.
import DatenwerkCore
// STAQuery.swift is compiled into this module (scripts/fuzz.sh extra_sources): no import of DatenwerkPublishing.

private func nodes(_ e: STAExpression) -> Int {
    switch e {
    case .integer, .number, .string, .bool, .null, .time, .geometry, .property: return 1
    case .compare(_, let l, let r), .and(let l, let r), .or(let l, let r), .arithmetic(_, let l, let r): return 1 + nodes(l) + nodes(r)
    case .not(let x), .negate(let x): return 1 + nodes(x)
    case .function(_, let args): return 1 + args.reduce(0) { $0 + nodes($1) }
    }
}

private func check(_ e: STAExpression) {
    switch e {
    case .time(let micros):
        Fuzz.require(STATime.parse(STATime.format(micros)) == micros, "instant \(micros) does not round-trip: \(STATime.format(micros))")
    case .geometry(let g):
        let again = try? STAWKT.parse(g.wkt)
        Fuzz.require(again == g, "WKT \(g.wkt) does not parse back to itself")
    case .compare(_, let l, let r), .and(let l, let r), .or(let l, let r), .arithmetic(_, let l, let r):
        check(l)
        check(r)
    case .not(let x), .negate(let x): check(x)
    case .function(_, let args): args.forEach(check)
    default: break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSTAFilter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let text = String(decoding: input.document, as: UTF8.self)
    let set = STAEntitySet.allCases[Int(input.options) % STAEntitySet.allCases.count]

    switch input.options >> 4 {
    case 0...9:
        let first = Result { try STAFilterParser.parse(text) }
        let second = Result { try STAFilterParser.parse(text) }
        switch (first, second) {
        case (.success(let a), .success(let b)):
            Fuzz.require(a == b, "two parses of \(text.debugDescription) differ")
            Fuzz.require(nodes(a) <= STALimits.tokens, "\(nodes(a)) nodes from at most \(STALimits.tokens) tokens")
            check(a)
            for each in STAEntitySet.allCases { _ = try? STAFilterParser.check(a, set: each) }
        case (.failure(let a as STAQueryError), .failure(let b as STAQueryError)):
            Fuzz.require(a == b, "two parses of \(text.debugDescription) fail differently: \(a) / \(b)")
            Fuzz.require(a.option == "$filter", "a $filter error names \(a.option)")
        default:
            Fuzz.require(false, "\(text.debugDescription): parses differ or fail with another error type")
        }
    case 10, 11:
        let name = ["$expand", "$orderby", "$select", "$top", "$skip", "$count"][Int(input.seed) % 6]
        if let options = try? STAQueryOptions.parse([(name, text)], for: set) {
            Fuzz.require(options.top >= 0 && options.top <= STALimits.maxTop, "$top \(options.top) out of range")
            Fuzz.require(options.skip >= 0 && options.skip <= STALimits.maxSkip, "$skip \(options.skip) out of range")
        }
    default:
        if let resource = try? STAResource.parse(text) {
            Fuzz.require(resource.along.count < 16, "a path of \(resource.along.count) steps")
            if resource.rawValue { Fuzz.require(resource.property != nil, "$value without a property") }
        }
    }
    return 0
}
