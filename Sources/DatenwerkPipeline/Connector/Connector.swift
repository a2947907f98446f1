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
public protocol Connector: Sendable {
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
    public func check(_ config: ConnectorConfig) -> [ConfigProblem] { [] }
}

/// One run of a connector: pulls batches of normalised items.
public protocol ConnectorRun {
    /// The next batch, or nil at the end. Bad records come back as `.quarantined` items.
    mutating func next() async throws -> ConnectorBatch?
    var bytesRead: Int { get }
    var origins: [String] { get }
}

public struct ConnectorBatch: Sendable {
    public var items: [StagedItem]
    /// Source records behind these items (for the run's "records read").
    public var recordsRead: Int

    public init(items: [StagedItem], recordsRead: Int) {
        self.items = items
        self.recordsRead = recordsRead
    }
}

/// What a connector gets to work with.
public struct ConnectorContext: Sendable {
    public var pipeline: String
    public var tenant: String
    public var fetcher: HTTPFetcher
    public var logger: Logger
    /// Documents handed over by the server for a push connector; nil when the connector should read its source.
    public var pushed: [PushedDocument]?

    public init(pipeline: String, tenant: String, fetcher: HTTPFetcher, logger: Logger, pushed: [PushedDocument]? = nil) {
        self.pipeline = pipeline
        self.tenant = tenant
        self.fetcher = fetcher
        self.logger = logger
        self.pushed = pushed
    }
}

/// One request body received by `datenwerk serve` for a push pipeline.
public struct PushedDocument: Sendable {
    /// Where it came from, for quarantine and run history (e.g. `POST /ingest/ttn-emden from 10.0.0.5`).
    public var origin: String
    public var body: [UInt8]
    /// Set when the server already rejected the body (e.g. the database refused it alone): the run keeps it in
    /// quarantine with this reason instead of mapping it.
    public var rejection: String?

    public init(origin: String, body: [UInt8], rejection: String? = nil) {
        self.origin = origin
        self.body = body
        self.rejection = rejection
    }
}

/// What a push connector says about a request body before it is stored.
public enum PushAdmission: Sendable, Equatable {
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

/// A connector that receives its records over HTTP (webhooks) instead of fetching them.
/// The server authenticates the sender with a token from the environment variable `tokenVariable(config)`,
/// asks `admit` about each body, then runs the pipeline over the admitted bodies with `ConnectorContext.pushed`.
public protocol PushConnector: Connector {
    func tokenVariable(_ config: ConnectorConfig) -> String
    func admit(_ body: [UInt8], config: ConnectorConfig) -> PushAdmission
}

/// A documented configuration key of a connector.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable {
        case string, int, number, bool, strings, stringMap
        /// An http(s) URL or a file path (relative paths resolve against the pipeline file; `*` globs).
        case location
        case choice([String])
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var help: String
    public var defaultValue: String?

    public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: String? = nil, _ help: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.help = help
        self.defaultValue = defaultValue
    }

    public var typeName: String {
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

public enum ConfigValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case number(Double)
    case bool(Bool)
    case strings([String])
    case stringMap([String: String])
}

/// A connector's validated configuration.
public struct ConnectorConfig: Sendable {
    public var kind: String
    public var values: [String: ConfigValue]

    public init(kind: String, values: [String: ConfigValue]) {
        self.kind = kind
        self.values = values
    }

    public func string(_ key: String) -> String? {
        switch values[key] {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .number(let d): return JSONValue.format(d)
        default: return nil
        }
    }

    public func int(_ key: String) -> Int? { if case .int(let i) = values[key] { return i } else { return nil } }
    public func number(_ key: String) -> Double? {
        switch values[key] {
        case .number(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    public func bool(_ key: String) -> Bool? { if case .bool(let b) = values[key] { return b } else { return nil } }
    public func strings(_ key: String) -> [String]? { if case .strings(let s) = values[key] { return s } else { return nil } }
    public func stringMap(_ key: String) -> [String: String]? { if case .stringMap(let m) = values[key] { return m } else { return nil } }
}

/// A problem found by `Connector.check`, reported at the key's position.
public struct ConfigProblem: Sendable {
    public var key: String
    public var message: String
    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }
}

/// The connectors a pipeline may name: an explicit list, filled by whoever wires the application.
public struct ConnectorRegistry: Sendable {
    public let connectors: [any Connector]

    public init(_ connectors: [any Connector]) {
        self.connectors = connectors
    }

    public static let none = ConnectorRegistry([])

    public func connector(_ kind: String) -> (any Connector)? {
        connectors.first { $0.kind == kind }
    }

    public var kinds: [String] { connectors.map(\.kind) }
}
