import DatenwerkCore
import DatenwerkHTTP
import Foundation
import NIOCore
import Yams

/// Templates of other installations (`uses: https://…/templates/<name>.yaml` with `sha256:`): fetched through the one
/// `HTTPFetcher`, checked against the pinned SHA-256 and kept in the `TemplateLibrary`'s cache under that hash, where
/// reading a pipeline (which never goes to the network) finds them.
package enum RemoteTemplates {
    /// The largest template file accepted.
    package static let maxBytes = 1 << 20

    /// A remote template one pipeline file uses: its URL, pinned hash and where the two are written.
    package struct Use: Sendable, Hashable {
        package var file: String
        package var url: String
        package var sha256: String
        package var urlLine: Int?
        package var urlColumn: Int?
        package var shaLine: Int?
        package var shaColumn: Int?
    }

    /// The remote template a pipeline file uses, if any (nil for local templates, unpinned or unreadable files:
    /// reading the pipeline reports those).
    package static func use(inFile file: String) -> Use? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8), text.contains("uses:"),
              let node = try? Yams.compose(yaml: text), let usesNode = node["uses"], let url = usesNode.string,
              url.hasPrefix("https://") || url.hasPrefix("http://"),
              let shaNode = node["sha256"], let sha = shaNode.string, sha.range(of: #"^[0-9a-fA-F]{64}$"#, options: .regularExpression) != nil else { return nil }
        return Use(file: file, url: url, sha256: sha.lowercased(), urlLine: usesNode.mark?.line, urlColumn: usesNode.mark?.column,
                   shaLine: shaNode.mark?.line, shaColumn: shaNode.mark?.column)
    }

    /// Fetches every remote template the files use that is not in the cache yet; one diagnostic per problem (a fetch
    /// that failed, a hash that does not match), at the pipeline's `uses:` or `sha256:`.
    package static func fetchMissing(files: [String], library: TemplateLibrary, fetcher: HTTPFetcher) async -> (fetched: [Use], problems: [Diagnostic]) {
        var fetched: [Use] = []
        var problems: [Diagnostic] = []
        var done: Set<String> = []
        for file in files {
            guard let use = use(inFile: file), !FileManager.default.fileExists(atPath: library.cachedFile(sha256: use.sha256)) else { continue }
            if done.contains(use.sha256) { continue }
            do {
                try await fetch(use, library: library, fetcher: fetcher)
                done.insert(use.sha256)
                fetched.append(use)
            } catch let diagnostic as Diagnostic {
                problems.append(diagnostic)
            } catch {
                problems.append(Diagnostic(file: file, line: use.urlLine, column: use.urlColumn, "cannot fetch template \(use.url): \(error)"))
            }
        }
        return (fetched, problems)
    }

    /// Fetches one template, checks its hash and stores it in the cache; throws a `Diagnostic` located in the pipeline.
    package static func fetch(_ use: Use, library: TemplateLibrary, fetcher: HTTPFetcher) async throws {
        let bytes: [UInt8]
        do {
            bytes = try await download(use.url, fetcher: fetcher)
        } catch {
            throw Diagnostic(file: use.file, line: use.urlLine, column: use.urlColumn, "cannot fetch template \(use.url): \(error)")
        }
        let actual = sha256Hex(bytes)
        guard actual == use.sha256 else {
            throw Diagnostic(file: use.file, line: use.shaLine, column: use.shaColumn,
                             "template \(use.url) has sha256 \(actual), not the pinned \(use.sha256): it changed on its server (or is not the one meant); read the new version and pin its hash to use it")
        }
        guard String(bytes: bytes, encoding: .utf8) != nil else {
            throw Diagnostic(file: use.file, line: use.urlLine, column: use.urlColumn, "template \(use.url) is not UTF-8 text")
        }
        let target = library.cachedFile(sha256: actual)
        do {
            try FileManager.default.createDirectory(atPath: library.cacheDirectory, withIntermediateDirectories: true)
            // Written beside and renamed, so a reader never sees half a file.
            let partial = target + ".\(ProcessInfo.processInfo.processIdentifier).partial"
            try Data(bytes).write(to: URL(fileURLWithPath: partial))
            _ = rename(partial, target)
        } catch {
            throw Diagnostic(file: use.file, line: use.urlLine, column: use.urlColumn, "cannot store template \(use.url) in \(library.cacheDirectory): \(error.localizedDescription)")
        }
    }

    /// The body of a template URL, at most `maxBytes`.
    static func download(_ url: String, fetcher: HTTPFetcher) async throws -> [UInt8] {
        let response = try await fetcher.get(HTTPFetcher.Request(url: url, headers: [("Accept", "application/yaml, text/yaml, text/plain")], timeout: .seconds(30)))
        let body = BodyReader(response)
        var bytes: [UInt8] = []
        while let chunk = try await body.next() {
            bytes += chunk.readableBytesView
            if bytes.count > maxBytes { throw HTTPFetcher.Failure(url: url, status: response.status, message: "larger than \(maxBytes) bytes; not a template") }
        }
        return bytes
    }
}
