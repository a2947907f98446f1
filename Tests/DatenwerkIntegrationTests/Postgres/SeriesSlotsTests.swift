@testable import DatenwerkPostgres
import Testing

/// The loader's series numbering: the per-property cache of the last station must give the same slots as the
/// hash table alone, whatever order the rows come in.
@Suite struct SeriesSlotsTests {
    @Test func slotsMatchAPlainDictionaryInAnyOrder() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var slots = SeriesSlots()
            var reference: [SeriesSlots.Key: Int] = [:]
            let stations = Int64.random(in: 1...40, using: &generator)
            let properties = Int.random(in: 1...6, using: &generator)
            for _ in 0..<5000 {
                // Station by station with properties in turn (as municipal files come), or anywhere at random.
                let station = round % 2 == 0 ? Int64.random(in: 1...stations, using: &generator) : Int64(reference.count / max(properties, 1) % Int(stations) + 1)
                let property = Int.random(in: 0..<properties, using: &generator)
                let key = SeriesSlots.Key(station: station, property: property)
                if let expected = reference[key] {
                    #expect(slots.slot(station: station, property: property) == expected)
                } else {
                    #expect(slots.slot(station: station, property: property) == nil)
                    let slot = slots.insert(station: station, property: property)
                    #expect(slot == reference.count)
                    reference[key] = slot
                }
            }
            #expect(slots.count == reference.count)
            for (key, slot) in reference { #expect(slots.keys[slot] == key) }
            slots.removeAll()
            #expect(slots.count == 0)
            #expect(slots.slot(station: 1, property: 0) == nil)
        }
    }
}
