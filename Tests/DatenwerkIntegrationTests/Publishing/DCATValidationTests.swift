import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPublishing
import Foundation
import Testing
import DatenwerkTesting

/// The DCAT-AP.de catalog judged by GovData's SHACL shapes (`validate-dcat.sh`, default profile de-2.0).
@Suite(.serialized) struct PublishingDCATValidationTests {
    typealias S = PublishingSamples

    @Test func twoDatasetsPassInTurtleRDFXMLAndJSONLDWithTheSameTriples() async throws {
        let dir = try Paths.temporaryDirectory()
        let catalog = DCATCatalog(
            catalog: S.catalog, baseURL: S.baseURL + "/", datasets: [(S.klima, S.klimaFacts), (S.energie, S.energieFacts)],
            paging: DCATPaging(page: 1, pageSize: 100, totalItems: 2), catalogModifiedMicros: S.klimaFacts.lastModifiedMicros
        )
        var triples: [RDFFormat: Int] = [:]
        for format in RDFFormat.allCases {
            // One collection URL for all three, so the documents hold exactly the same triples.
            let text = catalog.render(format, collectionURL: S.baseURL + "/catalog")
            let file = try S.write(text, "catalog.\(format.fileExtension)", in: dir)
            let run = try await Validators.dcat(file: file)
            #expect(run.status == 0, "\(format): \(run)")
            #expect(run.errors == 0, "\(format): \(run)")
            triples[format] = run.triples
        }
        let expected = catalog.graph(collectionURL: S.baseURL + "/catalog").count
        #expect(triples[.turtle] == expected)
        #expect(triples[.rdfXML] == expected)
        #expect(triples[.jsonLD] == expected)
    }

    @Test func passesTheEUDCATAP3Profile() async throws {
        let dir = try Paths.temporaryDirectory()
        let catalog = DCATCatalog(catalog: S.catalog, baseURL: S.baseURL, datasets: [(S.klima, S.klimaFacts), (S.energie, S.energieFacts)],
                                  paging: DCATPaging(page: 1, pageSize: 10, totalItems: 2), catalogModifiedMicros: S.t0)
        let file = try S.write(catalog.render(.turtle), "catalog.ttl", in: dir)
        let run = try await Validators.dcat(file: file, profile: "dcat-ap-3.0.1")
        #expect(run.status == 0, "\(run)")
        #expect(run.errors == 0, "\(run)")
    }

    @Test func pagesLinkWithHydraAndRepeatTheCatalogIdentically() async throws {
        let dir = try Paths.temporaryDirectory()
        let collection = S.baseURL + "/catalog.ttl"
        let pages = [(S.klima, S.klimaFacts), (S.energie, S.energieFacts)].enumerated().map { index, dataset in
            DCATCatalog(catalog: S.catalog, baseURL: S.baseURL, datasets: [dataset],
                        paging: DCATPaging(page: index + 1, pageSize: 1, totalItems: 2), catalogModifiedMicros: S.klimaFacts.lastModifiedMicros)
        }
        let hydra = "http://www.w3.org/ns/hydra/core#"
        func objects(_ graph: RDFGraph, _ subject: String, _ predicate: String) -> [RDFTerm] {
            graph.triples.filter { $0.subject == .iri(subject) && $0.predicate == predicate }.map(\.object)
        }
        let first = pages[0].graph(collectionURL: collection), second = pages[1].graph(collectionURL: collection)
        let page1 = collection + "?page=1", page2 = collection + "?page=2"
        #expect(objects(first, page1, hydra + "next") == [.iri(page2)])
        #expect(objects(first, page1, hydra + "nextPage") == [.iri(page2)])
        #expect(objects(first, page1, hydra + "last") == [.iri(page2)])
        #expect(objects(first, page1, hydra + "totalItems") == [.literal("2", datatype: "http://www.w3.org/2001/XMLSchema#integer")])
        #expect(objects(second, page2, hydra + "next").isEmpty)
        #expect(objects(second, page2, hydra + "previous") == [.iri(page1)])

        // Harvesters merge the pages: everything about the catalog and its publisher must be the same on each.
        func shared(_ graph: RDFGraph) -> Set<RDFTriple> {
            let subjects: Set<RDFTerm> = [.iri(S.baseURL + "/catalog"), .iri(S.baseURL + "/organizations/stadt-musterstadt")]
            return Set(graph.triples.filter { subjects.contains($0.subject) && $0.predicate != "http://www.w3.org/ns/dcat#dataset" })
        }
        #expect(shared(first) == shared(second))
        #expect(shared(first).count > 10)

        for (index, page) in pages.enumerated() {
            let file = try S.write(page.render(.turtle), "catalog-\(index + 1).ttl", in: dir)
            let run = try await Validators.dcat(file: file)
            #expect(run.status == 0 && run.errors == 0, "page \(index + 1): \(run)")
        }
    }

    /// Every open dataset declared in `Pipelines/`, with the repository's `catalog.yaml`.
    @Test func everyPipelineDatasetPassesWithTheRepositoryCatalog() async throws {
        let catalog = try CatalogSpec.load(file: Paths.root + "/catalog.yaml")
        var datasets: [(DatasetMetadata, DatasetFacts)] = []
        let files = FileManager.default.enumerator(atPath: Paths.root + "/Pipelines")!.compactMap { $0 as? String }.filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("templates/") }.sorted()
        for file in files {
            let spec = try PipelineSpec.load(file: Paths.root + "/Pipelines/" + file, connectors: BuiltinConnectors.registry)
            let metadata = try #require(spec.datasetMetadata, "\(file) has no dataset: block")
            guard metadata.access == .open else { continue }
            datasets.append((metadata, S.klimaFacts))
        }
        #expect(datasets.count >= 15)
        #expect(Set(datasets.map(\.0.id)).count == datasets.count, "dataset ids must be unique")
        let dir = try Paths.temporaryDirectory()
        let document = DCATCatalog(catalog: catalog, baseURL: S.baseURL, datasets: datasets,
                                   paging: DCATPaging(page: 1, pageSize: 100, totalItems: datasets.count), catalogModifiedMicros: S.t0)
        let file = try S.write(document.render(.turtle), "catalog.ttl", in: dir)
        let run = try await Validators.dcat(file: file)
        #expect(run.status == 0, "\(run)")
        #expect(run.errors == 0, "\(run)")
        #expect(run.warnings == 0, "\(run)")
        #expect(run.output.contains("\(datasets.count) dcat:Dataset"), "\(run)")
    }
}
