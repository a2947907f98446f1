import DatenwerkCore

/// What the data itself says about a dataset, computed by the server from the observations table.
public struct DatasetFacts: Sendable, Hashable {
    public struct Property: Sendable, Hashable {
        public var key: String
        /// Canonical UCUM unit.
        public var unit: String
        public var labelDE: String
        public var labelEN: String

        public init(key: String, unit: String, labelDE: String, labelEN: String) {
            self.key = key
            self.unit = unit
            self.labelDE = labelDE
            self.labelEN = labelEN
        }
    }

    public var observationCount: Int
    public var stationCount: Int
    /// Earliest phenomenon start, microseconds since 1970 UTC.
    public var firstMicros: Int64?
    /// Latest phenomenon start (or end), microseconds since 1970 UTC.
    public var lastMicros: Int64?
    /// When the data last changed (latest load), microseconds since 1970 UTC → `dct:modified`.
    public var lastModifiedMicros: Int64?
    /// When the first observation was loaded, microseconds since 1970 UTC → `dct:issued` (omitted when nil).
    public var firstLoadedMicros: Int64?
    /// Extent of the located stations.
    public var bbox: BoundingBox?
    public var properties: [Property]

    public init(
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
public struct StationPoint: Sendable, Hashable {
    public var key: String
    public var name: String?
    public var longitude: Double
    public var latitude: Double

    public init(key: String, name: String? = nil, longitude: Double, latitude: Double) {
        self.key = key
        self.name = name
        self.longitude = longitude
        self.latitude = latitude
    }
}
