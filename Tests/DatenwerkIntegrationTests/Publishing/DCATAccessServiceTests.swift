import DatenwerkCore
import DatenwerkPublishing
import DatenwerkTesting
import Foundation
import Testing

/// The catalog's links to OGC API – Features and the SensorThings API: one more distribution per dataset and service with `dcat:accessService` → a
/// `dcat:DataService` with `dcat:endpointURL`, still valid for GovData's shapes (de-2.0).
@Suite(.serialized) struct DCATAccessServiceTests {
    typealias S = PublishingSamples

    @Test("a distribution with dcat:accessService per dataset; 0 violations in de-2.0, all three formats")
    func accessServiceValidates() async throws {
        let dir = try Paths.temporaryDirectory()
        let catalog = DCATCatalog(catalog: S.catalog, baseURL: S.baseURL, datasets: [(S.klima, S.klimaFacts), (S.energie, S.energieFacts)],
                                  catalogModifiedMicros: S.t0).serving([.ogcAPIFeatures, .sensorThings])
        let turtle = catalog.render(.turtle)
        #expect(turtle.contains("dcat:accessService"))
        #expect(turtle.contains("dcat:endpointURL <\(S.baseURL)/ogcapi>"))
        #expect(turtle.contains("<\(S.baseURL)/ogcapi/collections/\(S.klima.id)-observations>"))
        let graph = catalog.graph(collectionURL: S.baseURL + "/catalog.ttl")
        let services = graph.triples.filter { $0.predicate == "http://www.w3.org/ns/dcat#accessService" }
        #expect(turtle.contains("dcat:endpointURL <\(S.baseURL)/sta/v1.1>"))
        // Two datasets × two services.
        #expect(services.count == 4)
        for format in RDFFormat.allCases {
            let file = try S.write(catalog.render(format), "catalog.\(format.fileExtension)", in: dir)
            let run = try await Validators.dcat(file: file)
            #expect(run.status == 0 && run.errors == 0, "\(format): \(run)")
        }
        // Not the EU profile here: pySHACL 0.40.1 stops on its DataServiceShape ("not a well-formed SHACL PropertyShape"),
        // a fault of the shapes file, with exit status 2 before judging anything.
    }
}
