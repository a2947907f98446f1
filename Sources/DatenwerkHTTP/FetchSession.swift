import Foundation

/// Masks secret values in texts meant for people (messages, logs, errors, run history).
package enum Secrets {
    /// `text` with each of `secrets` replaced by `***` (longest first, so a secret containing another is masked whole).
    package static func mask(_ text: String, _ secrets: [String]) -> String {
        guard !secrets.isEmpty else { return text }
        var out = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) where secret.count >= 1 {
            out = out.replacingOccurrences(of: secret, with: "***")
            // A secret may also appear percent-encoded (in a URL query).
            if let encoded = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != secret {
                out = out.replacingOccurrences(of: encoded, with: "***")
            }
        }
        return out
    }
}

/// The shared `request:` block of an HTTP source or connector: extra headers, a timeout, and values taken from
/// the environment as `${env:NAME}` (an API key, a bearer token). The resolved values are secrets: they are sent,
/// never shown (every message, log line, error and the run history show `***`).
package struct RequestOptions: Sendable {
    /// Header templates as written (`Authorization: "Bearer ${env:TOKEN}"`).
    package var headers: [(String, String)]
    /// Whole-request timeout (nil: the reader's default, 60 s).
    package var timeout: Duration?

    package init(headers: [(String, String)] = [], timeout: Duration? = nil) {
        self.headers = headers
        self.timeout = timeout
    }

    package static let none = RequestOptions()

    /// A reference to an environment variable that is not set (or empty).
    package struct MissingVariable: Error, Sendable, CustomStringConvertible, Equatable {
        package var name: String
        package var usedIn: String
        package init(name: String, usedIn: String) {
            self.name = name
            self.usedIn = usedIn
        }
        package var description: String { "environment variable \(name) (used in \(usedIn)) is not set" }
    }

    /// What is sent: the headers with `${env:NAME}` replaced, and the values that came from the environment.
    package struct Resolved: Sendable {
        package var headers: [(String, String)]
        package var timeout: Duration?
        package var secrets: [String]
    }

    /// Replaces `${env:NAME}` in header values from `environment`; a missing variable throws, naming the header.
    package func resolve(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Resolved {
        var secrets: [String] = []
        var headers: [(String, String)] = []
        for (name, template) in self.headers {
            let (value, used) = try Self.substitute(template, environment, usedIn: "request header \(name)")
            secrets += used
            headers.append((name, value))
        }
        return Resolved(headers: headers, timeout: timeout, secrets: secrets)
    }

    /// The names of the variables `${env:NAME}` in `text`, in order.
    package static func variables(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "${env:") {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { break }
            names.append(String(rest[start.upperBound..<end]))
            rest = rest[rest.index(after: end)...]
        }
        return names
    }

    /// `text` with `${env:NAME}` replaced, and the substituted values (secrets).
    package static func substitute(_ text: String, _ environment: [String: String], usedIn: String) throws -> (String, [String]) {
        var out = text
        var used: [String] = []
        for name in variables(in: text) {
            guard let value = environment[name], !value.isEmpty else { throw MissingVariable(name: name, usedIn: usedIn) }
            out = out.replacingOccurrences(of: "${env:\(name)}", with: value)
            used.append(value)
        }
        return (out, used)
    }
}

/// Everything one run fetches with: the shared fetcher, where retries are recorded, the validators for conditional
/// GETs, and the run's request options with their secrets. Passed explicitly (in `ConnectorContext`, to the
/// generic sources) instead of task-locals, so what a run fetches with is visible at every call.
package struct FetchSession: Sendable {
    package let fetcher: HTTPFetcher
    package let retries: RetryLog?
    package let conditional: ConditionalRequests?
    /// Headers sent with every request of the run (already resolved), and their secrets.
    package var headers: [(String, String)]
    package var timeout: Duration?
    package var secrets: [String]

    package init(fetcher: HTTPFetcher, retries: RetryLog? = nil, conditional: ConditionalRequests? = nil, options: RequestOptions.Resolved? = nil) {
        self.fetcher = fetcher
        self.retries = retries
        self.conditional = conditional
        self.headers = options?.headers ?? []
        self.timeout = options?.timeout
        self.secrets = options?.secrets ?? []
    }

    /// The same session with a `request:` block's headers (resolved) and timeout on top of its own.
    package func with(_ options: RequestOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FetchSession {
        let resolved = try options.resolve(environment)
        var copy = self
        for (name, value) in resolved.headers {
            copy.headers.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
            copy.headers.append((name, value))
        }
        if let timeout = resolved.timeout { copy.timeout = timeout }
        copy.secrets += resolved.secrets
        return copy
    }

    /// `text` with the session's secrets masked.
    package func masked(_ text: String) -> String { Secrets.mask(text, secrets) }

    /// A request with the session's headers (those in `headers` win), timeout and secrets.
    package func request(_ url: String, headers extra: [(String, String)] = [], timeout: Duration? = nil, retry: HTTPFetcher.RetryPolicy = .default,
                        conditional: Bool = false) -> HTTPFetcher.Request {
        var all = self.headers
        for (name, value) in extra {
            all.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
            all.append((name, value))
        }
        return HTTPFetcher.Request(url: url, headers: all, timeout: timeout ?? self.timeout ?? .seconds(60), retry: retry, conditional: conditional, secrets: secrets)
    }

    /// Sends `request` through the fetcher, recording retries and using the run's validators.
    package func get(_ request: HTTPFetcher.Request) async throws -> HTTPFetcher.Response {
        var request = request
        request.secrets += secrets.filter { !request.secrets.contains($0) }
        return try await fetcher.get(request, retries: retries, conditional: conditional)
    }

    /// Records a retry decided above the fetcher (a body fetched again), masked.
    package func recordRetry(_ entry: String) {
        retries?.record(masked(entry))
    }
}
