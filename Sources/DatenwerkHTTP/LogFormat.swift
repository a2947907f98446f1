import Foundation
import Logging

/// How the command line writes its log (`DATENWERK_LOG_FORMAT`): `human` — swift-log's stream format on standard
/// error, as always — or `json`: one JSON object per line (time, level, label, message, the logger's metadata and
/// the current `LogContext`: pipeline, run, job, step), for log collectors.
///
/// Both mask secrets before anything is written: the values of `LogSecrets` (the password of `DATABASE_URL`,
/// tokens from the environment), passwords in URLs (`scheme://user:password@…`), and metadata values under a
/// secret-sounding key (`password`, `token`, `secret`, `authorization`, `api_key`, …).
package enum LogFormat: String, Sendable, CaseIterable {
    case human, json

    /// `DATENWERK_LOG_FORMAT` (`json` or `human`); nil when unset or unknown.
    package static func from(environment: [String: String]) -> LogFormat? {
        environment["DATENWERK_LOG_FORMAT"].flatMap { LogFormat(rawValue: $0.lowercased()) }
    }
}

/// What the log of one unit of work is about: set with `LogContext.$current.withValue(…)` around a run or a
/// job, and every JSON log line written inside it carries these fields. The process-wide defaults
/// (`LogContext.process`, from the command line: `run-job <job> --pipeline <file>`) fill what is not set.
package struct LogContext: Sendable, Hashable {
    package var pipeline: String?
    package var run: Int64?
    package var job: Int64?
    package var step: String?

    package init(pipeline: String? = nil, run: Int64? = nil, job: Int64? = nil, step: String? = nil) {
        self.pipeline = pipeline
        self.run = run
        self.job = job
        self.step = step
    }

    @TaskLocal package static var current = LogContext()

    /// Pipeline and job of this process, from its arguments: `datenwerk run <pipeline>`, `datenwerk run-job <job>
    /// --owner … --pipeline <file>` (the child process of a job).
    package static func fromArguments(_ arguments: [String]) -> LogContext {
        var context = LogContext()
        guard arguments.count > 1 else { return context }
        let command = arguments[1]
        func pipelineName(_ path: String) -> String {
            let file = (path as NSString).lastPathComponent
            return file.hasSuffix(".yaml") || file.hasSuffix(".yml") ? (file as NSString).deletingPathExtension : file
        }
        if command == "run", arguments.count > 2, !arguments[2].hasPrefix("-") {
            context.pipeline = pipelineName(arguments[2])
        }
        if command == "run-job" {
            if arguments.count > 2 { context.job = Int64(arguments[2]) }
            if let i = arguments.firstIndex(of: "--pipeline"), i + 1 < arguments.count { context.pipeline = pipelineName(arguments[i + 1]) }
        }
        return context
    }

    /// `self`, with what it leaves open taken from `fallback`.
    package func filled(from fallback: LogContext) -> LogContext {
        LogContext(pipeline: pipeline ?? fallback.pipeline, run: run ?? fallback.run, job: job ?? fallback.job, step: step ?? fallback.step)
    }
}

/// The values no log line may show.
package struct LogSecrets: Sendable {
    package var values: [String]

    package init(_ values: [String]) {
        self.values = values.filter { $0.count >= 4 }
    }

    /// The password of `DATABASE_URL` and the value of every variable whose name says it is secret
    /// (`…TOKEN…`, `…PASSWORD…`, `…SECRET…`, `…API_KEY…`, `…CREDENTIAL…`).
    package static func from(environment: [String: String]) -> LogSecrets {
        var values: [String] = []
        for (name, value) in environment where !value.isEmpty {
            let upper = name.uppercased()
            if ["TOKEN", "PASSWORD", "SECRET", "API_KEY", "APIKEY", "CREDENTIAL", "PASSWD"].contains(where: upper.contains) { values.append(value) }
            if upper == "DATABASE_URL" || upper.hasSuffix("_DATABASE_URL"), let password = URLComponents(string: value)?.password, !password.isEmpty {
                values.append(password)
                if let decoded = password.removingPercentEncoding { values.append(decoded) }
            }
        }
        return LogSecrets(values)
    }

    /// Metadata keys whose values are never shown.
    static let secretKeys = ["password", "passwd", "token", "secret", "authorization", "api_key", "apikey", "credential", "cookie"]

    static func isSecretKey(_ key: String) -> Bool {
        let lower = key.lowercased()
        return secretKeys.contains(where: lower.contains)
    }

    /// `text` with the secret values, and the password of any URL in it, replaced by `***`.
    package func mask(_ text: String) -> String {
        var out = Secrets.mask(text, values)
        out = Self.maskURLPasswords(out)
        return out
    }

    /// `postgres://user:pw@host` → `postgres://user:***@host` (any scheme).
    static func maskURLPasswords(_ text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        return text.replacing(/([A-Za-z][A-Za-z0-9+.\-]*:\/\/[^\s:\/@]*):[^\s@\/]+@/) { match in "\(match.1):***@" }
    }

    func mask(_ value: Logger.MetadataValue, key: String) -> Logger.MetadataValue {
        if Self.isSecretKey(key) { return .string("***") }
        switch value {
        case .string(let s): return .string(mask(s))
        case .stringConvertible(let c): return .string(mask(c.description))
        case .array(let items): return .array(items.map { mask($0, key: key) })
        case .dictionary(let d): return .dictionary(Dictionary(uniqueKeysWithValues: d.map { ($0.key, mask($0.value, key: $0.key)) }))
        }
    }
}

/// One JSON object per line: `{"time":"…Z","level":"warning","label":"datenwerk","message":"…","pipeline":"…",
/// "run":12,"job":3,"step":"load","metadata":{…}}`; secrets masked (see `LogFormat`). Lines are written whole
/// with one `write`, so lines of concurrent tasks do not interleave.
package struct JSONLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    package var metadataProvider: Logger.MetadataProvider?
    let label: String
    let secrets: LogSecrets
    let process: LogContext
    let write: @Sendable (String) -> Void

    package init(label: String, secrets: LogSecrets, process: LogContext = LogContext(),
                 write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.secrets = secrets
        self.process = process
        self.write = write
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        write(line(level: event.level, message: event.message, metadata: event.metadata, error: event.error, file: event.file, line: event.line))
    }

    /// The line (with its newline) this handler writes for one message.
    package func line(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, error: (any Error)? = nil, file: String = "", line: UInt = 0) -> String {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        let context = LogContext.current.filled(from: process)
        var out = "{\"time\":" + Self.quoted(Self.timestamp()) + ",\"level\":" + Self.quoted(level.rawValue)
            + ",\"label\":" + Self.quoted(label) + ",\"message\":" + Self.quoted(secrets.mask(message.description))
        if let pipeline = context.pipeline { out += ",\"pipeline\":" + Self.quoted(pipeline) }
        if let run = context.run { out += ",\"run\":\(run)" }
        if let job = context.job { out += ",\"job\":\(job)" }
        if let step = context.step { out += ",\"step\":" + Self.quoted(step) }
        if let error { out += ",\"error\":" + Self.quoted(secrets.mask(String(describing: error))) }
        if !all.isEmpty {
            out += ",\"metadata\":" + Self.json(.dictionary(all.mapValues { $0 }), secrets: secrets, key: "")
        }
        if level <= .debug, !file.isEmpty { out += ",\"source\":" + Self.quoted("\((file as NSString).lastPathComponent):\(line)") }
        return out + "}\n"
    }

    static func json(_ value: Logger.MetadataValue, secrets: LogSecrets, key: String) -> String {
        switch secrets.mask(value, key: key) {
        case .string(let s): return quoted(s)
        case .stringConvertible(let c): return quoted(c.description)
        case .array(let items): return "[" + items.map { json($0, secrets: secrets, key: key) }.joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.keys.sorted().map { quoted($0) + ":" + json(d[$0]!, secrets: secrets, key: $0) }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259 escapes; control characters as \u00XX).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// The human format (swift-log's `StreamLogHandler`) with the same masking as the JSON lines.
package struct MaskingLogHandler: LogHandler {
    package var inner: StreamLogHandler
    let secrets: LogSecrets

    package init(_ inner: StreamLogHandler, secrets: LogSecrets) {
        self.inner = inner
        self.secrets = secrets
    }

    package var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    package var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    package var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    package func log(event: LogEvent) {
        var masked = event
        masked.message = Logger.Message(stringLiteral: secrets.mask(event.message.description))
        masked.metadata = event.metadata.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.key, secrets.mask($0.value, key: $0.key)) }) }
        inner.log(event: masked)
    }
}
