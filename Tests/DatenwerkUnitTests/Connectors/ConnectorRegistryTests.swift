import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// What CONTRIBUTING.md ("Adding a connector") asks of every connector, checked for all of them.
@Suite struct ConnectorRegistryTests {
    static let registry = BuiltinConnectors.registry
    static var kinds: [String] { registry.kinds }

    @Test func kindsAreUniqueAndDoNotShadowTheGenericSources() {
        let kinds = Self.kinds
        #expect(Set(kinds).count == kinds.count, "duplicate kinds: \(kinds)")
        for generic in SourceSpec.Kind.allCases.map(\.rawValue) {
            #expect(!kinds.contains(generic), "'\(generic)' is a generic source kind")
        }
        for kind in kinds {
            #expect(kind.range(of: #"^[a-z0-9][a-z0-9-]*$"#, options: .regularExpression) != nil, "kind '\(kind)'")
        }
    }

    @Test(arguments: BuiltinConnectors.registry.kinds)
    func sampleYAMLValidatesWithoutProblems(_ kind: String) throws {
        let connector = try #require(Self.registry.connector(kind))
        let spec: PipelineSpec
        do {
            spec = try PipelineSpec.parse(yaml: connector.sampleYAML, file: "\(kind)-sample.yaml", connectors: Self.registry)
        } catch let error as DiagnosticError {
            Issue.record("the sample of \(kind) does not validate:\n\(error)")
            return
        }
        #expect(spec.warnings.isEmpty, "\(spec.warnings)")
        let config = try #require(spec.connector)
        #expect(config.kind == kind)
        // It decodes into the connector's Configuration.
        let configured = try #require(connector as? any ConfiguredConnector, "\(kind) has no typed Configuration (ConfiguredConnector)")
        _ = try configured.decodeConfiguration(config)
    }

    @Test(arguments: BuiltinConnectors.registry.kinds)
    func everyKeyIsDeclaredOnceWithTypeAndHelp(_ kind: String) throws {
        let connector = try #require(Self.registry.connector(kind))
        #expect(!connector.summary.isEmpty)
        let names = connector.keys.flatMap { [$0.name] + $0.deprecatedNames }
        #expect(Set(names).count == names.count, "\(kind): a key name appears twice: \(names)")
        #expect(!names.contains("kind"))
        for key in connector.keys {
            #expect(!key.help.trimmingCharacters(in: .whitespaces).isEmpty, "\(kind).\(key.name) has no help text")
            #expect(key.name.range(of: #"^[a-z][a-z0-9_]*$"#, options: .regularExpression) != nil, "\(kind).\(key.name): snake_case")
            let decode = try #require(key.decode, "\(kind).\(key.name) is not declared through Setting / DefaultedSetting")
            if let value = key.defaultValue {
                #expect(!key.required, "\(kind).\(key.name) is required and has a default")
                #expect(decode(value) != nil, "\(kind).\(key.name): the default \(value) does not decode")
            }
            for deprecated in key.deprecatedNames where TimeZoneKey.deprecated.contains(deprecated) {
                #expect(key.name == TimeZoneKey.name, "\(kind).\(key.name)")
            }
            // One spelling per concept: a time zone key is called `timezone`.
            if key.name.contains("zone") { #expect(key.name == TimeZoneKey.name, "\(kind).\(key.name): the time zone key is '\(TimeZoneKey.name)'") }
        }
    }

    @Test(arguments: BuiltinConnectors.registry.kinds)
    func everyChoiceDecodesToItsEnum(_ kind: String) throws {
        let connector = try #require(Self.registry.connector(kind))
        for key in connector.keys {
            guard case .choice(let options) = key.kind else { continue }
            #expect(!options.isEmpty)
            let decode = try #require(key.decode, "\(kind).\(key.name)")
            for option in options {
                let value = try #require(decode(.string(option)), "\(kind).\(key.name): '\(option)' does not decode")
                #expect(!(value is String), "\(kind).\(key.name) decodes to text, not to an enum")
                #expect((value as? any ConfigChoice)?.configValue == .string(option), "\(kind).\(key.name): '\(option)' does not round-trip")
            }
            #expect(decode(.string("no such option")) == nil)
        }
    }

    /// The checklist's other points: a folder of its own, fixture cases, a line in the README's connector table.
    @Test(arguments: BuiltinConnectors.registry.kinds)
    func folderFixturesAndReadmeLine(_ kind: String) throws {
        let connector = try #require(Self.registry.connector(kind))
        let typeName = String(describing: type(of: connector))
        let sources = Paths.root + "/Sources/DatenwerkConnectors"
        let folders = (try FileManager.default.contentsOfDirectory(atPath: sources)).filter {
            FileManager.default.fileExists(atPath: "\(sources)/\($0)/\(typeName).swift")
        }
        #expect(folders.count == 1, "\(typeName).swift is not in a folder of its own under Sources/DatenwerkConnectors/")
        let cases = FixtureCase.all.filter { $0.kind == kind }
        #expect(!cases.isEmpty, "no fixture case under Tests/Fixtures/\(kind)/")
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        #expect(readme.contains("| `\(kind)` |"), "README.md's connector table has no row for `\(kind)`")
    }
}
