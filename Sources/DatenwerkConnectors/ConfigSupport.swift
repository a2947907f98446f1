import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTransforms

extension DefaultedSetting where Value == String {
    /// The time zone key of a connector, in its one spelling (`timezone`); `zone` and `time_zone` are still read,
    /// with a deprecation warning.
    static func timezone(default zone: String, _ help: String) -> Self {
        DefaultedSetting(TimeZoneKey.name, default: zone, deprecated: TimeZoneKey.deprecated, help)
    }
}

/// A problem found while reading a record, before its location is attached (then it becomes a `RecordError`).
struct FieldProblem: Error {
    var field: String?
    var reason: String
    init(field: String?, _ reason: String) {
        self.field = field
        self.reason = reason
    }
}

/// The check of a `timezone` key set in the pipeline: the resolver's own message when the zone is unknown.
func checkTimeZone(_ config: ConnectorConfig, _ setting: DefaultedSetting<String>) -> ConfigProblem? {
    guard config.has(setting) else { return nil }
    do { _ = try LocalTimeResolver(zone: config[setting]) } catch { return ConfigProblem(key: setting.name, "\(error)") }
    return nil
}
