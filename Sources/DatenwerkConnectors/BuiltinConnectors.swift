import DatenwerkPipeline

/// The connectors this build knows, in the order `connectors list` shows them.
package enum BuiltinConnectors {
    package static let registry = ConnectorRegistry([
        SensorCommunityConnector(),
        DWDConnector(),
        SensorThingsConnector(),
        SMARDConnector(),
        NGSIConnector(),
        UBAAirConnector(),
        CountersConnector(),
        DATEX2Connector(),
        ParkingConnector(),
        TTNConnector(),
        ChirpStackConnector(),
        CKANConnector(),
    ])
}
