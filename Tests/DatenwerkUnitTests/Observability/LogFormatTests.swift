import DatenwerkHTTP
import DatenwerkTesting
import Foundation
import Logging
import Testing

/// The log formats of the command line (`DATENWERK_LOG_FORMAT`): JSON lines carry the run's context and never a secret.
@Suite struct LogFormatTests {
    /// What a handler wrote.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func handler(environment: [String: String], process: LogContext = LogContext(), into lines: Lines = Lines()) -> JSONLogHandler {
        JSONLogHandler(label: "datenwerk", secrets: LogSecrets.from(environment: environment), process: process) { lines.append($0) }
    }

    static func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func aDatabaseURLPasswordAndATokenNeverReachTheLine() throws {
        let environment = ["DATABASE_URL": "postgres://datenwerk:s3cr%40t-pw@db.example:5432/datenwerk",
                           "DATENWERK_DOWNLOAD_TOKEN": "tok-0123456789"]
        let handler = Self.handler(environment: environment)
        let line = handler.line(level: .error,
                                message: "could not connect to postgres://datenwerk:s3cr%40t-pw@db.example:5432/datenwerk (password s3cr@t-pw)",
                                metadata: ["token": "abc-not-in-env", "url": "https://user:hunter22@api.example/x?key=tok-0123456789",
                                           "request": ["authorization": "Bearer xyz-123456"]])
        for secret in ["s3cr%40t-pw", "s3cr@t-pw", "abc-not-in-env", "hunter22", "tok-0123456789", "xyz-123456"] {
            #expect(!line.contains(secret), "\(secret) in \(line)")
        }
        let json = try Self.object(line)
        #expect(json["level"] as? String == "error")
        #expect(json["message"] as? String == "could not connect to postgres://datenwerk:***@db.example:5432/datenwerk (password ***)")
        let metadata = try #require(json["metadata"] as? [String: Any])
        #expect(metadata["token"] as? String == "***")
        #expect(metadata["url"] as? String == "https://user:***@api.example/x?key=***")
        #expect((metadata["request"] as? [String: Any])?["authorization"] as? String == "***")
    }

    @Test func linesCarryPipelineRunJobAndStep() throws {
        let handler = Self.handler(environment: [:], process: LogContext.fromArguments(["datenwerk", "run-job", "42", "--owner", "w1", "--pipeline", "Pipelines/examples/musterstadt-klima.yaml"]))
        let plain = try Self.object(handler.line(level: .info, message: "started", metadata: nil))
        #expect(plain["pipeline"] as? String == "musterstadt-klima")
        #expect(plain["job"] as? Int == 42)
        #expect(plain["run"] == nil)
        let inside = try LogContext.$current.withValue(LogContext(run: 7, step: "load")) {
            try Self.object(handler.line(level: .warning, message: "slow \"COPY\"\n", metadata: nil))
        }
        #expect(inside["pipeline"] as? String == "musterstadt-klima")
        #expect(inside["run"] as? Int == 7)
        #expect(inside["job"] as? Int == 42)
        #expect(inside["step"] as? String == "load")
        #expect(inside["message"] as? String == "slow \"COPY\"\n")
        #expect(LogContext.fromArguments(["datenwerk", "run", "Pipelines/x/abc.yml"]).pipeline == "abc")
        #expect(LogContext.fromArguments(["datenwerk", "serve"]) == LogContext())
    }

    @Test func aLoggerWritesOneMaskedLinePerMessage() throws {
        let lines = Lines()
        var handler = Self.handler(environment: ["DATABASE_URL": "postgres://u:pw-secret-1@h/db"], into: lines)
        handler.logLevel = .info
        let logger = Logger(label: "datenwerk") { _ in handler }
        logger.debug("below the level")
        logger.warning("cannot reach postgres://u:pw-secret-1@h/db", metadata: ["password": "pw-secret-1"])
        #expect(lines.all.count == 1)
        let line = try #require(lines.all.first)
        #expect(!line.contains("pw-secret-1"))
        #expect(try Self.object(line)["level"] as? String == "warning")
    }

    @Test func theFormatComesFromTheEnvironment() {
        #expect(LogFormat.from(environment: ["DATENWERK_LOG_FORMAT": "json"]) == .json)
        #expect(LogFormat.from(environment: ["DATENWERK_LOG_FORMAT": "JSON"]) == .json)
        #expect(LogFormat.from(environment: ["DATENWERK_LOG_FORMAT": "human"]) == .human)
        #expect(LogFormat.from(environment: [:]) == nil)
    }

    @Test func theHumanFormatMasksToo() {
        let secrets = LogSecrets.from(environment: ["DATABASE_URL": "postgres://u:pw-secret-1@h/db", "CITY_API_TOKEN": "tok-abcdef"])
        #expect(secrets.mask("x postgres://u:pw-secret-1@h/db y tok-abcdef") == "x postgres://u:***@h/db y ***")
        #expect(secrets.mask("nothing secret here") == "nothing secret here")
    }

    /// The Prometheus backend stays in the server (and the CLI); lower targets use the swift-metrics API only.
    @Test func prometheusIsImportedOnlyByTheServer() throws {
        let sources = URL(fileURLWithPath: Paths.root).appendingPathComponent("Sources")
        var importers: Set<String> = []
        for target in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            let base = sources.appendingPathComponent(target)
            for case let file as URL in FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) ?? .init()
            where file.pathExtension == "swift" {
                let text = try String(contentsOf: file, encoding: .utf8)
                if text.split(separator: "\n").contains(where: { $0 == "import Prometheus" }) { importers.insert(target) }
            }
        }
        #expect(importers == ["DatenwerkServer"])
    }
}
