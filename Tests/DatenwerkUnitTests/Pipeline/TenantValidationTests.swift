import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// `tenant:` must be a key of the bundled Gemeindeverzeichnis or an entry of the nearest `tenants.yaml`.
@Suite struct TenantValidationTests {
    static func pipeline(tenant: String) -> String {
        """
        version: 1
        name: tenant-check
        tenant: "\(tenant)"
        source:
          kind: file
          path: data.csv
          format: { kind: csv }
        observations:
          station: { id: id }
          time: { field: ts, format: iso8601 }
          values: [{ field: v, property: air_temperature, unit: Cel }]
        """
    }

    /// A folder of its own with the pipeline (and `tenants.yaml` when given); returns the pipeline's path.
    static func folder(tenant: String, tenantsYAML: String? = nil) throws -> String {
        let dir = try Paths.temporaryDirectory()
        if let tenantsYAML { try tenantsYAML.write(toFile: dir + "/tenants.yaml", atomically: false, encoding: .utf8) }
        try FileManager.default.createDirectory(atPath: dir + "/Pipelines", withIntermediateDirectories: true)
        let file = dir + "/Pipelines/tenant-check.yaml"
        try pipeline(tenant: tenant).write(toFile: file, atomically: false, encoding: .utf8)
        return file
    }

    @Test func theBundledListHoldsTheRealGemeindeverzeichnis() {
        #expect(MunicipalityKeys.lookup("05515000") == .init(level: .municipality, name: "Münster, Stadt"))
        #expect(MunicipalityKeys.lookup("09162000") == .init(level: .municipality, name: "München, Landeshauptstadt"))
        #expect(MunicipalityKeys.lookup("11000000")?.name == "Berlin, Stadt")
        #expect(MunicipalityKeys.lookup("08136000") == .init(level: .district, name: "Ostalbkreis"))
        #expect(MunicipalityKeys.lookup("05000000") == .init(level: .state, name: "Nordrhein-Westfalen"))
        #expect(MunicipalityKeys.lookup("00000000")?.level == .federal)
        #expect(MunicipalityKeys.lookup("05515999") == nil)
        let levels = Dictionary(grouping: MunicipalityKeys.all.values, by: \.level).mapValues(\.count)
        // Destatis, Gebietsstand 31.12.2021: 10,787 Gemeinden, 294 Landkreise, 16 Länder (Berlin and Hamburg as Gemeinden).
        #expect(levels[.municipality] == 10_787)
        #expect(levels[.district] == 294)
        #expect(levels[.state] == 14)
    }

    @Test func theListParserSkipsCommentsBadLevelsAndOtherShapes() {
        let text = "# Gebietsstand\n05515000;G;Münster, Stadt\r\n05515001;X;bad level\n0551;G;too short\n05515002;GG;two letters\n\n05000000;L;Nordrhein-Westfalen;with a ;\n05515003;K\n08136000;K;"
        let entries = MunicipalityKeys.parse(text)
        #expect(entries == [
            "05515000": .init(level: .municipality, name: "Münster, Stadt"),
            "05000000": .init(level: .state, name: "Nordrhein-Westfalen;with a ;"),
            "08136000": .init(level: .district, name: ""),
        ])
    }

    @Test func realMunicipalityKeysAreAccepted() throws {
        for ags in ["05515000", "09162000"] {
            let spec = try PipelineSpec.load(file: try Self.folder(tenant: ags))
            #expect(spec.tenant == ags)
        }
    }

    @Test func anUnknownKeyIsAnErrorAtItsLocationThatSuggestsTenantsYAML() throws {
        let file = try Self.folder(tenant: "05515999")
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: file) }
        #expect(error.diagnostics.count == 1)
        let line = error.diagnostics[0].description
        #expect(line == "\(file):3:9: error: unknown tenant '05515999': no municipality, Kreis or Land has this key in the bundled Gemeindeverzeichnis "
                + "(Destatis, Gebietsstand 31.12.2021); for an association or a newer municipality add it to tenants.yaml next to catalog.yaml "
                + "(see docs/tenants.md); did you mean '05515000' (Münster, Stadt)? (at 'tenant')")
    }

    @Test func theShapeIsCheckedFirst() throws {
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: try Self.folder(tenant: "5515000")) }
        #expect(error.diagnostics.map(\.message) == ["tenant '5515000' must be an 8-digit Amtlicher Gemeindeschlüssel (AGS), e.g. '05515000' for Münster (at 'tenant')"])
    }

    static let association = """
        version: 1
        tenants:
          - ags: "99000001"
            name: Zweckverband Digitale Region Musterland
            publisher: { name: Zweckverband Digitale Region Musterland, url: https://www.digitale-region.example/, email: daten@digitale-region.example }
          - ags: "05515000"
            name: Stadt Münster
            contact: { name: Open-Data-Team, email: opendata@stadt-muenster.example }
        """

    @Test func anAssociationInTenantsYAMLIsAccepted() throws {
        let file = try Self.folder(tenant: "99000001", tenantsYAML: Self.association)
        let spec = try PipelineSpec.load(file: file)
        #expect(spec.tenant == "99000001")
        let directory = try TenantDirectory.near(file)
        let tenant = try #require(directory.tenant("99000001"))
        #expect(tenant.level == .association)
        #expect(tenant.declared)
        #expect(tenant.publisher == Agent(name: "Zweckverband Digitale Region Musterland", url: "https://www.digitale-region.example/", email: "daten@digitale-region.example"))
        // An entry for a municipality overrides its name; its publisher defaults to that name.
        let muenster = try #require(directory.tenant("05515000"))
        #expect(muenster.name == "Stadt Münster")
        #expect(muenster.publisher == Agent(name: "Stadt Münster"))
        #expect(muenster.contact == ContactPoint(name: "Open-Data-Team", email: "opendata@stadt-muenster.example"))
        #expect(directory.declaredOrder == ["99000001", "05515000"])
        // Without the file the same key is unknown, and the message names the file it looked for.
        let alone = try Self.folder(tenant: "99000001", tenantsYAML: "version: 1\ntenants: []\n")
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: alone) }
        let tenantsFile = ((alone as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent + "/tenants.yaml"
        #expect(error.diagnostics.first?.message.contains("add it to \(tenantsFile) (see docs/tenants.md) (at 'tenant')") == true, "\(error)")
    }

    @Test func tenantsYAMLProblemsAreLocated() throws {
        let yaml = """
            version: 1
            tenants:
              - ags: "9900001"
                name: Zu kurz
              - ags: "99000002"
              - ags: "05515000"
                publisher: { name: Stadt Münster, typ: LocalAuthority }
              - ags: "05515000"
            """
        let error = try #require(throws: DiagnosticError.self) { try TenantDirectory.parse(yaml: yaml, file: "tenants.yaml") }
        #expect(error.diagnostics.map(\.description) == [
            "tenants.yaml:3:10: error: ags '9900001' must be 8 digits (an Amtlicher Gemeindeschlüssel; for an association any key the Gemeindeverzeichnis does not hold, e.g. '99000001') (at 'tenants[0].ags')",
            "tenants.yaml:5:5: error: tenant '99000002' is not in the bundled Gemeindeverzeichnis, so it needs a 'name' (an association's or a new municipality's) (at 'tenants[1]')",
            "tenants.yaml:7:39: error: unknown key 'typ' in 'tenants[2].publisher'; did you mean 'type'?",
            "tenants.yaml:8:10: error: tenant '05515000' is declared twice in tenants.yaml (at 'tenants[3].ags')",
        ])
        // A pipeline next to a broken tenants.yaml says so at its tenant key.
        let file = try Self.folder(tenant: "05515000", tenantsYAML: yaml)
        let pipelineError = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: file) }
        #expect(pipelineError.diagnostics.first?.message.hasPrefix("cannot check tenant '05515000': tenants.yaml has 4 problem(s), first: ") == true, "\(pipelineError)")
    }

    @Test func theRepositoryTenantsFileIsValidAndEveryPipelineTenantKnown() throws {
        let directory = try TenantDirectory.load(file: Paths.root + "/tenants.yaml")
        #expect(directory.tenant("05515000")?.name == "Stadt Musterstadt")
        let folder = Paths.root + "/Pipelines"
        let files = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("templates/") }
        #expect(files.count >= 10)
        for file in files {
            let spec = try PipelineSpec.load(file: folder + "/" + file, connectors: BuiltinConnectors.registry)
            #expect(directory.tenant(spec.tenant) != nil, "\(file): \(spec.tenant)")
        }
    }
}
