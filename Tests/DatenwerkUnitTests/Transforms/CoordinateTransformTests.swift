import DatenwerkCore
import Foundation
import Testing

@testable import DatenwerkTransforms
import DatenwerkTesting

/// Reference values: PostGIS 3.3.2 with PROJ 9.1.1,
/// `ST_Transform(ST_SetSRID(ST_MakePoint(x, y), srid), 4326)`, printed to 10 decimals.
/// For DHDN (314xx) the values come from PROJ's Helmert pipeline
/// (`cs2cs +ellps=bessel +towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7`), see `dhdnDiffersFromPostGISGrid`.
@Suite struct CoordinateTransformTests {
    struct Reference: Sendable, CustomTestStringConvertible {
        let name: String
        let epsg: Int
        let x: Double
        let y: Double
        let longitude: Double
        let latitude: Double
        var testDescription: String { "\(name) EPSG:\(epsg)" }
    }

    static let utmPostGIS: [Reference] = [
        .init(name: "Münster", epsg: 25832, x: 405_600, y: 5_757_560, longitude: 7.6260907091, latitude: 51.9607121095),
        .init(name: "Freiburg", epsg: 25832, x: 413_625, y: 5_316_840, longitude: 7.8421021648, latitude: 47.9990205691),
        .init(name: "Jena", epsg: 25832, x: 681_955, y: 5_644_910, longitude: 11.5891994970, latitude: 50.9270916266),
        .init(name: "Kiel", epsg: 25832, x: 573_025, y: 6_020_075, longitude: 10.1227835359, latitude: 54.3233053772),
        .init(name: "München", epsg: 25832, x: 691_600, y: 5_334_780, longitude: 11.5754592733, latitude: 48.1374006362),
        .init(name: "Berlin", epsg: 25832, x: 798_813, y: 5_828_000, longitude: 13.4050029909, latitude: 52.5200007883),
        .init(name: "Görlitz (6° east of the central meridian)", epsg: 25832, x: 918_575, y: 5_683_880, longitude: 14.9872018529, latitude: 51.1528219042),
        .init(name: "Aachen", epsg: 25832, x: 294_410, y: 5_628_890, longitude: 6.0839098080, latitude: 50.7752785583),
        .init(name: "Sylt", epsg: 25832, x: 455_220, y: 6_095_015, longitude: 8.2999624350, latitude: 54.9999953914),
        .init(name: "Berlin", epsg: 25833, x: 391_780, y: 5_820_070, longitude: 13.4050116157, latitude: 52.5199807441),
        .init(name: "Görlitz", epsg: 25833, x: 499_105, y: 5_666_815, longitude: 14.9872031161, latitude: 51.1527808774),
        .init(name: "Rostock", epsg: 25833, x: 310_295, y: 5_997_695, longitude: 12.0991152000, latitude: 54.0924146202),
        .init(name: "Dresden", epsg: 25833, x: 411_495, y: 5_656_190, longitude: 13.7373085441, latitude: 51.0504172366),
    ]

    /// PROJ 9.1.1, Gauss-Krüger on Bessel then the position-vector Helmert of `+towgs84`.
    static let dhdnHelmert: [Reference] = [
        .init(name: "Münster", epsg: 31467, x: 3_405_635, y: 5_759_420, longitude: 7.6260938954, latitude: 51.9606820797),
        .init(name: "Freiburg", epsg: 31467, x: 3_413_665, y: 5_318_525, longitude: 7.8420800898, latitude: 47.9990054665),
        .init(name: "Kiel", epsg: 31467, x: 3_573_125, y: 6_022_045, longitude: 10.1227918875, latitude: 54.3233069794),
        .init(name: "Frankfurt", epsg: 31467, x: 3_477_335, y: 5_552_790, longitude: 8.6821026857, latitude: 50.1108932417),
        .init(name: "Hannover", epsg: 31467, x: 3_549_920, y: 5_804_985, longitude: 9.7319703025, latitude: 52.3759166350),
        .init(name: "Aachen", epsg: 31467, x: 3_294_405, y: 5_630_705, longitude: 6.0839590218, latitude: 50.7753166044),
        .init(name: "München", epsg: 31467, x: 3_691_755, y: 5_336_475, longitude: 11.5754825179, latitude: 48.1373895129),
        .init(name: "Berlin", epsg: 31467, x: 3_799_005, y: 5_829_895, longitude: 13.4050079047, latitude: 52.5199990377),
        .init(name: "Aachen", epsg: 31466, x: 2_505_960, y: 5_626_655, longitude: 6.0838970746, latitude: 50.7753197507),
        .init(name: "Münster", epsg: 31466, x: 2_611_815, y: 5_759_780, longitude: 7.6261343607, latitude: 51.9606830122),
        .init(name: "Berlin", epsg: 31468, x: 4_595_470, y: 5_821_690, longitude: 13.4049745122, latitude: 52.5199790326),
        .init(name: "München", epsg: 31468, x: 4_468_515, y: 5_333_350, longitude: 11.5755203709, latitude: 48.1373976647),
    ]

    /// PostGIS 3.3.2 / PROJ 9.1.1 for the same EPSG:31467 points. Its `spatial_ref_sys` row says
    /// `+datum=potsdam`, which PROJ 9 resolves to the BETA2007 NTv2 grid, not to the Helmert parameters.
    static let dhdnPostGISGrid: [Reference] = [
        .init(name: "Münster", epsg: 31467, x: 3_405_635, y: 5_759_420, longitude: 7.6260806799, latitude: 51.9606910591),
        .init(name: "Freiburg", epsg: 31467, x: 3_413_665, y: 5_318_525, longitude: 7.8420890485, latitude: 47.9989906862),
        .init(name: "Kiel", epsg: 31467, x: 3_573_125, y: 6_022_045, longitude: 10.1228168415, latitude: 54.3233086106),
        .init(name: "Frankfurt", epsg: 31467, x: 3_477_335, y: 5_552_790, longitude: 8.6820954419, latitude: 50.1108921557),
        .init(name: "Hannover", epsg: 31467, x: 3_549_920, y: 5_804_985, longitude: 9.7319695813, latitude: 52.3759190434),
        .init(name: "Aachen", epsg: 31467, x: 3_294_405, y: 5_630_705, longitude: 6.0839327783, latitude: 50.7753156541),
        .init(name: "München", epsg: 31467, x: 3_691_755, y: 5_336_475, longitude: 11.5754898745, latitude: 48.1373964860),
        .init(name: "Berlin", epsg: 31467, x: 3_799_005, y: 5_829_895, longitude: 13.4050061943, latitude: 52.5199980493),
    ]

    /// Ground distance in metres between two nearby points (local flat approximation).
    static func metres(_ a: GeoPoint, _ longitude: Double, _ latitude: Double) -> Double {
        let metresPerDegree = 111_320.0
        let dy = (a.latitude - latitude) * metresPerDegree
        let dx = (a.longitude - longitude) * metresPerDegree * cos(latitude * .pi / 180)
        return (dx * dx + dy * dy).squareRoot()
    }

    @Test(arguments: utmPostGIS)
    func utmAgreesWithPostGISToACentimetre(reference: Reference) throws {
        let point = try CoordinateTransform.toWGS84(x: reference.x, y: reference.y, epsg: reference.epsg)
        #expect(Self.metres(point, reference.longitude, reference.latitude) < 0.01)
    }

    @Test(arguments: dhdnHelmert)
    func gaussKruegerAgreesWithPROJHelmert(reference: Reference) throws {
        let point = try CoordinateTransform.toWGS84(x: reference.x, y: reference.y, epsg: reference.epsg)
        #expect(Self.metres(point, reference.longitude, reference.latitude) < 0.01)
    }

    @Test func dhdnDiffersFromPostGISGrid() throws {
        // The Helmert is a 3 m approximation of the BETA2007 grid PostGIS uses: close, but not a centimetre.
        var largest = 0.0
        for reference in Self.dhdnPostGISGrid {
            let point = try CoordinateTransform.toWGS84(x: reference.x, y: reference.y, epsg: reference.epsg)
            let difference = Self.metres(point, reference.longitude, reference.latitude)
            #expect(difference < 3, "\(reference.name)")
            largest = max(largest, difference)
        }
        #expect(largest > 0.5)
    }

    @Test func forwardAgreesWithPostGIS() throws {
        let cases: [(GeoPoint, Int, Double, Double)] = [
            (GeoPoint(longitude: 7.6261, latitude: 51.9607), 25832, 405_600.6129, 5_757_558.6412),
            (GeoPoint(longitude: 14.9872, latitude: 51.1528), 25832, 918_575.0693, 5_683_877.5564),
            (GeoPoint(longitude: 6.0839, latitude: 50.7753), 25832, 294_409.4027, 5_628_892.4110),
            (GeoPoint(longitude: 13.4050, latitude: 52.5200), 25833, 391_779.2593, 5_820_072.1591),
            (GeoPoint(longitude: 12.0991, latitude: 54.0924), 25833, 310_293.9395, 5_997_693.4148),
        ]
        for (point, epsg, x, y) in cases {
            let projected = try CoordinateTransform.fromWGS84(point, epsg: epsg)
            #expect(abs(projected.x - x) < 0.001, "\(point) EPSG:\(epsg)")
            #expect(abs(projected.y - y) < 0.001, "\(point) EPSG:\(epsg)")
        }
    }

    @Test(arguments: [25832, 25833])
    func roundTripsStayWithinAMillimetre(epsg: Int) throws {
        var latitude = 47.0
        while latitude <= 55.5 {
            var longitude = 5.5
            while longitude <= 15.5 {
                let point = GeoPoint(longitude: longitude, latitude: latitude)
                let projected = try CoordinateTransform.fromWGS84(point, epsg: epsg)
                let back = try CoordinateTransform.toWGS84(x: projected.x, y: projected.y, epsg: epsg)
                if Self.metres(back, longitude, latitude) > 0.001 { Issue.record("round trip of \(point) in EPSG:\(epsg) moved it") }
                longitude += 0.5
            }
            latitude += 0.5
        }
    }

    @Test func zoneNumberPrefixedEastings() throws {
        let prefixed = try CoordinateTransform.toWGS84(x: 32_405_600, y: 5_757_560, epsg: 4647)
        #expect(Self.metres(prefixed, 7.6260907091, 51.9607121095) < 0.01)
        let projected = try CoordinateTransform.fromWGS84(GeoPoint(longitude: 13.4050, latitude: 52.5200), epsg: 5650)
        #expect(abs(projected.x - 33_391_779.2593) < 0.001)
    }

    @Test func geographicPassThrough() throws {
        #expect(try CoordinateTransform.toWGS84(x: 7.6261, y: 51.9607, epsg: 4326) == GeoPoint(longitude: 7.6261, latitude: 51.9607))
        #expect(try CoordinateTransform.toWGS84(x: 13.405, y: 52.52, epsg: 4258) == GeoPoint(longitude: 13.405, latitude: 52.52))
        let swapped = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 51.9607, y: 97.6261, epsg: 4326) }
        #expect(swapped?.description == "EPSG:4326: latitude 97.6261 is outside -90…90; x is the longitude and y the latitude — are they swapped?")
        let swappedLikely = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 181, y: 0, epsg: 4326) }
        #expect(swappedLikely?.description == "EPSG:4326: longitude 181.0 is outside -180…180")
        #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: .nan, y: 50, epsg: 4326) }
    }

    @Test func errorsExplain() {
        let unknown = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 1, y: 2, epsg: 3857) }
        #expect(unknown?.description == "EPSG:3857: unsupported coordinate reference system; supported: EPSG:4326, EPSG:4258, EPSG:25832, EPSG:25833, EPSG:4647, EPSG:5650, EPSG:31466, EPSG:31467, EPSG:31468")
        #expect(throws: CoordinateError.self) { try CoordinateTransform.fromWGS84(GeoPoint(longitude: 7, latitude: 51), epsg: 3857) }

        let swapped = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 5_757_560, y: 405_600, epsg: 25832) }
        #expect(swapped?.description == "EPSG:25832: x=5757560 y=405600 is not a position in UTM zone 32N; x looks like a northing — are x and y swapped?")

        let wrongZone = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 2_611_815, y: 5_759_780, epsg: 31467) }
        #expect(wrongZone?.description == "EPSG:31467: x=2611815 y=5759780 is not a position in Gauss-Krüger zone 3; its leading digit says Gauss-Krüger zone 2 (EPSG:31466)")

        let prefixed = #expect(throws: CoordinateError.self) { try CoordinateTransform.toWGS84(x: 32_405_600, y: 5_757_560, epsg: 25832) }
        #expect(prefixed?.reason.hasSuffix("the easting carries the zone number 32 as a prefix — use EPSG:4647 or remove it") == true)
    }
}
