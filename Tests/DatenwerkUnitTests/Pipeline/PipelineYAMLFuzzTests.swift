import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// Property-based fuzzing of the YAML pipeline reader: every pipeline in `Pipelines/` and `SampleData/`, mutated
/// in ways a careless or hostile author would (cut, structural YAML tokens, anchors and aliases, extreme numbers
/// and durations, tabs, duplicated and re-indented lines, NUL and BOM), must end in a spec or in diagnostics that
/// name the file and a line inside it — never a trap, never a hang — and the same input must give the same
/// messages twice (no dictionary order in a message).
///
/// `make test` runs 150 mutations per file; `DATENWERK_YAML_FUZZ_RUNS=N` runs N in all (the figure in
/// docs/FUZZING.md comes from that), `DATENWERK_YAML_FUZZ_SEED` changes the sequence.
@Suite("Pipeline YAML fuzzing")
struct PipelineYAMLFuzzTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func pipelineFiles() throws -> [URL] {
        var files: [URL] = []
        for folder in ["Pipelines", "SampleData"] {
            let base = root.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where ["yaml", "yml"].contains(url.pathExtension) {
                files.append(url)
            }
        }
        return files.sorted { $0.path < $1.path }
    }

    static let tokens: [String] = [
        ":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: *a\n", "!!binary ", "!!int ", "!custom ", "? ", "|\n", ">-\n",
        "\n  ", "\n", "\t", "'", "\"", "\\", "#", "%YAML 1.1\n", "---\n", "...\n", "\u{0}", "\u{FEFF}", "\u{7F}", "~", "null",
        "true", "no", "ü", "\u{1F600}", "99999999999999999999999", "-1", "0", "1e308", "-1e308", ".nan", ".inf", "0x7fffffffffffffff",
        "every 9999999999999m", "every 0s", "@hourly", "*/0 * * * *", "60 24 32 13 8", "P9999999999Y", "PT-1S", "2038-01-19T03:14:08Z",
        "0001-01-01", "Europe/Nowhere", "../../../../etc/passwd", "http://[::1", "${env:HOME}", String(repeating: "a", count: 300),
        String(repeating: "[", count: 200), String(repeating: "- ", count: 100),
    ]

    /// splitmix64: a fixed sequence for a given seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    }

    static func mutate(_ text: String, _ random: inout Random) -> String {
        var lines = text.components(separatedBy: "\n")
        for _ in 0...random.below(3) {
            guard !lines.isEmpty else { break }
            let i = random.below(lines.count)
            switch random.below(8) {
            case 0: lines.remove(at: i)
            case 1: lines.insert(lines[i], at: random.below(lines.count + 1))
            case 2: lines[i] = String(repeating: " ", count: random.below(9)) + lines[i].drop { $0 == " " }
            case 3:
                var line = Array(lines[i])
                let at = random.below(line.count + 1)
                line.insert(contentsOf: Array(tokens[random.below(tokens.count)]), at: at)
                lines[i] = String(line)
            case 4:
                var line = Array(lines[i])
                guard !line.isEmpty else { break }
                let from = random.below(line.count)
                line.removeSubrange(from..<min(line.count, from + 1 + random.below(8)))
                lines[i] = String(line)
            case 5:
                // Replace a value after "key: " with a token.
                if let colon = lines[i].firstIndex(of: ":") {
                    lines[i] = String(lines[i][...colon]) + " " + tokens[random.below(tokens.count)]
                }
            case 6: lines = Array(lines.prefix(i))
            default: lines.swapAt(i, random.below(lines.count))
            }
        }
        return lines.joined(separator: "\n")
    }

    enum Outcome: Equatable {
        case spec(String)
        case diagnostics([Diagnostic])
        case other(String)
    }

    /// Parses and checks one input.
    static func outcome(_ yaml: String, file: String) -> Outcome {
        do {
            let spec = try PipelineSpec.parse(yaml: yaml, file: file, connectors: BuiltinConnectors.registry)
            if let cron = spec.cron {
                // A schedule that validates must give a next fire without trapping.
                _ = cron.next(after: 1_767_225_600)
                _ = cron.next(after: 4_102_444_800)
            }
            return .spec(spec.name)
        } catch let error as DiagnosticError {
            return .diagnostics(error.diagnostics)
        } catch {
            return .other("\(error)")
        }
    }

    @Test("mutated pipelines end in a spec or located diagnostics, the same each time")
    func mutatedPipelines() throws {
        let files = try Self.pipelineFiles()
        #expect(files.count >= 10, "found \(files.count) pipeline files")
        let environment = ProcessInfo.processInfo.environment
        let total = environment["DATENWERK_YAML_FUZZ_RUNS"].flatMap(Int.init) ?? 150 * files.count
        var random = Random(state: environment["DATENWERK_YAML_FUZZ_SEED"].flatMap(UInt64.init) ?? 10)
        let texts = try files.map { try String(contentsOf: $0, encoding: .utf8) }
        var specs = 0
        for run in 0..<total {
            let index = run % files.count
            let file = files[index].path
            let yaml = Self.mutate(texts[index], &random)
            let first = Self.outcome(yaml, file: file)
            switch first {
            case .spec:
                specs += 1
                continue
            case .other(let error):
                Issue.record("not a DiagnosticError: \(error)\n--- input:\n\(yaml)")
            case .diagnostics(let diagnostics):
                #expect(!diagnostics.isEmpty, "an error without a diagnostic\n--- input:\n\(yaml)")
                let lineCount = yaml.components(separatedBy: "\n").count
                for d in diagnostics {
                    // A pipeline that uses a template is also told about the template's lines (docs/templates.md).
                    let inTemplate = d.file?.hasPrefix(Self.root.path + "/Pipelines/templates/") == true
                    #expect(d.file == file || inTemplate, "a diagnostic without the file: \(d)\n--- input:\n\(yaml)")
                    if let line = d.line, !inTemplate {
                        #expect(line >= 1 && line <= lineCount + 1, "line \(line) outside 1…\(lineCount): \(d)\n--- input:\n\(yaml)")
                    }
                }
            }
            let second = Self.outcome(yaml, file: file)
            #expect(first == second, "the same input gave other messages:\n\(first)\n--- then:\n\(second)\n--- input:\n\(yaml)")
        }
        // Some mutations leave a valid pipeline (a swapped line, a re-ordered key): the happy path is exercised too.
        #expect(specs > 0)
        if environment["DATENWERK_YAML_FUZZ_RUNS"] != nil {
            print("yaml fuzz: \(total) inputs, \(specs) valid pipelines, \(total - specs) with diagnostics, 0 traps")
        }
    }
}
