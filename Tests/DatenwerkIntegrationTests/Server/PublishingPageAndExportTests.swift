import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Testing

/// The HTML catalog page in a real browser (Debian's headless Chromium), and `datenwerk export`.
@Suite(.serialized) struct PublishingPageAndExportTests {
    typealias P = PublishingServer

    /// `.build/test-artifacts/` (kept after the run: the screenshot is looked at by people).
    static let artifacts = Paths.root + "/.build/test-artifacts"

    /// Runs headless Chromium with a fresh profile; fails (never skips) when it is not installed.
    static func chromium(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"]
        guard let executable = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw TestFailure("chromium is not installed (run scripts/ensure-validators.sh as root, or apt-get install chromium)")
        }
        let dir = try Paths.temporaryDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["120", executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--user-data-dir=\(dir)/profile"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/err"))
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus,
                (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")
    }

    @Test func catalogPageInHeadlessChromium() async throws {
        try await P.with { server, _ in
            let dom = try await P.blocking { try Self.chromium(["--dump-dom", server.baseURL + "/"]) }
            #expect(dom.status == 0, "\(dom.stderr)")
            // The DOM as the browser built it: both public datasets, no restricted one.
            #expect(dom.stdout.contains("<html lang=\"de\">"), "\(dom.stdout.prefix(500))")
            #expect(dom.stdout.contains("Klimamessnetz Musterstadt – Stundenwerte"))
            #expect(dom.stdout.contains("Stadtwerke Musterstadt – Energiemessstellen"))
            #expect(!dom.stdout.contains("Interne Messstellen"))
            #expect(dom.stdout.contains("<svg"))
            // Every download link answers 200 from the server.
            let lists = dom.stdout.matches(of: /<ul class="downloads"[^>]*>(.*?)<\/ul>/.dotMatchesNewlines()).map { String($0.1) }
            #expect(lists.count == 2)
            let hrefs = lists.flatMap { $0.matches(of: /href="([^"]+)"/).map { String($0.1).replacingOccurrences(of: "&amp;", with: "&") } }
            #expect(hrefs.count == 10, "\(hrefs)")
            for href in hrefs {
                #expect(href.hasPrefix(server.baseURL + "/datasets/"), "\(href)")
                let answer = try await server.get(String(href.dropFirst(server.baseURL.count)))
                #expect(answer.status == 200, "\(href)")
                #expect(!answer.body.isEmpty, "\(href)")
            }
            // The catalog links in the header work too.
            let catalogLinks = dom.stdout.matches(of: /href="([^"]*\/catalog\.[a-z]+)"/).map { String($0.1) }
            #expect(Set(catalogLinks).count == 3)
            for href in Set(catalogLinks) {
                #expect(try await server.get(String(href.dropFirst(server.baseURL.count))).status == 200, "\(href)")
            }
            // English interface.
            let english = try await server.get("/?lang=en")
            #expect(english.text.contains("<html lang=\"en\">"))
            #expect(english.text.contains("Musterstadt climate network – hourly values"))

            // A screenshot for people to look at.
            try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
            let png = Self.artifacts + "/catalog.png"
            try? FileManager.default.removeItem(atPath: png)
            let shot = try await P.blocking {
                try Self.chromium(["--screenshot=\(png)", "--window-size=1200,900", "--hide-scrollbars", server.baseURL + "/"])
            }
            #expect(shot.status == 0, "\(shot.stderr)")
            let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
            #expect(size > 10_000, "screenshot \(png): \(size) bytes; chromium said: \(shot.stderr)")
            let header = try FileHandle(forReadingFrom: URL(fileURLWithPath: png)).read(upToCount: 8).map(Array.init) ?? []
            #expect(header == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        }
    }

    @Test func exportWritesFilesThatPassTheValidators() async throws {
        try await P.with { server, db in
            let out = try Paths.temporaryDirectory() + "/snapshot"
            let env = ["DATABASE_URL": db.location.url]
            let result = try await P.blocking { try CLITests.datenwerkBlocking(["export", "musterstadt-klima", "--out", out, "--pipelines", "Pipelines/examples"], environment: env) }
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("observations.csv (1150 observations"), "\(result.stdout)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
            #expect(files == ["observations.csv", "observations.geojson", "observations.ndjson", "datapackage.json", "dcat.ttl"])
            // The same bytes as the server's downloads.
            for ext in ["csv", "geojson", "ndjson"] {
                let served = try await server.get("/datasets/musterstadt-klima/observations.\(ext)")
                let written = Array(try Data(contentsOf: URL(fileURLWithPath: out + "/observations.\(ext)")))
                #expect(written == served.body, "observations.\(ext)")
            }
            let package = try await Judge.csv(out + "/datapackage.json")
            #expect(package.passed, "\(package)")
            #expect(package.output.contains("Rows Checked | 1150"), "\(package)")
            let geojson = try await Judge.geojson(out + "/observations.geojson")
            #expect(geojson.passed, "\(geojson)")
            let dcat = try await Judge.dcat(out + "/dcat.ttl")
            #expect(dcat.passed, "\(dcat)")
            #expect(try String(contentsOfFile: out + "/dcat.ttl", encoding: .utf8).contains("http://127.0.0.1:8080/datasets/musterstadt-klima/observations.csv"))

            // One format, another base URL.
            let csvOnly = try Paths.temporaryDirectory()
            let one = try await P.blocking {
                try CLITests.datenwerkBlocking(["export", "musterstadt-energie", "--format", "csv", "--out", csvOnly, "--pipelines", "Pipelines/examples",
                                        "--base-url", "https://opendata.musterstadt.example"], environment: env)
            }
            #expect(one.status == 0, "\(one.stderr)")
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: csvOnly)) == ["observations.csv", "datapackage.json", "dcat.ttl"])
            let onePackage = try await Judge.csv(csvOnly + "/datapackage.json")
            #expect(onePackage.passed, "\(onePackage)")
            #expect(try String(contentsOfFile: csvOnly + "/dcat.ttl", encoding: .utf8).contains("https://opendata.musterstadt.example/datasets/musterstadt-energie"))

            let unknown = try await P.blocking { try CLITests.datenwerkBlocking(["export", "musterstadt-klimaa", "--out", csvOnly, "--pipelines", "Pipelines/examples"], environment: env) }
            #expect(unknown.status == 64)
            #expect(unknown.stderr.contains("did you mean 'musterstadt-klima'?"), "\(unknown.stderr)")
            let badFormat = try await P.blocking { try CLITests.datenwerkBlocking(["export", "musterstadt-klima", "--format", "xlsx", "--out", csvOnly, "--pipelines", "Pipelines/examples"], environment: env) }
            #expect(badFormat.status == 64)
        }
    }
}
