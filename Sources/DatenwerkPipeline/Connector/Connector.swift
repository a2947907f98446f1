import DatenwerkCore
import DatenwerkHTTP
import Foundation
import Logging

/// A source that knows its format and how its records map to the common model
/// (DWD, sensor.community, SensorThings, …). Pipelines name it as `source.kind`; its configuration
/// keys are declared in `keys`, so a pipeline is checked (unknown keys, types, required keys)
/// before anything runs, and `datenwerk connectors describe` documents it.
///
/// A connector never builds its own HTTP client (it gets the shared fetcher in `ConnectorContext`)
/// and never parses a format that `DatenwerkFormats` already parses.
package protocol Connector: Sendable {
    /// The `source.kind` that selects it, e.g. `sensor-community`.
    var kind: String { get }
    /// One line for `connectors list`.
    var summary: String { get }
    /// Its configuration keys (besides `kind`).
    var keys: [ConfigKey] { get }
    /// A complete example pipeline for `connectors describe`.
    var sampleYAML: String { get }
    /// Checks across keys (e.g. "either url or path"); each problem names its key.
    func check(_ config: ConnectorConfig) -> [ConfigProblem]
    /// Starts reading; nothing is fetched before the first `next()`.
    func start(_ config: ConnectorConfig, context: ConnectorContext) throws -> any ConnectorRun
}

extension Connector {
    package func check(_ config: ConnectorConfig) -> [ConfigProblem] { [] }
}

/// One run of a connector: pulls batches of normalised items.
package protocol ConnectorRun {
    /// The next batch, or nil at the end. Bad records come back as `.quarantined` items.
    mutating func next() async throws -> ConnectorBatch?
    var bytesRead: Int { get }
    var origins: [String] { get }
    /// What the run history should show besides counts (e.g. "unchanged since …"), read after the last batch.
    var events: [String] { get }
    /// What the next run should know (e.g. the version of a document read), merged into the checkpoint; the next
    /// run finds it in `ConnectorContext.checkpoint`. Read after the last batch.
    var sourceState: [JSONValue.Member] { get }
}

extension ConnectorRun {
    package var events: [String] { [] }
    package var sourceState: [JSONValue.Member] { [] }
}

package struct ConnectorBatch: Sendable {
    package var items: [StagedItem]
    /// Source records behind these items (for the run's "records read").
    package var recordsRead: Int
    /// Values the source offered in these records, counted where the connector first sees them (a cell of a wide
    /// row, a value field, a parameter column, one Observation of a document), before deciding their fate. Each
    /// ends loaded (an `.observation`), quarantined (a `.quarantined` item stands for `values` of them) or in
    /// `skipped`: the run checks `valuesRead = loaded + quarantined + skipped` — zero silent drops.
    /// Nil: this connector does not count values yet (the run then cannot prove the balance).
    package var valuesRead: Int?
    /// Values left out on purpose, by rule (`SkipRule`).
    package var skipped: SkipCounts

    package init(items: [StagedItem], recordsRead: Int, valuesRead: Int? = nil, skipped: SkipCounts = SkipCounts()) {
        self.items = items
        self.recordsRead = recordsRead
        self.valuesRead = valuesRead
        self.skipped = skipped
    }
}

/// What a connector gets to work with.
package struct ConnectorContext: Sendable {
    package var pipeline: String
    package var tenant: String
    package var fetcher: HTTPFetcher
    /// What this run fetches with: the shared fetcher, the run's retry log and validators (conditional GETs), and the
    /// pipeline's `request:` block (headers, timeout, secrets masked). Read documents with it (`DocumentReader`).
    package var session: FetchSession
    package var logger: Logger
    /// Documents handed over by the server for a push connector; nil when the connector should read its source.
    package var pushed: [PushedDocument]?
    /// The checkpoint of the last successful run (nil: none, a backfill chunk or a replay), with what its
    /// connector run left in `sourceState`.
    package var checkpoint: JSONValue?
    /// For a `RecordSourceConnector`: the pipeline's `source.format`, `transform` and `observations` blocks.
    package var records: PipelineRecords?

    package init(pipeline: String, tenant: String, fetcher: HTTPFetcher, session: FetchSession? = nil, logger: Logger, pushed: [PushedDocument]? = nil) {
        self.pipeline = pipeline
        self.tenant = tenant
        self.fetcher = fetcher
        self.session = session ?? FetchSession(fetcher: fetcher)
        self.logger = logger
        self.pushed = pushed
    }
}

/// One request body received by `datenwerk serve` for a push pipeline.
package struct PushedDocument: Sendable {
    /// Where it came from, for quarantine and run history (e.g. `POST /ingest/ttn-emden from 10.0.0.5`).
    package var origin: String
    package var body: [UInt8]
    /// Set when the server already rejected the body (e.g. the database refused it alone): the run keeps it in
    /// quarantine with this reason instead of mapping it.
    package var rejection: String?

    package init(origin: String, body: [UInt8], rejection: String? = nil) {
        self.origin = origin
        self.body = body
        self.rejection = rejection
    }
}

/// What a push connector says about a request body before it is stored.
package enum PushAdmission: Sendable, Equatable {
    /// Store it (through a run, committed before the answer).
    case accept
    /// A valid message that carries nothing to store (e.g. a join accept); answered 200, not stored.
    case ignore(String)
    /// Malformed or implausible (every message is checked on its own, exactly as a run would map it): answered
    /// 400 with the reason; the body is kept in quarantine and nothing of it is stored.
    case reject(String)
    /// Well-formed but not for this pipeline: answered 403, not stored.
    case forbidden(String)
}

/// A connector that finds and fetches documents (e.g. a CKAN dataset's resource) but leaves their records to the
/// pipeline's own `source.format`, `transform` and `observations` blocks, read and applied exactly as for a generic
/// http source (`ConnectorContext.records`): the pipeline reader then takes `format` beside the connector's keys
/// (`ConnectorConfig.format`) and requires `observations`.
package protocol RecordSourceConnector: Connector {}

/// A connector that receives its records over HTTP (webhooks) instead of fetching them.
/// The server authenticates the sender with a token from the environment variable `tokenVariable(config)`,
/// asks `admit` about each body, then runs the pipeline over the admitted bodies with `ConnectorContext.pushed`.
package protocol PushConnector: Connector {
    func tokenVariable(_ config: ConnectorConfig) -> String
    /// `pipeline`: the pipeline's name, as a run's `ConnectorContext.pipeline` (station keys may start with it).
    func admit(_ body: [UInt8], config: ConnectorConfig, pipeline: String) -> PushAdmission
}

/// A documented configuration key of a connector: its name, type, typed default and help, declared once
/// (through `Setting` / `DefaultedSetting`, which also read it back typed). `connectors describe` prints it,
/// the pipeline reader checks values against `kind`, and older spellings in `deprecatedNames` are still read
/// with a warning that names the preferred one.
package struct ConfigKey: Sendable {
    package enum Kind: Sendable {
        case string, int, number, bool, strings, stringMap
        /// An http(s) URL or a file path (relative paths resolve against the pipeline file; `*` globs).
        case location
        case choice([String])
    }

    package var name: String
    package var kind: Kind
    package var required: Bool
    package var help: String
    /// The value a connector reads when the pipeline leaves the key out (nil: no default).
    package var defaultValue: ConfigValue?
    /// Older spellings still accepted, each with a deprecation warning naming `name`.
    package var deprecatedNames: [String]
    /// Turns a value into the key's Swift type (a `String`, an `Int`, a choice's enum case, …); nil when it
    /// does not fit. Set by the typed settings; nil for a key declared without a type.
    package var decode: (@Sendable (ConfigValue) -> (any Sendable)?)?

    package init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: ConfigValue? = nil, deprecated: [String] = [],
                decode: (@Sendable (ConfigValue) -> (any Sendable)?)? = nil, _ help: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.help = help
        self.defaultValue = defaultValue
        self.deprecatedNames = deprecated
        self.decode = decode
    }

    /// The default as `connectors describe` prints it.
    package var defaultText: String? { defaultValue?.text }

    package var typeName: String {
        switch kind {
        case .string: return "text"
        case .int: return "whole number"
        case .number: return "number"
        case .bool: return "true/false"
        case .strings: return "list of text"
        case .stringMap: return "mapping text → text"
        case .location: return "URL or file path"
        case .choice(let options): return options.joined(separator: " | ")
        }
    }
}

/// The one spelling of a time zone key in a pipeline, and the ones still read with a deprecation warning.
package enum TimeZoneKey {
    package static let name = "timezone"
    package static let deprecated = ["zone", "time_zone"]
}

/// A Swift type a configuration value decodes to.
package protocol ConfigValueType: Sendable {
    /// The key kind a value of this type is written as (a `String` may also be declared `.location`).
    static var configKind: ConfigKey.Kind { get }
    init?(configValue: ConfigValue)
    var configValue: ConfigValue { get }
}

extension String: ConfigValueType {
    package static var configKind: ConfigKey.Kind { .string }
    package init?(configValue: ConfigValue) {
        switch configValue {
        case .string(let s): self = s
        case .int(let i): self = String(i)
        case .number(let d): self = JSONValue.format(d)
        default: return nil
        }
    }
    package var configValue: ConfigValue { .string(self) }
}

extension Int: ConfigValueType {
    package static var configKind: ConfigKey.Kind { .int }
    package init?(configValue: ConfigValue) { if case .int(let i) = configValue { self = i } else { return nil } }
    package var configValue: ConfigValue { .int(self) }
}

extension Double: ConfigValueType {
    package static var configKind: ConfigKey.Kind { .number }
    package init?(configValue: ConfigValue) {
        switch configValue {
        case .number(let d): self = d
        case .int(let i): self = Double(i)
        default: return nil
        }
    }
    package var configValue: ConfigValue { .number(self) }
}

extension Bool: ConfigValueType {
    package static var configKind: ConfigKey.Kind { .bool }
    package init?(configValue: ConfigValue) { if case .bool(let b) = configValue { self = b } else { return nil } }
    package var configValue: ConfigValue { .bool(self) }
}

extension Array: ConfigValueType where Element == String {
    package static var configKind: ConfigKey.Kind { .strings }
    package init?(configValue: ConfigValue) { if case .strings(let s) = configValue { self = s } else { return nil } }
    package var configValue: ConfigValue { .strings(self) }
}

extension Dictionary: ConfigValueType where Key == String, Value == String {
    package static var configKind: ConfigKey.Kind { .stringMap }
    package init?(configValue: ConfigValue) { if case .stringMap(let m) = configValue { self = m } else { return nil } }
    package var configValue: ConfigValue { .stringMap(self) }
}

/// A `choice` key's values as an enum: the options are its raw values, in declaration order.
package protocol ConfigChoice: ConfigValueType, RawRepresentable, CaseIterable where RawValue == String {}

extension ConfigChoice {
    package static var configKind: ConfigKey.Kind { .choice(allCases.map(\.rawValue)) }
    package init?(configValue: ConfigValue) {
        guard case .string(let s) = configValue else { return nil }
        self.init(rawValue: s)
    }
    package var configValue: ConfigValue { .string(rawValue) }
}

/// A key without a default, read back as `Value?` (`config[setting]`).
package struct Setting<Value: ConfigValueType>: Sendable {
    package let key: ConfigKey
    package var name: String { key.name }

    package init(_ name: String, required: Bool = false, deprecated: [String] = [], _ help: String) {
        self.init(name, Value.configKind, required: required, deprecated: deprecated, help)
    }

    /// With `kind` where the type alone does not say it (a `String` that is a `.location`).
    package init(_ name: String, _ kind: ConfigKey.Kind, required: Bool = false, deprecated: [String] = [], _ help: String) {
        key = ConfigKey(name, kind, required: required, deprecated: deprecated, decode: { Value(configValue: $0) }, help)
    }
}

/// A key with a typed default, read back as `Value` (`config[setting]`: the pipeline's value, else the default).
package struct DefaultedSetting<Value: ConfigValueType>: Sendable {
    package let key: ConfigKey
    package let defaultValue: Value
    package var name: String { key.name }

    package init(_ name: String, default defaultValue: Value, deprecated: [String] = [], _ help: String) {
        self.init(name, Value.configKind, default: defaultValue, deprecated: deprecated, help)
    }

    /// With `kind` where the type alone does not say it (a `String` that is a `.location`).
    package init(_ name: String, _ kind: ConfigKey.Kind, default defaultValue: Value, deprecated: [String] = [], _ help: String) {
        self.defaultValue = defaultValue
        key = ConfigKey(name, kind, default: defaultValue.configValue, deprecated: deprecated, decode: { Value(configValue: $0) }, help)
    }
}

/// A connector whose keys decode once, before it starts, into a typed `Configuration`.
package protocol ConnectorConfiguration: Sendable {
    /// Every key, each declared once (name, type, default, help), in the order `connectors describe` lists them.
    static var keys: [ConfigKey] { get }
    /// Reads the validated values, defaults where a key is absent; throws only for values `check` refuses.
    init(_ config: ConnectorConfig) throws
}

/// A `Connector` that starts from its decoded `Configuration`; its `keys` are the configuration's.
package protocol ConfiguredConnector: Connector {
    associatedtype Configuration: ConnectorConfiguration
    func start(_ configuration: Configuration, context: ConnectorContext) throws -> any ConnectorRun
}

extension ConfiguredConnector {
    package var keys: [ConfigKey] { Configuration.keys }

    package func start(_ config: ConnectorConfig, context: ConnectorContext) throws -> any ConnectorRun {
        try start(Configuration(config), context: context)
    }

    /// The decoded configuration, type-erased (for tests and tools that hold `any Connector`).
    package func decodeConfiguration(_ config: ConnectorConfig) throws -> any ConnectorConfiguration {
        try Configuration(config)
    }
}

/// A required key was absent (only when a `ConnectorConfig` is built by hand: the pipeline reader reports it first).
package struct MissingConfigKey: Error, CustomStringConvertible {
    package var key: String
    package var description: String { "missing required key '\(key)'" }
}

package enum ConfigValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case number(Double)
    case bool(Bool)
    case strings([String])
    case stringMap([String: String])

    /// The value as `connectors describe` prints a default: `DE`, `100`, `false`, `[de, en]`.
    package var text: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .number(let d): return JSONValue.format(d)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let s): return "[" + s.joined(separator: ", ") + "]"
        case .stringMap(let m): return "{" + m.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A connector's validated configuration.
package struct ConnectorConfig: Sendable {
    package var kind: String
    package var values: [String: ConfigValue]
    /// The `format:` block of a `RecordSourceConnector` (nil for other connectors).
    package var format: FormatSpec?

    package init(kind: String, values: [String: ConfigValue]) {
        self.kind = kind
        self.values = values
    }

    package func string(_ key: String) -> String? {
        switch values[key] {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .number(let d): return JSONValue.format(d)
        default: return nil
        }
    }

    package func int(_ key: String) -> Int? { if case .int(let i) = values[key] { return i } else { return nil } }
    package func number(_ key: String) -> Double? {
        switch values[key] {
        case .number(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    package func bool(_ key: String) -> Bool? { if case .bool(let b) = values[key] { return b } else { return nil } }
    package func strings(_ key: String) -> [String]? { if case .strings(let s) = values[key] { return s } else { return nil } }
    package func stringMap(_ key: String) -> [String: String]? { if case .stringMap(let m) = values[key] { return m } else { return nil } }

    /// The key's value, nil when the pipeline leaves it out.
    package subscript<Value>(_ setting: Setting<Value>) -> Value? { values[setting.name].flatMap(Value.init(configValue:)) }
    /// The key's value, its default when the pipeline leaves it out.
    package subscript<Value>(_ setting: DefaultedSetting<Value>) -> Value { values[setting.name].flatMap(Value.init(configValue:)) ?? setting.defaultValue }
    /// A required key's value.
    package func required<Value>(_ setting: Setting<Value>) throws -> Value {
        guard let value = self[setting] else { throw MissingConfigKey(key: setting.name) }
        return value
    }
    /// Whether the pipeline sets the key (a default does not count).
    package func has(_ key: ConfigKey) -> Bool { values[key.name] != nil }
    package func has<Value>(_ setting: Setting<Value>) -> Bool { has(setting.key) }
    package func has<Value>(_ setting: DefaultedSetting<Value>) -> Bool { has(setting.key) }
}

/// A problem found by `Connector.check`, reported at the key's position.
package struct ConfigProblem: Sendable {
    package var key: String
    package var message: String
    package init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }
}

/// The connectors a pipeline may name: an explicit list, filled by whoever wires the application.
package struct ConnectorRegistry: Sendable {
    package let connectors: [any Connector]

    package init(_ connectors: [any Connector]) {
        self.connectors = connectors
    }

    package static let none = ConnectorRegistry([])

    package func connector(_ kind: String) -> (any Connector)? {
        connectors.first { $0.kind == kind }
    }

    package var kinds: [String] { connectors.map(\.kind) }
}
