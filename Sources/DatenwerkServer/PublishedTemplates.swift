import DatenwerkCore
import DatenwerkPipeline
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// This installation's pipeline templates for other installations (docs/templates.md): `GET /templates/` is an index
/// (name, sha256, url, description, parameters), `GET /templates/{name}.yaml` the file itself, byte for byte as its
/// hash says. A neighbour pins the hash: `uses: https://…/templates/<name>.yaml` with `sha256: <hex>`.
///
/// The folder is read at each request (templates are small and few), so an edited template is served at once with
/// its new hash. Only valid templates are listed and served: a file that does not read as a template is a 404.
struct PublishedTemplates: Sendable {
    static let routes = ["/templates", "/templates/*"]

    let directory: String
    let baseURL: @Sendable (Request) -> String

    func register(on router: Router<ServerRequestContext>) {
        router.read("/templates") { request, _ in self.index(request) }
        router.read("/templates/:file") { request, context in
            self.file(context.parameters.get("file") ?? "")
        }
    }

    /// The valid templates of the folder, by name.
    private func templates() -> [(template: PipelineTemplate, bytes: Data)] {
        TemplateLibrary.files(in: directory).compactMap { file in
            guard file.hasSuffix(".yaml"), let bytes = FileManager.default.contents(atPath: file),
                  let template = try? PipelineTemplate.load(file: file), template.sha256 == sha256Hex(bytes) else { return nil }
            return (template, bytes)
        }
    }

    func index(_ request: Request) -> Response {
        let base = baseURL(request)
        let items: [JSONValue] = templates().map { template, _ in
            .object([
                .init("name", .string(template.name)),
                .init("sha256", .string(template.sha256)),
                .init("url", .string("\(base)/templates/\(template.name).yaml")),
                .init("description", .string(template.description)),
                .init("parameters", .number(Double(template.parameters.count))),
            ])
        }
        return .json(.object([.init("templates", .array(items))]), headers: [.cacheControl: "no-cache"])
    }

    func file(_ name: String) -> Response {
        guard name.hasSuffix(".yaml"), let found = templates().first(where: { "\($0.template.name).yaml" == name }) else {
            return .problem(.notFound, "no template named '\(String(name.prefix(100)))'; GET /templates/ lists them")
        }
        var headers: HTTPFields = [.contentType: "application/yaml; charset=utf-8", .cacheControl: "no-cache"]
        headers[.eTag] = "\"\(found.template.sha256)\""
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: found.bytes)))
    }
}
