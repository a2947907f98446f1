@testable import DatenwerkPostgres
import Testing

/// The loader's series numbering: the per-property cache of the last station must give the same numbers as a
/// plain dictionary, whatever order the rows come in.
@Suite struct SeriesSlotsTests {
    @Test(arguments: [false, true])
    func slotsMatchAPlainDictionaryInAnyOrder(stationByStation: Bool) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            var slots = SeriesSlots()
            var reference: [SeriesSlots.Key: Int] = [:]
            let stations = Int.random(in: 1...40, using: &generator)
            let properties = Int.random(in: 1...6, using: &generator)
            for row in 0..<5000 {
                // Station by station, a random property per row (as municipal files come: the cache's case), or
                // any station at random (the hash table's case).
                let station = Int64(stationByStation ? row / (3 * properties) % stations : Int.random(in: 0..<stations, using: &generator))
                let property = Int.random(in: 0..<properties, using: &generator)
                let key = SeriesSlots.Key(station: station, property: property)
                if let expected = reference[key] {
                    #expect(slots.slot(station: station, property: property) == expected, "\(key)")
                } else {
                    #expect(slots.slot(station: station, property: property) == nil, "\(key)")
                    let slot = slots.insert(station: station, property: property)
                    #expect(slot == reference.count)
                    reference[key] = slot
                }
            }
            #expect(slots.count == reference.count)
        }
    }
}
