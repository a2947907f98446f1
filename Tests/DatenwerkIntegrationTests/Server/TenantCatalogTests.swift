import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Testing

/// Two tenants in one database, served by the real server: each tenant's catalog holds only its datasets with
/// itself as publisher and passes the DCAT-AP.de validator; `/catalog` holds both.
@Suite(.serialized) struct TenantCatalogTests {
    typealias P = PublishingServer

    static let tenantsYAML = """
        version: 1
        tenants:
          - ags: "99000001"
            name: Zweckverband Digitale Region Musterland
            publisher: { name: Zweckverband Digitale Region Musterland, url: https://www.digitale-region.example/, email: daten@digitale-region.example }
            contact: { name: Datenstelle des Zweckverbands, email: datenstelle@digitale-region.example }
        """

    /// An example pipeline under another name, tenant and folder: without its own publisher and contact, with
    /// absolute sample paths.
    static func pipeline(_ example: String, name: String, tenant: String, in dir: String) throws -> PipelineSpec {
        var yaml = try String(contentsOfFile: Paths.pipeline("examples/\(example).yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "name: \(example)\n", with: "name: \(name)\n")
            .replacingOccurrences(of: "tenant: \"05515000\"", with: "tenant: \"\(tenant)\"")
            .replacingOccurrences(of: "../../SampleData/", with: Paths.root + "/SampleData/")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("  publisher:") && !$0.hasPrefix("  contact:") }
            .joined(separator: "\n")
        let file = dir + "/Pipelines/\(name).yaml"
        try yaml.write(toFile: file, atomically: false, encoding: .utf8)
        return try PipelineSpec.load(file: file, connectors: BuiltinConnectors.registry)
    }

    @Test func eachTenantsCatalogListsOnlyItsDatasetsAndPassesTheValidator() async throws {
        let dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/Pipelines", withIntermediateDirectories: true)
        try Self.tenantsYAML.write(toFile: dir + "/tenants.yaml", atomically: false, encoding: .utf8)
        let specs = [
            try Self.pipeline("musterstadt-klima", name: "muenchen-klima", tenant: "09162000", in: dir),
            try Self.pipeline("musterstadt-energie", name: "verband-energie", tenant: "99000001", in: dir),
        ]
        try await TestDatabase.with { db in
            try await P.load(specs, into: db)
            let server = try await P.start(database: db, pipelines: specs)
            do {
                try await Self.check(server)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }

    static func check(_ server: ServerHarness) async throws {
        let base = server.baseURL
        // München: a municipality of the bundled list, its publisher the list's name.
        for ext in ["ttl", "rdf", "jsonld"] {
            let run = try await Judge.dcat(base + "/tenants/09162000/catalog.\(ext)")
            #expect(run.passed, "München catalog.\(ext): \(run)")
            #expect((run.triples ?? 0) > 100, "\(run)")
        }
        let muenchen = try await server.get("/tenants/09162000/catalog.ttl")
        #expect(muenchen.status == 200)
        #expect(muenchen.text.contains("<\(base)/tenants/09162000/catalog>"))
        #expect(muenchen.text.contains("<\(base)/datasets/muenchen-klima>"))
        #expect(!muenchen.text.contains("verband-energie"))
        #expect(muenchen.text.contains("<\(base)/organizations/muenchen-landeshauptstadt>"))
        #expect(muenchen.text.contains("\"München, Landeshauptstadt\""))
        #expect(!muenchen.text.contains("Zweckverband"))

        // The association of tenants.yaml: its publisher and contact point, by content negotiation.
        let verband = try await server.get("/tenants/99000001/catalog", headers: [("Accept", "application/ld+json")])
        #expect(verband.status == 200)
        #expect(verband.header("Content-Type")?.hasPrefix("application/ld+json") == true)
        #expect(verband.header("Vary") == "Accept")
        #expect(verband.header("Content-Location") == "\(base)/tenants/99000001/catalog.jsonld")
        let file = try P.save(verband.body, as: "verband.jsonld")
        let run = try await Judge.dcat(file)
        #expect(run.passed, "Verband catalog: \(run)")
        #expect(verband.text.contains("\(base)/datasets/verband-energie"))
        #expect(!verband.text.contains("muenchen-klima"))
        #expect(verband.text.contains("mailto:daten@digitale-region.example"))
        #expect(verband.text.contains("mailto:datenstelle@digitale-region.example"))

        // The combined catalog lists both, each dataset with its tenant as publisher.
        let all = try await server.get("/catalog.ttl")
        #expect(all.text.contains("<\(base)/datasets/muenchen-klima>"))
        #expect(all.text.contains("<\(base)/datasets/verband-energie>"))
        #expect(all.text.contains("<\(base)/organizations/zweckverband-digitale-region-musterland>"))
        #expect(all.text.contains("<\(base)/organizations/muenchen-landeshauptstadt>"))
        let combined = try await Judge.dcat(base + "/catalog.ttl")
        #expect(combined.passed, "combined catalog: \(combined)")

        // Pages for people: the list of tenants and each tenant's page.
        let tenants = try await server.get("/tenants")
        #expect(tenants.status == 200)
        #expect(tenants.text.contains("München, Landeshauptstadt"))
        #expect(tenants.text.contains("Zweckverband Digitale Region Musterland"))
        #expect(tenants.text.contains("\(base)/tenants/99000001/catalog.ttl"))
        let page = try await server.get("/tenants/09162000/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        #expect(page.text.contains("Klimamessnetz Musterstadt – Stundenwerte"))
        #expect(!page.text.contains("Stadtwerke Musterstadt – Energiemessstellen"))
        #expect(page.text.contains("href=\"\(base)/tenants/09162000/catalog.ttl\""))
        let english = try await server.get("/tenants/99000001?lang=en")
        #expect(english.status == 200)
        #expect(english.text.contains("Stadtwerke Musterstadt – energy metering points"))
        #expect(!english.text.contains("Musterstadt climate network"))

        // Every link of both pages into this server answers 200 (tenant pages, their catalogs, the whole catalog).
        for html in [tenants.text, page.text, english.text] {
            let hrefs = Set(html.matches(of: /href="([^"]+)"/).map { String($0.1).replacingOccurrences(of: "&amp;", with: "&") })
            let own = hrefs.filter { $0.hasPrefix(base + "/") }
            #expect(own.count >= 5, "\(hrefs)")
            for href in own {
                #expect(try await server.get(String(href.dropFirst(base.count))).status == 200, "\(href)")
            }
        }

        // Unknown tenants and files: problem+json 404.
        for path in ["/tenants/05515999/catalog.ttl", "/tenants/05515000/", "/tenants/x1/catalog", "/tenants/09162000/catalog.csv"] {
            let answer = try await server.get(path)
            #expect(answer.status == 404, "\(path)")
            #expect(answer.header("Content-Type")?.hasPrefix("application/problem+json") == true, "\(path)")
        }
        let unknown = try await server.get("/tenants/05515999/catalog.ttl")
        #expect(unknown.text.contains("no tenant '05515999' publishes here"), "\(unknown.text)")
    }
}
