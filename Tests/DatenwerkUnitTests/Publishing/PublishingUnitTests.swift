import DatenwerkCore
import DatenwerkPipeline
@testable import DatenwerkPublishing
import Foundation
import Testing
import DatenwerkTesting

@Suite struct PublishingTimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-1_000_000, "1969-12-31T23:59:59Z"),
        (-1_500_000, "1969-12-31T23:59:58.500Z"),
        (-86_400_000_001, "1969-12-30T23:59:59.999999Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00Z"),
        (1_729_980_000_123_000, "2024-10-26T22:00:00.123Z"),
        (1_729_980_000_000_001, "2024-10-26T22:00:00.000001Z"),
        (-62_135_596_800_000_000, "0001-01-01T00:00:00Z"),
        (-62_167_219_200_000_000, "0000-01-01T00:00:00Z"),
        (253_402_300_799_000_000, "9999-12-31T23:59:59Z"),
        (253_402_300_800_000_000, "+10000-01-01T00:00:00Z"),
    ])
    func formatsUTCWithSecondsAndOnlyNeededFractions(micros: Int64, expected: String) {
        #expect(ByteWriting.timestamp(micros: micros) == expected)
    }

    @Test func agreesWithFoundationOverFourCenturies() {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let seconds = Int64.random(in: -6_000_000_000...6_000_000_000, using: &generator)
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            #expect(ByteWriting.timestamp(micros: seconds * 1_000_000) == expected, "\(seconds)")
        }
    }

    @Test func formatsDates() {
        #expect(ByteWriting.date(micros: 1_729_980_000_000_000) == "2024-10-26")
        #expect(ByteWriting.date(micros: -1) == "1969-12-31")
    }
}

@Suite struct PublishingNumberTests {
    @Test(arguments: [
        (17.4, "17.4"), (71.0, "71"), (-0.0, "0"), (-2.5, "-2.5"), (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "1e-07"), (123_456_789_012_345.0, "123456789012345"), (1e15, "1000000000000000"), (1e16, "1e+16"), (1e300, "1e+300"),
        (5e-324, "5e-324"), (-1234.5678, "-1234.5678"),
    ])
    func shortestRoundTripWithPoint(value: Double, expected: String) {
        #expect(ByteWriting.format(value) == expected)
        #expect(Double(ByteWriting.format(value)) == value)
    }

    @Test func randomValuesRoundTrip() {
        for _ in 0..<5000 {
            let value = Double(bitPattern: UInt64.random(in: 0...UInt64.max))
            guard value.isFinite else { continue }
            let text = ByteWriting.format(value)
            #expect(Double(text) == value, "\(text)")
            #expect(!text.contains(","))
        }
    }
}

@Suite struct PublishingEscapingTests {
    @Test func turtleStrings() {
        #expect(TurtleWriter.quoted("a\"b\\c\nd\re\tf") == #""a\"b\\c\nd\re\tf""#)
        #expect(TurtleWriter.quoted("ä <&> \u{01}") == "\"ä <&> \\u0001\"")
    }

    @Test func xmlTextAndAttributes() {
        #expect(RDFXMLWriter.escape("<a & \"b\">\r\n", attribute: false) == "&lt;a &amp; \"b\"&gt;&#13;\n")
        #expect(RDFXMLWriter.escape("x\"y\n", attribute: true) == "x&quot;y&#10;")
    }

    @Test func jsonStrings() {
        var out: [UInt8] = []
        ByteWriting.appendJSONString("Zitat \"x\", Back\\slash, Zeile\nTab\t\u{01} äöü €", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #""Zitat \"x\", Back\\slash, Zeile\nTab\t\u0001 äöü €""#)
    }

    @Test func csvFieldsAreQuotedOnlyWhenNeeded() {
        func field(_ s: String) -> String {
            var out: [UInt8] = []
            ByteWriting.appendCSVField(s, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(field("Münster-Geist") == "Münster-Geist")
        #expect(field("a,b") == "\"a,b\"")
        #expect(field("sagt \"hallo\"") == "\"sagt \"\"hallo\"\"\"")
        #expect(field("zwei\nZeilen") == "\"zwei\nZeilen\"")
    }

    @Test func htmlText() {
        #expect(HTML.escape("<Klima> & \"Wetter\" 'x' ä") == "&lt;Klima&gt; &amp; &quot;Wetter&quot; &#39;x&#39; ä")
    }

    @Test func iriCharactersAreEncodedAndLiteralsLoseXMLForbiddenControls() {
        let catalog = DCATCatalog(catalog: PublishingSamples.catalog, baseURL: "http://h", datasets: [])
        #expect(catalog.iri("https://x.example/a b<c>") == "https://x.example/a%20b%3Cc%3E")
        #expect(catalog.clean("a\u{01}b\u{0B}c\td\ne") == "abc\td\ne")
    }

    @Test func slugsForOrganisations() {
        #expect(DCATCatalog.slug("Stadt Münster, Umweltamt") == "stadt-muenster-umweltamt")
        #expect(DCATCatalog.slug("Bundesnetzagentur | SMARD.de") == "bundesnetzagentur-smard-de")
        #expect(DCATCatalog.slug("—") == "organisation")
    }
}

@Suite struct PublishingEncoderTests {
    typealias S = PublishingSamples

    @Test func csvHeaderAndRows() {
        let text = String(decoding: S.encode(Array(S.rows.prefix(3)) + [S.rows[4]], as: .csv), as: UTF8.self)
        #expect(text == """
            station_id,station_name,property,unit,phenomenon_time_start,phenomenon_time_end,value,quality,longitude,latitude
            musterstadt-klima:MS-01,"Rathaus ""Mitte"", Prinzipalmarkt",air_temperature,Cel,2024-10-26T22:00:00Z,,12.3,good,7.6261,51.9607
            musterstadt-klima:MS-01,"Rathaus ""Mitte"", Prinzipalmarkt",relative_humidity,%,2024-10-26T22:00:00Z,,87,,7.6261,51.9607
            musterstadt-klima:MS-02,"Stadtpark
            Aasee",precipitation,mm,2024-10-26T23:00:00Z,2024-10-27T00:00:00Z,0.30000000000000004,unchecked,7.5743,51.9301
            musterstadt-klima:MS-04,Ohne Position,air_temperature,Cel,1969-12-30T23:59:59.999999Z,,1e-07,,,

            """)
    }

    @Test func missingValueIsAnEmptyCellInCSVAndNullInJSON() throws {
        let row = ObservationRow(stationKey: "s", property: "p", unit: "1", startMicros: 0, value: .nan)
        #expect(String(decoding: S.encode([row], as: .csv), as: UTF8.self).hasSuffix("\ns,,p,1,1970-01-01T00:00:00Z,,,,,\n"))
        let line = String(decoding: S.encode([row], as: .ndjson), as: UTF8.self)
        #expect(line == #"{"station_id":"s","station_name":null,"property":"p","unit":"1","phenomenon_time_start":"1970-01-01T00:00:00Z","phenomenon_time_end":null,"value":null,"quality":null,"longitude":null,"latitude":null}"# + "\n")
    }

    @Test func ndjsonIsOneValidObjectPerLine() throws {
        let text = String(decoding: S.encode(S.rows, as: .ndjson), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == S.rows.count)
        for (line, row) in zip(lines, S.rows) {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["station_id"] as? String == row.stationKey)
            #expect(Array(object.keys).sorted() == ObservationEncoder.columns.sorted())
        }
    }

    @Test func geoJSONIsOneFeatureCollectionWithUniqueIDs() throws {
        let bytes = S.encode(S.rows, as: .geojson, bbox: S.klimaFacts.bbox)
        let object = try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["type"] as? String == "FeatureCollection")
        #expect((object["bbox"] as? [Double]) == [7.5743, 51.9301, 7.6752, 51.9862])
        let features = try #require(object["features"] as? [[String: Any]])
        #expect(features.count == S.rows.count)
        #expect(Set(features.compactMap { $0["id"] as? String }).count == S.rows.count)
        let first = try #require(features.first)
        #expect(first["id"] as? String == "musterstadt-klima:MS-01/air_temperature/2024-10-26T22:00:00Z")
        #expect(((first["geometry"] as? [String: Any])?["coordinates"] as? [Double]) == [7.6261, 51.9607])
        #expect(features.last?["geometry"] is NSNull)
        let empty = try #require(JSONSerialization.jsonObject(with: Data(S.encode([], as: .geojson))) as? [String: Any])
        #expect((empty["features"] as? [Any])?.isEmpty == true)
    }

    @Test func rowsAppendToOneBufferInBatches() {
        var encoder = ObservationEncoder(format: .geojson)
        var out: [UInt8] = []
        encoder.writeHeader(into: &out)
        for row in S.rows {
            var batch: [UInt8] = []
            encoder.write(row, into: &batch)
            out += batch
        }
        encoder.writeFooter(into: &out)
        #expect(out == S.encode(S.rows, as: .geojson))
        #expect(encoder.rowsWritten == S.rows.count)
    }
}

@Suite struct PublishingTableSchemaTests {
    @Test func schemaFieldsMatchTheCSVColumns() throws {
        let fields = try #require(ObservationTableSchema.json["fields"].flatMap { value -> [JSONValue]? in
            if case .array(let items) = value { return items } else { return nil }
        })
        #expect(fields.compactMap { $0["name"]?.stringValue } == ObservationEncoder.columns)
    }

    @Test func dataPackageListsThreeResourcesWithRelativePaths() {
        let package = DataPackage.json(dataset: PublishingSamples.klima, facts: PublishingSamples.klimaFacts, catalog: PublishingSamples.catalog, baseURL: "http://h/")
        #expect(package["name"]?.stringValue == "musterstadt-klima")
        #expect(package["licenses"]?[0]?["path"]?.stringValue == "https://www.govdata.de/dl-de/by-2-0")
        #expect(package["resources"]?[0]?["path"]?.stringValue == "observations.csv")
        #expect(package["resources"]?[1]?["path"]?.stringValue == "observations.geojson")
        #expect(package["resources"]?[2]?["path"]?.stringValue == "observations.ndjson")
        #expect(package["resources"]?[0]?["schema"] == ObservationTableSchema.json)
    }
}

@Suite struct PublishingStationMapTests {
    @Test func bboxCornersLandInsideThePaddedViewBox() {
        let box = BoundingBox(minLongitude: 7.5743, minLatitude: 51.9301, maxLongitude: 7.6752, maxLatitude: 51.9862)
        let projection = MapProjection(bbox: box, width: 320, height: 200, padding: 16)
        for (lon, lat) in [(box.minLongitude, box.minLatitude), (box.maxLongitude, box.maxLatitude),
                           (box.minLongitude, box.maxLatitude), (box.maxLongitude, box.minLatitude)] {
            let p = projection.project(longitude: lon, latitude: lat)
            #expect(p.x >= 16 - 1e-9 && p.x <= 304 + 1e-9, "\(lon) → x \(p.x)")
            #expect(p.y >= 16 - 1e-9 && p.y <= 184 + 1e-9, "\(lat) → y \(p.y)")
        }
        // North is up, east is right.
        let sw = projection.project(longitude: box.minLongitude, latitude: box.minLatitude)
        let ne = projection.project(longitude: box.maxLongitude, latitude: box.maxLatitude)
        #expect(sw.x < ne.x && sw.y > ne.y)
        let back = projection.unproject(x: ne.x, y: ne.y)
        #expect(abs(back.longitude - box.maxLongitude) < 1e-9 && abs(back.latitude - box.maxLatitude) < 1e-9)
    }

    @Test func stationsAtTheCornersAreDrawnInsideTheSVG() throws {
        let svg = try #require(StationMap.svg(stations: PublishingSamples.stations, id: "map-x", title: "Klima <Test>"))
        #expect(svg.contains("viewBox=\"0 0 320 200\""))
        #expect(svg.contains("role=\"img\""))
        #expect(svg.contains("<title id=\"map-x-title\">Karte der Stationen: Klima &lt;Test&gt;</title>"))
        #expect(svg.contains("<desc id=\"map-x-desc\">3 Stationen"))
        let circles = svg.matches(of: /<circle cx="([0-9.]+)" cy="([0-9.]+)"/)
        #expect(circles.count == 3)
        for circle in circles {
            let x = try #require(Double(circle.1)), y = try #require(Double(circle.2))
            #expect(x > 0 && x < 320 && y > 0 && y < 200)
        }
        #expect(svg.contains("<title>Stadtpark &amp; Aasee (musterstadt-klima:MS-02)</title>"))
    }

    @Test func aSingleStationSitsInTheMiddle() throws {
        let svg = try #require(StationMap.svg(stations: [StationPoint(key: "a", longitude: 7.6, latitude: 51.9)], id: "m", title: "t"))
        #expect(svg.contains("<circle cx=\"160\" cy=\"100\""))
        #expect(StationMap.svg(stations: [], id: "m", title: "t") == nil)
    }
}

@Suite struct PublishingCatalogPageTests {
    typealias S = PublishingSamples

    static func page(_ language: CatalogPage.Language = .de) -> String {
        CatalogPage.render(catalog: S.catalog, baseURL: S.baseURL + "/", datasets: [
            (S.klima, S.klimaFacts, S.stations), (S.energie, S.energieFacts, []),
        ], language: language)
    }

    @Test func germanPageHasLandmarksTitlesAndLabelledDownloads() {
        let html = Self.page()
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"de\">"))
        for landmark in ["<header>", "<nav aria-label=", "<main id=\"main\">", "<footer>", "<a class=\"skip\" href=\"#main\">"] {
            #expect(html.contains(landmark), "\(landmark)")
        }
        #expect(html.contains("<h1>Datenwerk Musterstadt – Offene Daten</h1>"))
        #expect(html.contains("<h2 id=\"musterstadt-klima-title\">Klima &lt;Musterstadt&gt; &amp; &quot;Umland&quot; – Stundenwerte</h2>"))
        #expect(html.contains("<p class=\"alt\" lang=\"en\">Climate Musterstadt – hourly values</p>"))
        #expect(html.contains("<h2 id=\"musterstadt-energie-title\">Stadtwerke Musterstadt – Energiemessstellen</h2>"))
        #expect(html.contains("<a href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/observations.csv\" type=\"text/csv\">CSV herunterladen<span class=\"vh\">"))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/observations.geojson\""))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/observations.ndjson\""))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/datapackage.json\""))
        #expect(html.contains("href=\"http://127.0.0.1:8080/datasets/musterstadt-klima/dcat.ttl\""))
        #expect(html.contains("<a rel=\"license\" href=\"https://www.govdata.de/dl-de/by-2-0\" lang=\"de\">Datenlizenz Deutschland – Namensnennung – Version 2.0</a>"))
        #expect(html.contains("<dd>stündlich</dd>"))
        #expect(html.contains("<time datetime=\"2024-10-26T22:00:00Z\">26.10.2024, 22:00</time> bis <time datetime=\"2024-10-26T23:00:00Z\">26.10.2024, 23:00</time> UTC"))
        #expect(html.contains("<dt>Stationen</dt><dd>3</dd>"))
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\""))
        #expect(html.contains("noch keine Daten"))
        // Nothing loaded from elsewhere, no script.
        #expect(!html.contains("<script"))
        #expect(!html.contains(" src="))
        #expect(!html.contains("<link rel=\"stylesheet\""))
    }

    @Test func englishVariantUsesEnglishTextWithGermanFallbackMarked() {
        let html = Self.page(.en)
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        #expect(html.contains("<h2 id=\"musterstadt-klima-title\">Climate Musterstadt – hourly values</h2>"))
        #expect(html.contains("<h2 id=\"musterstadt-energie-title\" lang=\"de\">Stadtwerke Musterstadt – Energiemessstellen</h2>"))
        #expect(html.contains(">Download CSV<span class=\"vh\">"))
        #expect(html.contains("<dd>hourly</dd>"))
        #expect(html.contains("href=\"http://127.0.0.1:8080/\" hreflang=\"de\""))
    }

    @Test func numbersUseGermanGrouping() {
        let t = CatalogPage.Texts(.de)
        #expect(t.integer(1_234_567) == "1.234.567")
        #expect(CatalogPage.Texts(.en).integer(1_234_567) == "1,234,567")
        #expect(t.coordinate(-7.5) == "-7,5000")
    }
}

@Suite struct PublishingDatasetSpecTests {
    static func pipeline(_ dataset: String, tenant: String = "05515000") -> String {
        """
        version: 1
        name: klima
        tenant: "\(tenant)"
        \(dataset)
        source:
          kind: file
          path: a.csv
          format: { kind: csv }
        observations:
          station: { id: id }
          time: { field: ts, format: iso8601 }
          values: [{ field: t, property: air_temperature }]
        """
    }

    @Test func resolvesCodesToIRIsAndDefaultsToTheTenant() throws {
        let spec = try PipelineSpec.parse(yaml: Self.pipeline("""
            dataset:
              title: Klima
              description: Stundenwerte
              keywords: [Klima]
              keywords_en: [climate]
              theme: envi
              update_frequency: hourly
              publisher: Deutscher Wetterdienst
            """), file: "p.yaml")
        let metadata = try #require(spec.datasetMetadata)
        #expect(metadata.id == "klima")
        #expect(metadata.theme?.iri == "http://publications.europa.eu/resource/authority/data-theme/ENVI")
        #expect(metadata.updateFrequency?.iri == "http://publications.europa.eu/resource/authority/frequency/HOURLY")
        #expect(metadata.licence.iri == "http://dcat-ap.de/def/licenses/dl-by-de/2.0")
        #expect(metadata.spatial.ags == "05515000")
        #expect(metadata.publisher == Agent(name: "Deutscher Wetterdienst"))
        #expect(metadata.keywordsEN == ["climate"])
        #expect(metadata.access == .open)
    }

    @Test func reportsEveryProblemWithLocationAndSuggestion() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: Self.pipeline("""
                dataset:
                  title: Klima
                  descripton: x
                  theme: TRANS
                  license: cc-by-4
                  contributor_id: openNWR
                  update_frequency: DAYLY
                  spatial: { ags: "123" }
                  contact: { name: Team }
                """), file: "p.yaml")
        }
        let lines = error.diagnostics.map(\.description)
        #expect(lines.contains("p.yaml:5:3: error: missing required key 'description' in 'dataset'"))
        #expect(lines.contains("p.yaml:6:3: error: unknown key 'descripton' in 'dataset'; did you mean 'description'?"))
        #expect(lines.contains { $0.hasPrefix("p.yaml:7:10: error: 'TRANS' is not an EU data theme; did you mean 'TRAN'?") })
        #expect(lines.contains { $0.hasPrefix("p.yaml:8:12: error: 'cc-by-4' is not a dcat-ap.de licence; did you mean") })
        #expect(lines.contains { $0.hasPrefix("p.yaml:9:19: error: 'openNWR' is not a GovData contributor ID; did you mean 'openNRW'?") })
        #expect(lines.contains { $0.hasPrefix("p.yaml:10:21: error: 'DAYLY' is not an EU frequency code; did you mean 'DAILY'?") })
        #expect(lines.contains { $0.hasPrefix("p.yaml:11:19: error: ags '123' must be an 8-digit") })
        #expect(lines.contains { $0.hasPrefix("p.yaml:12:12: error: a contact needs 'email' or 'url'") })
    }

    @Test func repositoryCatalogLoads() throws {
        let catalog = try CatalogSpec.load(file: Paths.root + "/catalog.yaml")
        #expect(catalog.title == "Datenwerk Musterstadt – Offene Daten")
        #expect(catalog.contributorID == "openNRW")
        #expect(catalog.languages == ["de", "en"])
        #expect(catalog.publisher.type == "LocalAuthority")
        #expect(catalog.issued == "2024-01-15")
    }

    @Test func catalogProblemsAreLocated() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try CatalogSpec.parse(yaml: """
                version: 1
                title: X
                publisher: { name: Y, url: "nicht-url" }
                contributor_id: govdata
                issued: 15.01.2024
                languages: [de, xx]
                """, file: "catalog.yaml")
        }
        let lines = error.diagnostics.map(\.description)
        #expect(lines.contains("catalog.yaml:1:1: error: missing required key 'description' in 'catalog'"))
        #expect(lines.contains { $0.hasPrefix("catalog.yaml:3:28: error: 'nicht-url' is not an http(s) URL") })
        #expect(lines.contains { $0.hasPrefix("catalog.yaml:5:9: error: issued must be a date YYYY-MM-DD") })
        #expect(lines.contains { $0.contains("'xx' is not a known language code") })
        // Contributor IDs are matched without regard to case and written in the list's spelling.
        #expect(!lines.contains { $0.contains("contributor") })
    }
}
