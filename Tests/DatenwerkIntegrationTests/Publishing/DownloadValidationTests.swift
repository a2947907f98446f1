import DatenwerkCore
import DatenwerkPublishing
import Foundation
import Testing
import DatenwerkTesting

/// The downloads judged by Frictionless (CSV + Table Schema, datapackage.json) and by GDAL + the
/// GeoJSON schemas.
@Suite(.serialized) struct PublishingDownloadValidationTests {
    typealias S = PublishingSamples

    @Test func csvPassesItsTableSchema() async throws {
        let dir = try Paths.temporaryDirectory()
        let csv = try S.write(S.encode(S.rows, as: .csv), "observations.csv", in: dir)
        let schema = try S.write(ObservationTableSchema.json.prettySerialized, "observations.schema.json", in: dir)
        let run = try await Validators.csv(file: csv, schema: schema)
        #expect(run.status == 0, "\(run)")
        #expect(run.errors == 0, "\(run)")
        #expect(run.output.contains("Rows Checked | \(S.rows.count)"), "\(run)")
    }

    @Test func headerOnlyCSVPasses() async throws {
        let dir = try Paths.temporaryDirectory()
        let csv = try S.write(S.encode([], as: .csv), "observations.csv", in: dir)
        let schema = try S.write(ObservationTableSchema.json.prettySerialized, "observations.schema.json", in: dir)
        let run = try await Validators.csv(file: csv, schema: schema)
        #expect(run.passed, "\(run)")
    }

    @Test func dataPackageWithAllThreeDownloadsPasses() async throws {
        let dir = try Paths.temporaryDirectory()
        for format in ObservationFormat.allCases {
            _ = try S.write(S.encode(S.rows, as: format), "observations.\(format.fileExtension)", in: dir)
        }
        let package = DataPackage.json(dataset: S.klima, facts: S.klimaFacts, catalog: S.catalog, baseURL: S.baseURL)
        let file = try S.write(package.prettySerialized, "datapackage.json", in: dir)
        let run = try await Validators.csv(file: file)
        #expect(run.status == 0, "\(run)")
        #expect(run.errors == 0, "\(run)")
        #expect(run.output.contains("resource 'observations-ndjson'"), "\(run)")
    }

    @Test func geoJSONPassesRFC7946Checks() async throws {
        let dir = try Paths.temporaryDirectory()
        let file = try S.write(S.encode(S.rows, as: .geojson, bbox: S.klimaFacts.bbox), "observations.geojson", in: dir)
        let run = try await Validators.geojson(file: file)
        #expect(run.status == 0, "\(run)")
        #expect(run.errors == 0, "\(run)")
        #expect(run.warnings == 0, "\(run)")
        #expect(run.output.contains("features: \(S.rows.count)"), "\(run)")
    }

    @Test func geoJSONWithNextLinkPasses() async throws {
        let dir = try Paths.temporaryDirectory()
        var encoder = ObservationEncoder(format: .geojson)
        var out: [UInt8] = []
        encoder.writeHeader(into: &out)
        encoder.write(S.rows.prefix(2), into: &out)
        encoder.writeFooter(into: &out, next: S.baseURL + "/datasets/musterstadt-klima/observations.geojson?cursor=abc&limit=2")
        let file = try S.write(out, "page.geojson", in: dir)
        let run = try await Validators.geojson(file: file)
        #expect(run.passed, "\(run)")
    }
}
