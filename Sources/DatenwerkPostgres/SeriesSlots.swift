/// Dense numbers 0, 1, 2, … for the (station, property) series of one run, in the order they first appear
/// (`ObservationLoad` numbers them once per row; the dashboard aggregates keep their state under the same numbers).
///
/// A load looks its series up for every row (10M rows: 10M lookups). Municipal files come station by station
/// with several properties per line, so the rows of one station's properties alternate: a cache of the last
/// station per property index answers nearly every lookup with an array read and one comparison, and only
/// a station change per property goes through the hash table (measured: hashing was 3.5 % of a 10M load's
/// client CPU).
struct SeriesSlots {
    struct Key: Hashable {
        var station: Int64
        var property: Int
    }

    private var index: [Key: Int] = [:]
    /// Per property index: the last station looked up and its slot (-1: none yet).
    private var recent: [(station: Int64, slot: Int)] = []
    private(set) var count = 0

    /// The slot of a series seen before, or nil.
    @inline(__always) mutating func slot(station: Int64, property: Int) -> Int? {
        if property >= 0, property < recent.count {
            let last = recent[property]
            if last.slot >= 0, last.station == station { return last.slot }
        }
        guard let slot = index[Key(station: station, property: property)] else { return nil }
        remember(station: station, property: property, slot: slot)
        return slot
    }

    /// Numbers a series not seen before (after `slot` gave nil) and returns its slot.
    mutating func insert(station: Int64, property: Int) -> Int {
        let slot = count
        count += 1
        index[Key(station: station, property: property)] = slot
        remember(station: station, property: property, slot: slot)
        return slot
    }

    private mutating func remember(station: Int64, property: Int, slot: Int) {
        guard property >= 0, property < 4096 else { return }
        while recent.count <= property { recent.append((station: 0, slot: -1)) }
        recent[property] = (station: station, slot: slot)
    }
}
