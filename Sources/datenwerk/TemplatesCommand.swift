import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation

/// `datenwerk templates list|describe|fetch`: the pipeline templates of `Pipelines/templates/` (docs/templates.md).
struct TemplatesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Pipeline templates: list them, describe one's parameters, fetch other installations' templates.",
        subcommands: [List.self, Describe.self, Fetch.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every template: name, number of parameters, description.")

        @Option(help: "The templates folder.") var templates = "Pipelines/templates"

        func run() throws {
            let files = TemplateLibrary.files(in: templates)
            if files.isEmpty {
                stderr("error: no templates in \(templates)")
                throw Exit.invalidConfiguration
            }
            var rows: [(String, String, String)] = []
            var failed = false
            for file in files {
                do {
                    let template = try PipelineTemplate.load(file: file)
                    let required = template.parameters.filter(\.required).count
                    rows.append((template.name, "\(template.parameters.count) (\(required) required)", template.description))
                } catch let error as DiagnosticError {
                    failed = true
                    for d in error.diagnostics { stderr(located(d).description) }
                }
            }
            let width = max(8, rows.map(\.0.count).max() ?? 0)
            print("template".padding(toLength: width + 2, withPad: " ", startingAt: 0) + "parameters      description")
            for (name, count, description) in rows {
                print(name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + count.padding(toLength: 16, withPad: " ", startingAt: 0) + description)
            }
            if failed { throw Exit.invalidConfiguration }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "describe", abstract: "A template's parameters (type, default, description) and an example pipeline.")

        @Argument(help: "The template's name (its file in the templates folder without .yaml), or a template file.") var name: String
        @Option(help: "The templates folder.") var templates = "Pipelines/templates"

        func run() throws {
            let file = name.hasSuffix(".yaml") || name.hasSuffix(".yml") ? name : (templates as NSString).appendingPathComponent("\(name).yaml")
            guard FileManager.default.fileExists(atPath: file) else {
                let known = TemplateLibrary.files(in: templates).map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }
                let suggestion = closestMatch(to: name, in: known).map { "; did you mean '\($0)'?" } ?? ""
                stderr("error: no template '\(name)' in \(templates)\(suggestion) (known: \(known.joined(separator: ", ")))")
                throw Exit.invalidConfiguration
            }
            let template: PipelineTemplate
            do { template = try PipelineTemplate.load(file: file) } catch let error as DiagnosticError {
                for d in error.diagnostics { stderr(located(d).description) }
                throw Exit.invalidConfiguration
            }
            print(Self.text(template))
        }

        static func text(_ template: PipelineTemplate) -> String {
            var lines = ["\(template.name): \(template.description)", "sha256: \(template.sha256)", ""]
            if template.parameters.isEmpty {
                lines.append("No parameters.")
            } else {
                lines.append("Parameters (under 'with:'):")
                for p in template.parameters {
                    let value = p.defaultValue.map { "default \(TemplateValue.flowText($0))" } ?? "required"
                    lines.append("  \(p.name) (\(p.type.label)) \(value)")
                    lines.append("      \(p.description)")
                }
            }
            lines += ["", "Example pipeline:", "", "version: 1", "name: \(template.name)-musterstadt", "tenant: \"05515000\"", "uses: templates/\(template.name)"]
            if !template.parameters.isEmpty {
                lines.append("with:")
                for p in template.parameters {
                    if let example = p.example ?? p.defaultValue {
                        let line = "  \(p.name): \(TemplateValue.flowText(example))"
                        lines.append(p.required || p.example != nil ? line : "  # " + line.dropFirst(2) + "   (the default)")
                    } else {
                        lines.append("  \(p.name): <\(p.type.label)>")
                    }
                }
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch",
            abstract: "Fetch the templates of other installations that pipelines use (uses: https://… with sha256:) into the cache.",
            discussion: "The cache is DATENWERK_TEMPLATE_CACHE, else ~/.cache/datenwerk/templates; each file is kept under its SHA-256."
        )

        @Argument(help: "Pipeline files or folders (default: Pipelines).") var paths: [String] = ["Pipelines"]

        func run() async throws {
            let fetcher = HTTPFetcher()
            let (fetched, problems) = await RemoteTemplates.fetchMissing(files: pipelineFiles(paths), library: .standard, fetcher: fetcher)
            try? await fetcher.shutdown()
            for use in fetched { print("fetched \(use.url) (sha256 \(use.sha256))") }
            for d in problems { stderr(located(d).description) }
            if !problems.isEmpty { throw Exit.invalidConfiguration }
            if fetched.isEmpty { print("ok: nothing to fetch") }
        }
    }
}

/// A diagnostic with its file shown relative to the working directory.
private func located(_ diagnostic: Diagnostic) -> Diagnostic {
    var d = diagnostic
    d.file = d.file.map { $0.hasPrefix("http://") || $0.hasPrefix("https://") ? $0 : displayPath($0) }
    return d
}

/// Template files named by `validate`'s arguments: folders named `templates` inside the given folders, and template
/// files given by name.
func templateFiles(_ paths: [String]) -> [String] {
    var files: [String] = []
    let fm = FileManager.default
    for path in paths {
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
        if isDirectory.boolValue {
            let found = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                .filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && isInTemplatesFolder((path as NSString).appendingPathComponent($0)) }.sorted()
            files += found.map { (path as NSString).appendingPathComponent($0) }
        } else if isInTemplatesFolder(path) {
            files.append(path)
        }
    }
    return files.map { ($0 as NSString).standardizingPath }
}

/// A file whose folder is named `templates` holds a pipeline template, not a pipeline.
func isInTemplatesFolder(_ path: String) -> Bool {
    parentFolder((path as NSString).standardizingPath).split(separator: "/").last == "templates"
}

/// Checks template files; prints each problem and returns how many there were.
func checkTemplates(_ files: [String]) -> Int {
    var problems = 0
    for file in files {
        for d in PipelineTemplate.check(file: file, connectors: BuiltinConnectors.registry) {
            if d.severity == .error { problems += 1 }
            stderr(located(d).description)
        }
    }
    return problems
}
