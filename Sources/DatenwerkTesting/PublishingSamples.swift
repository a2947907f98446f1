import DatenwerkCore
import DatenwerkPublishing
import Foundation

/// Two example datasets with awkward text (quotes, `<`, `&`, Umlaute, line breaks) and rows as the
/// server would read them, shared by the publishing tests.
package enum PublishingSamples {
    package static let baseURL = "http://127.0.0.1:8080"

    package static let catalog = CatalogMetadata(
        title: "Datenwerk Musterstadt – Offene Daten", titleEN: "Datenwerk Musterstadt – Open Data",
        description: "Messdaten der Stadt Musterstadt: Klima & Energie <offen>, \"frei\".",
        descriptionEN: "Measurements of the city of Musterstadt: climate & energy.",
        publisher: Agent(name: "Stadt Musterstadt", url: "https://www.musterstadt.example/", email: "opendata@musterstadt.example", type: "LocalAuthority"),
        languages: ["de", "en"], contributorID: "openNRW",
        contact: ContactPoint(name: "Open-Data-Team", email: "opendata@musterstadt.example", url: "https://www.musterstadt.example/open-data"),
        issued: "2024-01-15"
    )

    package static let klima = DatasetMetadata(
        id: "musterstadt-klima", pipeline: "musterstadt-klima",
        title: "Klima <Musterstadt> & \"Umland\" – Stundenwerte", titleEN: "Climate Musterstadt – hourly values",
        description: "Lufttemperatur, Feuchte und Wind an drei Stationen.\nZweite Zeile mit Ümläuten: äöüß, Backslash \\ und Tab\t.",
        descriptionEN: "Air temperature, humidity and wind at three stations.",
        keywords: ["Klima", "Wetter", "Lufttemperatur"], keywordsEN: ["climate", "weather"],
        theme: DataTheme.code("ENVI"), licence: .dlByDe20,
        publisher: Agent(name: "Stadt Musterstadt, Umweltamt", url: "https://www.musterstadt.example/umweltamt"),
        contact: ContactPoint(name: "Umweltamt", email: "umwelt@musterstadt.example"),
        spatial: SpatialCoverage(ags: "05515000"), updateFrequency: UpdateFrequency.code("HOURLY")
    )

    package static let energie = DatasetMetadata(
        id: "musterstadt-energie", pipeline: "musterstadt-energie",
        title: "Stadtwerke Musterstadt – Energiemessstellen",
        description: "Viertelstündliche Energie- und Leistungswerte.",
        keywords: ["Energie"], theme: DataTheme.code("ENER"), licence: Licence.named("cc-by/4.0")!,
        publisher: Agent(name: "Stadtwerke Musterstadt", url: "https://www.stadtwerke-musterstadt.example/", email: "netz@stadtwerke-musterstadt.example"),
        spatial: SpatialCoverage(bbox: BoundingBox(minLongitude: 7.5, minLatitude: 51.85, maxLongitude: 7.75, maxLatitude: 52.05)),
        updateFrequency: UpdateFrequency.code("15MIN")
    )

    /// 2024-10-26T22:00:00Z
    package static let t0: Int64 = 1_729_980_000_000_000

    package static let klimaFacts = DatasetFacts(
        observationCount: 4, stationCount: 3, firstMicros: t0, lastMicros: t0 + 3_600_000_000,
        lastModifiedMicros: t0 + 7_200_000_000, firstLoadedMicros: t0 + 600_000_000,
        bbox: BoundingBox(minLongitude: 7.5743, minLatitude: 51.9301, maxLongitude: 7.6752, maxLatitude: 51.9862),
        properties: [
            .init(key: "air_temperature", unit: "Cel", labelDE: "Lufttemperatur", labelEN: "Air temperature"),
            .init(key: "relative_humidity", unit: "%", labelDE: "Relative Luftfeuchte", labelEN: "Relative humidity"),
        ]
    )

    /// A dataset without data yet: no times, no extent from the data.
    package static let energieFacts = DatasetFacts()

    package static let stations = [
        StationPoint(key: "musterstadt-klima:MS-01", name: "Rathaus <Mitte>", longitude: 7.6261, latitude: 51.9607),
        StationPoint(key: "musterstadt-klima:MS-02", name: "Stadtpark & Aasee", longitude: 7.5743, latitude: 51.9301),
        StationPoint(key: "musterstadt-klima:MS-03", name: "Hafen", longitude: 7.6752, latitude: 51.9862),
    ]

    package static let rows: [ObservationRow] = [
        ObservationRow(stationKey: "musterstadt-klima:MS-01", stationName: "Rathaus \"Mitte\", Prinzipalmarkt", property: "air_temperature", unit: "Cel",
                       startMicros: t0, value: 12.3, quality: "good", longitude: 7.6261, latitude: 51.9607),
        ObservationRow(stationKey: "musterstadt-klima:MS-01", stationName: "Rathaus \"Mitte\", Prinzipalmarkt", property: "relative_humidity", unit: "%",
                       startMicros: t0, value: 87, longitude: 7.6261, latitude: 51.9607),
        ObservationRow(stationKey: "musterstadt-klima:MS-02", stationName: "Stadtpark\nAasee", property: "precipitation", unit: "mm",
                       startMicros: t0 + 3_600_000_000, endMicros: t0 + 7_200_000_000, value: 0.1 + 0.2, quality: "unchecked",
                       longitude: 7.5743, latitude: 51.9301),
        ObservationRow(stationKey: "musterstadt-klima:MS-03", stationName: nil, property: "air_temperature", unit: "Cel",
                       startMicros: t0 + 1_500_000, value: -0.5, longitude: 7.6752, latitude: 51.9862),
        ObservationRow(stationKey: "musterstadt-klima:MS-04", stationName: "Ohne Position", property: "air_temperature", unit: "Cel",
                       startMicros: -86_400_000_000 - 1, value: 1e-7),
    ]

    /// Writes `text` to `directory/name` and returns the path.
    package static func write(_ text: String, _ name: String, in directory: String) throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    package static func write(_ bytes: [UInt8], _ name: String, in directory: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The rows encoded as a whole file.
    package static func encode(_ rows: [ObservationRow], as format: ObservationFormat, bbox: BoundingBox? = nil) -> [UInt8] {
        var encoder = ObservationEncoder(format: format, bbox: bbox)
        var out: [UInt8] = []
        encoder.writeHeader(into: &out)
        encoder.write(rows, into: &out)
        encoder.writeFooter(into: &out)
        return out
    }
}
