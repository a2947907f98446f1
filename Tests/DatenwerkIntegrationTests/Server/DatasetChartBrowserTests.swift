import DatenwerkOperations
import DatenwerkTesting
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The dataset pages' charts and the catalog page's sparklines in a real browser (Debian's headless Chromium)
/// on the server over a database loaded by the example pipelines; a screenshot is kept in
/// `.build/test-artifacts/dataset-musterstadt-klima.png`.
///
/// Without chromium the test is skipped, except under CI (`CI=true`), where it fails: `.ci/run` installs it
/// (scripts/ensure-validators.sh).
@Suite(.serialized) struct DatasetChartBrowserTests {
    typealias P = PublishingServer

    static let artifacts = Paths.root + "/.build/test-artifacts"
    static let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"]
    static var executable: String? { candidates.first(where: FileManager.default.isExecutableFile(atPath:)) }
    static var runsChromium: Bool { executable != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    @Test(.enabled(if: runsChromium, "chromium is not installed (apt-get install chromium); CI=true makes this a failure"))
    func datasetPageChartsInHeadlessChromium() async throws {
        let chromium = try #require(Self.executable, "chromium is missing: scripts/ensure-validators.sh installs the Debian package chromium")
        try await P.with { server, _ in
            // Machine formats answer as before; a browser gets the page.
            let turtle = try await server.get("/datasets/\(P.klima)")
            #expect(turtle.status == 200)
            #expect(turtle.header("Content-Type")?.hasPrefix("text/turtle") == true)
            let jsonld = try await server.get("/datasets/\(P.klima)", headers: [("Accept", "application/ld+json")])
            #expect(jsonld.header("Content-Type")?.hasPrefix("application/ld+json") == true)
            let html = try await server.get("/datasets/\(P.klima)", headers: [("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")])
            #expect(html.status == 200)
            #expect(html.header("Content-Type") == "text/html; charset=utf-8")
            #expect(html.header("Vary") == "Accept")
            // Restricted datasets need a token, page or not (docs/access.md).
            #expect(try await server.get("/datasets/\(P.restricted)", headers: [("Accept", "text/html")]).status == 401)

            for dataset in [P.klima, P.energie] {
                let expected = try await Self.expectedHours(server, dataset)
                let dom = try await P.blocking { try Self.chromium(chromium, ["--dump-dom", server.baseURL + "/datasets/\(dataset)"]) }
                #expect(dom.status == 0, "\(dom.output)")
                let page = dom.stdout
                #expect(page.contains("<html lang=\"de\">"), "\(page.prefix(300))")
                #expect(!page.contains("<script"))
                #expect(page.contains("class=\"map\""), "the station map is on the page")
                let charts = page.matches(of: /<svg [^>]*class="chart"[^>]*>(.*?)<\/svg>/.dotMatchesNewlines()).map { String($0.0) }
                #expect(charts.count == expected.count, "\(dataset): \(charts.count) charts, \(expected.count) properties")
                for (svg, (property, hours)) in zip(charts, expected) {
                    #expect(svg.contains("role=\"img\""))
                    let title = svg.firstMatch(of: /<title id="([^"]+)">([^<]+)<\/title>/)
                    let desc = svg.firstMatch(of: /<desc id="([^"]+)">([^<]+)<\/desc>/)
                    #expect(title != nil && desc != nil, "\(dataset)/\(property): no title or desc")
                    if let title, let desc {
                        #expect(svg.contains("aria-labelledby=\"\(title.1) \(desc.1)\""))
                        #expect(desc.2.contains("\(hours) von 168 Stunden mit Daten"), "\(dataset)/\(property): \(desc.2)")
                    }
                    let d = svg.firstMatch(of: /<path class="line" d="([^"]*)"/).map { String($0.1) } ?? ""
                    let points = d.filter { $0 == "M" || $0 == "L" }.count
                    #expect(points == hours, "\(dataset)/\(property): \(points) points in the path, \(hours) hours with data")
                    #expect(hours > 0, "\(dataset)/\(property): the window has data")
                }
            }
            // The klima sample's window (21.–27.10.2024) holds 26 and 27 October only: 49 hours (27.10. has 25).
            let klima = try await Self.expectedHours(server, P.klima)
            #expect(klima.contains { $0.property == "air_temperature" && $0.hours == 49 }, "\(klima)")

            // The catalog page: one sparkline per dataset with data, and a link to each dataset's page.
            let home = try await P.blocking { try Self.chromium(chromium, ["--dump-dom", server.baseURL + "/"]) }
            #expect(home.status == 0, "\(home.output)")
            #expect(home.stdout.matches(of: /<svg [^>]*class="sparkline"/).count == 2)
            #expect(home.stdout.contains("href=\"\(server.baseURL)/datasets/\(P.klima)\""))
            #expect(!home.stdout.contains("<script"))

            // A screenshot for people to look at.
            try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
            let png = Self.artifacts + "/dataset-\(P.klima).png"
            try? FileManager.default.removeItem(atPath: png)
            let shot = try await P.blocking {
                try Self.chromium(chromium, ["--screenshot=\(png)", "--window-size=1200,900", "--hide-scrollbars", server.baseURL + "/datasets/\(P.klima)"])
            }
            #expect(shot.status == 0, "\(shot.output)")
            let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
            #expect(size > 10_000, "screenshot \(png): \(size) bytes; chromium said: \(shot.output)")
            let header = try FileHandle(forReadingFrom: URL(fileURLWithPath: png)).read(upToCount: 8).map(Array.init) ?? []
            #expect(header == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        }
    }

    /// Per property of the dataset (sorted by key, the page's order): the UTC hours with at least one value in
    /// the 168 hours that end with the hour of the dataset's latest observation — counted from the dataset's
    /// NDJSON download, not from the aggregates the chart reads.
    static func expectedHours(_ server: ServerHarness, _ dataset: String) async throws -> [(property: String, hours: Int)] {
        let answer = try await server.get("/datasets/\(dataset)/observations.ndjson")
        #expect(answer.status == 200)
        let rows = try P.objects(answer.body)
        let formatter = ISO8601DateFormatter()
        let hour = 3600.0
        var starts: [(String, Double)] = []
        for row in rows {
            let property = try #require(row["property"] as? String)
            let text = try #require(row["phenomenon_time_start"] as? String)
            let date = try #require(formatter.date(from: text), "\(text)")
            starts.append((property, (date.timeIntervalSince1970 / hour).rounded(.down) * hour))
        }
        let last = try #require(starts.map(\.1).max())
        let first = last - 167 * hour
        var hours: [String: Set<Double>] = [:]
        for (property, h) in starts {
            hours[property, default: []].formUnion(h >= first && h <= last ? [h] : [])
        }
        return hours.keys.sorted().map { ($0, hours[$0]!.count) }
    }

    struct Run: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { "exit status \(status)\n\(stderr.suffix(2000))" }
    }

    /// Runs headless Chromium with a fresh profile, in a process group of its own, with stdout and stderr in
    /// files (never pipes: Chromium's helper processes inherit them and may outlive the browser). Nothing of
    /// ours is inherited (descriptors above stderr are closed in the child). After 120 s the whole group is
    /// killed; when the browser has exited, so are any helpers it left behind. Blocking: call it off the
    /// cooperative pool (`PublishingServer.blocking`).
    static func chromium(_ executable: String, _ arguments: [String], timeout: Double = 120) throws -> Run {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let argv = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--user-data-dir=\(dir)/profile"] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, dir + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, dir + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let closeFrom = Spawning.addCloseFrom { _ = closeFrom(&actions, 3) } else { Spawning.markOpenDescriptorsCloseOnExec() }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
        guard spawned == 0 else { throw TestFailure("cannot run \(executable): \(String(cString: strerror(spawned)))") }

        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result == -1 && errno != EINTR { break }
            if Date() > deadline {
                timedOut = true
                kill(-pid, SIGKILL)           // the group we created: the browser and its helpers
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(50_000)
        }
        kill(-pid, SIGKILL)                   // helpers left behind (ESRCH when there are none)
        let exited = (status & 0x7f) == 0
        let code: Int32 = timedOut ? 124 : (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        let out = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? ""
        return Run(status: code, stdout: out, stderr: (timedOut ? "timed out after \(Int(timeout)) s\n" : "") + err)
    }
}
