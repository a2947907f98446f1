import DatenwerkHTTP
import Foundation
import Yams

extension PipelineSpec {
    /// The `request:` block of a source (generic `http` or any connector):
    ///
    /// ```yaml
    /// request:
    ///   headers: { Authorization: "Bearer ${env:PARKING_TOKEN}", Accept: application/json }
    ///   timeout_seconds: 30
    /// ```
    ///
    /// `${env:NAME}` is read from the environment when the run starts (a missing variable fails it at extract, naming
    /// the variable and the header, never a value); the values are secrets, masked as `***` in every message.
    static func decodeRequest(_ node: Node, path: String, _ r: YAMLReader) -> RequestOptions? {
        guard let m = r.mapping(node, path, allowed: ["headers", "timeout_seconds"]) else { return nil }
        let headers = m.stringMap("headers") ?? []
        for (name, value) in headers {
            if value.contains("${"), !value.contains("${env:") || RequestOptions.variables(in: value).contains(where: { !Self.isVariableName($0) }) {
                r.error(m["headers"]?[name] ?? node, join(m.path("headers"), name), "write an environment variable as ${env:NAME} (letters, digits, '_')")
            }
        }
        let timeout = m.int("timeout_seconds", range: Limits.timeoutSeconds).map { Duration.seconds($0) }
        return RequestOptions(headers: headers, timeout: timeout)
    }

    static func isVariableName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) } && !(name.first!.isNumber)
    }
}
