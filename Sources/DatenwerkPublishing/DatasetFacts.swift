import DatenwerkCore

/// What the data itself says about a dataset, computed by the server from the observations table.
package struct DatasetFacts: Sendable, Hashable {
    package struct Property: Sendable, Hashable {
        package var key: String
        /// Canonical UCUM unit.
        package var unit: String
        package var labelDE: String
        package var labelEN: String

        package init(key: String, unit: String, labelDE: String, labelEN: String) {
            self.key = key
            self.unit = unit
            self.labelDE = labelDE
            self.labelEN = labelEN
        }
    }

    package var observationCount: Int
    package var stationCount: Int
    /// Earliest phenomenon start, microseconds since 1970 UTC.
    package var firstMicros: Int64?
    /// Latest phenomenon start (or end), microseconds since 1970 UTC.
    package var lastMicros: Int64?
    /// When the data last changed (latest load), microseconds since 1970 UTC → `dct:modified`.
    package var lastModifiedMicros: Int64?
    /// When the first observation was loaded, microseconds since 1970 UTC → `dct:issued` (omitted when nil).
    package var firstLoadedMicros: Int64?
    /// Extent of the located stations.
    package var bbox: BoundingBox?
    package var properties: [Property]

    package init(
        observationCount: Int = 0, stationCount: Int = 0, firstMicros: Int64? = nil, lastMicros: Int64? = nil,
        lastModifiedMicros: Int64? = nil, firstLoadedMicros: Int64? = nil, bbox: BoundingBox? = nil, properties: [Property] = []
    ) {
        self.observationCount = observationCount
        self.stationCount = stationCount
        self.firstMicros = firstMicros
        self.lastMicros = lastMicros
        self.lastModifiedMicros = lastModifiedMicros
        self.firstLoadedMicros = firstLoadedMicros
        self.bbox = bbox
        self.properties = properties
    }
}

/// A station drawn on the catalog page's map.
package struct StationPoint: Sendable, Hashable {
    package var key: String
    package var name: String?
    package var longitude: Double
    package var latitude: Double

    package init(key: String, name: String? = nil, longitude: Double, latitude: Double) {
        self.key = key
        self.name = name
        self.longitude = longitude
        self.latitude = latitude
    }
}
