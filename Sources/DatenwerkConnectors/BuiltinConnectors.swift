import DatenwerkPipeline

/// The connectors this build knows, in the order `connectors list` shows them.
public enum BuiltinConnectors {
    public static let registry = ConnectorRegistry([
        SensorCommunityConnector(),
    ])
}
