import DatenwerkCore
import Testing

@testable import DatenwerkTransforms

/// Issue 12: "did you mean" is the same on every run, whatever order a dictionary or set hands out its keys.
@Suite struct DidYouMeanTests {
    @Test func tiesGoToTheSmallestDistanceThenAlphabetically() {
        #expect(closestMatch(to: "ab", in: ["ad", "ac", "aa"]) == "aa")
        #expect(closestMatch(to: "ab", in: ["aa", "ac", "ad"]) == "aa")
        #expect(closestMatch(to: "abc", in: ["xbc", "abd", "ab"]) == "ab")    // all at distance 1: alphabetical
        #expect(closestMatch(to: "abcd", in: ["abce", "abcd"]) == "abcd")      // distance 0 beats 1 in any order
        #expect(closestMatch(to: "abcd", in: ["abcd", "abce"]) == "abcd")
        // Letter case does not decide the order before the letters do: `km/h` < `KMH` (as `km/h` < `kmh`).
        #expect(closestMatch(to: "kmhh", in: ["KMH", "km/h"]) == "km/h")
        #expect(closestMatch(to: "kmhh", in: ["km/h", "KMH"]) == "km/h")
        #expect(closestMatch(to: "zzzzzz", in: ["a", "b"]) == nil)
    }

    /// A unit cell of a megabyte (hostile or broken input, one per row under `unit_field:`) is answered without an
    /// O(n·m) edit distance against every spelling: the old loop needed minutes per cell, past the time limit.
    @Test(.timeLimit(.minutes(1))) func hugeSpellingsAreRuledOutByLength() throws {
        let huge = String(repeating: "µg/m³", count: 200_000)
        for _ in 0..<20 {
            #expect(closestMatch(to: huge, in: Array(Units.units.keys) + Array(Units.aliases.keys)) == nil)
            #expect(throws: UnitError.self) { try Units.conversion(from: huge, to: "ug/m3") }
        }
        // Close spellings still find their match.
        #expect(closestMatch(to: "ug/m33", in: Array(Units.units.keys)) == "ug/m3")
    }

    @Test func unitSuggestionsAreTheSameOnEveryRunAndOrder() {
        let candidates = Array(Units.units.keys) + Array(Units.aliases.keys) + Array(Units.wordAliases.keys)
        for name in ["Kfz", "Kfx", "kPz", "dB(C)", "ug/m4", "Grad Celsus", "kmhh"] {
            let expected = closestMatch(to: name, in: candidates.sorted())
            var seen = Set<String?>()
            for _ in 0..<200 { seen.insert(closestMatch(to: name, in: candidates.shuffled())) }
            #expect(seen == [expected], "\(name): \(seen)")
            var suggestions = Set<String>()
            for _ in 0..<50 { suggestions.insert(Units.suggestion(for: name)) }
            #expect(suggestions.count == 1, "\(name): \(suggestions)")
        }
        // The unknown-unit message names a UCUM code before another spelling when both are as close.
        #expect(Units.suggestion(for: "kmhh") == "; did you mean 'km/h'?")
        #expect(Units.canonicalSymbol("Kfz") == "1")      // the example now resolves instead of suggesting 'kPa'
    }

    @Test func vocabularySuggestionsAreStable() {
        let keys = Vocabulary.properties.map(\.key)
        for name in ["vehicle_cont", "noise", "co2", "temprature", "dew_point"] {
            let expected = closestMatch(to: name, in: keys)
            for _ in 0..<100 { #expect(closestMatch(to: name, in: keys.shuffled()) == expected) }
        }
        #expect(closestMatch(to: "vehicle_cont", in: keys.shuffled()) == "vehicle_count")
    }
}
