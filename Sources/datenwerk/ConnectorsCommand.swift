import ArgumentParser
import DatenwerkCore
import DatenwerkConnectors
import DatenwerkPipeline

struct ConnectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connectors",
        abstract: "List the source kinds and show how to configure one.",
        subcommands: [List.self, Describe.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every source kind.")
        func run() {
            let generic = [("file", "local files in CSV, JSON or NDJSON, mapped with an 'observations' block"),
                           ("http", "any HTTP API in CSV, JSON or NDJSON with paging, mapped with an 'observations' block")]
            let rows = generic + BuiltinConnectors.registry.connectors.map { ($0.kind, $0.summary) }
            let width = rows.map(\.0.count).max() ?? 0
            for (kind, summary) in rows {
                print(kind.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + summary)
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a connector's keys and a sample pipeline.")

        @Argument(help: "The source kind, e.g. sensor-community.")
        var kind: String

        func run() throws {
            guard let connector = BuiltinConnectors.registry.connector(kind) else {
                let known = BuiltinConnectors.registry.kinds
                stderr("error: unknown connector '\(kind)'\(closest(kind, known)); known: \(known.joined(separator: ", "))")
                throw Exit.invalidConfiguration
            }
            print("\(connector.kind): \(connector.summary)\n")
            print("Keys under 'source:' (besides kind):")
            for key in connector.keys {
                var line = "  \(key.name) (\(key.typeName)\(key.required ? ", required" : ""))"
                if let d = key.defaultText { line += " default \(d)" }
                print(line)
                print("      \(key.help)")
            }
            print("\nSample pipeline:\n")
            print(connector.sampleYAML)
        }

        func closest(_ name: String, _ known: [String]) -> String {
            closestMatch(to: name, in: known).map { "; did you mean '\($0)'?" } ?? ""
        }
    }
}
