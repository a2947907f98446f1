import DatenwerkCore
import Foundation

/// Coordinates that cannot be transformed, or a CRS that is not supported.
package struct CoordinateError: Error, Sendable, Hashable, CustomStringConvertible {
    package var epsg: Int
    package var reason: String

    package init(epsg: Int, reason: String) {
        self.epsg = epsg
        self.reason = reason
    }

    package var description: String { "EPSG:\(epsg): \(reason)" }
}

/// Transforms the projected and geographic CRSs German sources use into WGS84 (EPSG:4326).
///
/// - 4326 WGS84 and 4258 ETRS89 (taken as WGS84; they differ by well under a metre): longitude, latitude.
/// - 25832 / 25833 ETRS89 / UTM zone 32N / 33N on GRS80: transverse Mercator with
///   Krüger's series to sixth order in n (Karney 2011), accurate to far below a millimetre;
///   4647 / 5650 are the same with the zone number before the easting (`32405600`).
/// - 31466 / 31467 / 31468 DHDN / Gauss-Krüger zones 2 / 3 / 4 on the Bessel ellipsoid, then
///   the 7-parameter Helmert transformation DHDN → WGS84 (EPSG:1777 "DHDN to WGS 84 (2)",
///   PROJ `+towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7`, position-vector rotations,
///   small-angle rotation matrix as PROJ applies it). Its stated accuracy is about 3 m.
package enum CoordinateTransform {
    package static let supportedEPSG = [4326, 4258, 25832, 25833, 4647, 5650, 31466, 31467, 31468]

    /// WGS84 longitude/latitude of `x`/`y` (easting/northing, or longitude/latitude) in `epsg`.
    package static func toWGS84(x: Double, y: Double, epsg: Int) throws(CoordinateError) -> GeoPoint {
        guard x.isFinite, y.isFinite else { throw CoordinateError(epsg: epsg, reason: "coordinates must be finite numbers, got \(x), \(y)") }
        switch epsg {
        case 4326, 4258:
            try checkGeographic(longitude: x, latitude: y, epsg: epsg)
            return GeoPoint(longitude: x, latitude: y)
        case 25832, 25833, 4647, 5650:
            // 4647 and 5650 are the same zones with the zone number written before the easting.
            let zone = epsg == 4647 ? 32 : epsg == 5650 ? 33 : epsg - 25800
            let prefix = epsg == 4647 || epsg == 5650 ? Double(zone) * 1_000_000 : 0
            let projection = TransverseMercator.utm(zone: zone)
            try checkProjected(x: x - prefix, y: y, projection: projection, epsg: epsg)
            let (longitude, latitude) = projection.inverse(x: x - prefix, y: y)
            return GeoPoint(longitude: longitude, latitude: latitude)
        case 31466, 31467, 31468:
            let zone = epsg - 31464
            let projection = TransverseMercator.gaussKrueger(zone: zone)
            try checkProjected(x: x, y: y, projection: projection, epsg: epsg)
            let (longitude, latitude) = projection.inverse(x: x, y: y)
            let geocentric = Ellipsoid.bessel.geocentric(longitude: longitude, latitude: latitude)
            let shifted = Helmert.dhdnToWGS84.apply(geocentric)
            let (lon, lat) = Ellipsoid.wgs84.geographic(shifted)
            return GeoPoint(longitude: lon, latitude: lat)
        default:
            throw unsupported(epsg)
        }
    }

    /// Easting/northing in `epsg` (25832, 25833, 4647, 5650; 4326 and 4258 give longitude/latitude back).
    package static func fromWGS84(_ point: GeoPoint, epsg: Int) throws(CoordinateError) -> (x: Double, y: Double) {
        guard point.longitude.isFinite, point.latitude.isFinite else {
            throw CoordinateError(epsg: epsg, reason: "coordinates must be finite numbers")
        }
        try checkGeographic(longitude: point.longitude, latitude: point.latitude, epsg: 4326)
        switch epsg {
        case 4326, 4258:
            return (point.longitude, point.latitude)
        case 25832, 25833:
            return TransverseMercator.utm(zone: epsg - 25800).forward(longitude: point.longitude, latitude: point.latitude)
        case 4647, 5650:
            let zone = epsg == 4647 ? 32 : 33
            let (x, y) = TransverseMercator.utm(zone: zone).forward(longitude: point.longitude, latitude: point.latitude)
            return (x + Double(zone) * 1_000_000, y)
        case 31466, 31467, 31468:
            throw CoordinateError(epsg: epsg, reason: "transforming into DHDN / Gauss-Krüger is not supported; use EPSG:25832 or 25833")
        default:
            throw unsupported(epsg)
        }
    }

    private static func unsupported(_ epsg: Int) -> CoordinateError {
        CoordinateError(
            epsg: epsg,
            reason: "unsupported coordinate reference system; supported: "
                + supportedEPSG.map { "EPSG:\($0)" }.joined(separator: ", "))
    }

    private static func checkGeographic(longitude: Double, latitude: Double, epsg: Int) throws(CoordinateError) {
        if !(-90...90).contains(latitude) {
            var reason = "latitude \(latitude) is outside -90…90"
            if (-90...90).contains(longitude) && (-180...180).contains(latitude) {
                reason += "; x is the longitude and y the latitude — are they swapped?"
            }
            throw CoordinateError(epsg: epsg, reason: reason)
        }
        if !(-180...180).contains(longitude) {
            throw CoordinateError(epsg: epsg, reason: "longitude \(longitude) is outside -180…180")
        }
    }

    /// Rejects eastings that cannot belong to the zone, most often swapped axes or the wrong zone.
    private static func checkProjected(x: Double, y: Double, projection: TransverseMercator, epsg: Int) throws(CoordinateError) {
        func inZone(_ x: Double) -> Bool {
            if projection.isGaussKrueger {
                // Gauss-Krüger eastings carry the zone number as their leading digit.
                return (projection.falseEasting - 500_000..<projection.falseEasting + 500_000).contains(x)
            }
            return abs(x - projection.falseEasting) <= 800_000
        }
        let northings = 0.0...9_400_000.0
        if inZone(x), northings.contains(y) { return }
        var reason = "x=\(format(x)) y=\(format(y)) is not a position in \(projection.name)"
        if inZone(y), northings.contains(x) {
            reason += "; x looks like a northing — are x and y swapped?"
        } else if projection.isGaussKrueger, (2_000_000..<5_000_000).contains(x) {
            let zone = Int(x / 1_000_000)
            reason += "; its leading digit says Gauss-Krüger zone \(zone) (EPSG:\(31464 + zone))"
        } else if !projection.isGaussKrueger, (31_000_000..<34_000_000).contains(x) {
            let zone = Int(x / 1_000_000)
            reason += "; the easting carries the zone number \(zone) as a prefix — use EPSG:\(zone == 32 ? 4647 : 5650) or remove it"
        }
        throw CoordinateError(epsg: epsg, reason: reason)
    }

    private static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

// MARK: - Ellipsoids

struct Ellipsoid: Sendable {
    let semiMajorAxis: Double
    let flattening: Double

    static let grs80 = Ellipsoid(semiMajorAxis: 6_378_137, flattening: 1 / 298.257222101)
    static let wgs84 = Ellipsoid(semiMajorAxis: 6_378_137, flattening: 1 / 298.257223563)
    static let bessel = Ellipsoid(semiMajorAxis: 6_377_397.155, flattening: 1 / 299.1528128)

    /// First eccentricity squared.
    var e2: Double { flattening * (2 - flattening) }

    /// Earth-centred cartesian coordinates of a point at ellipsoidal height 0.
    func geocentric(longitude: Double, latitude: Double) -> SIMD3<Double> {
        let phi = latitude * .pi / 180, lambda = longitude * .pi / 180
        let sinPhi = sin(phi), cosPhi = cos(phi)
        let n = semiMajorAxis / (1 - e2 * sinPhi * sinPhi).squareRoot()
        return SIMD3(n * cosPhi * cos(lambda), n * cosPhi * sin(lambda), n * (1 - e2) * sinPhi)
    }

    /// Longitude and latitude in degrees of earth-centred coordinates (the height is dropped).
    func geographic(_ p: SIMD3<Double>) -> (longitude: Double, latitude: Double) {
        let horizontal = (p.x * p.x + p.y * p.y).squareRoot()
        let lambda = atan2(p.y, p.x)
        var phi = atan2(p.z, horizontal * (1 - e2))
        for _ in 0..<10 {
            let sinPhi = sin(phi)
            let n = semiMajorAxis / (1 - e2 * sinPhi * sinPhi).squareRoot()
            let h = horizontal / cos(phi) - n
            let next = atan2(p.z, horizontal * (1 - e2 * n / (n + h)))
            if abs(next - phi) < 1e-15 {
                phi = next
                break
            }
            phi = next
        }
        return (lambda * 180 / .pi, phi * 180 / .pi)
    }
}

// MARK: - Helmert

/// A 7-parameter similarity transformation between earth-centred frames, position-vector convention.
struct Helmert: Sendable {
    let translation: SIMD3<Double>      // metres
    let rotation: SIMD3<Double>         // radians
    let scale: Double                   // 1 + ppm·10⁻⁶

    init(tx: Double, ty: Double, tz: Double, rxSeconds: Double, rySeconds: Double, rzSeconds: Double, ppm: Double) {
        let toRadians = Double.pi / (180 * 3600)
        translation = SIMD3(tx, ty, tz)
        rotation = SIMD3(rxSeconds, rySeconds, rzSeconds) * toRadians
        scale = 1 + ppm * 1e-6
    }

    /// DHDN → WGS84 as in PROJ's `+towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7` (EPSG:1777).
    static let dhdnToWGS84 = Helmert(tx: 598.1, ty: 73.7, tz: 418.2, rxSeconds: 0.202, rySeconds: 0.045, rzSeconds: -2.455, ppm: 6.7)

    func apply(_ p: SIMD3<Double>) -> SIMD3<Double> {
        let r = rotation
        // Position vector: X' = T + s·R·X with R = [[1, -rz, ry], [rz, 1, -rx], [-ry, rx, 1]].
        let rotated = SIMD3(
            p.x - r.z * p.y + r.y * p.z,
            r.z * p.x + p.y - r.x * p.z,
            -r.y * p.x + r.x * p.y + p.z)
        return translation + scale * rotated
    }
}

// MARK: - Transverse Mercator

/// Transverse Mercator after Krüger, with the series in n = f / (2 − f) to sixth order (Karney 2011).
struct TransverseMercator: Sendable {
    let name: String
    let ellipsoid: Ellipsoid
    let centralMeridian: Double         // degrees
    let scaleFactor: Double
    let falseEasting: Double
    let isGaussKrueger: Bool

    private let rectifyingRadius: Double    // A
    private let e: Double
    private let alpha: [Double]             // forward coefficients α1…α6
    private let beta: [Double]              // inverse coefficients β1…β6

    init(name: String, ellipsoid: Ellipsoid, centralMeridian: Double, scaleFactor: Double, falseEasting: Double, isGaussKrueger: Bool) {
        self.name = name
        self.ellipsoid = ellipsoid
        self.centralMeridian = centralMeridian
        self.scaleFactor = scaleFactor
        self.falseEasting = falseEasting
        self.isGaussKrueger = isGaussKrueger
        let f = ellipsoid.flattening
        let n = f / (2 - f)
        let n2 = n * n, n3 = n2 * n, n4 = n3 * n, n5 = n4 * n, n6 = n5 * n
        rectifyingRadius = ellipsoid.semiMajorAxis / (1 + n) * (1 + n2 / 4 + n4 / 64 + n6 / 256)
        e = ellipsoid.e2.squareRoot()
        alpha = [
            n / 2 - 2 * n2 / 3 + 5 * n3 / 16 + 41 * n4 / 180 - 127 * n5 / 288 + 7891 * n6 / 37800,
            13 * n2 / 48 - 3 * n3 / 5 + 557 * n4 / 1440 + 281 * n5 / 630 - 1_983_433 * n6 / 1_935_360,
            61 * n3 / 240 - 103 * n4 / 140 + 15061 * n5 / 26880 + 167_603 * n6 / 181_440,
            49561 * n4 / 161_280 - 179 * n5 / 168 + 6_601_661 * n6 / 7_257_600,
            34729 * n5 / 80640 - 3_418_889 * n6 / 1_995_840,
            212_378_941 * n6 / 319_334_400,
        ]
        beta = [
            n / 2 - 2 * n2 / 3 + 37 * n3 / 96 - n4 / 360 - 81 * n5 / 512 + 96199 * n6 / 604_800,
            n2 / 48 + n3 / 15 - 437 * n4 / 1440 + 46 * n5 / 105 - 1_118_711 * n6 / 3_870_720,
            17 * n3 / 480 - 37 * n4 / 840 - 209 * n5 / 4480 + 5569 * n6 / 90720,
            4397 * n4 / 161_280 - 11 * n5 / 504 - 830_251 * n6 / 7_257_600,
            4583 * n5 / 161_280 - 108_847 * n6 / 3_991_680,
            20_648_693 * n6 / 638_668_800,
        ]
    }

    static func utm(zone: Int) -> TransverseMercator {
        TransverseMercator(
            name: "UTM zone \(zone)N", ellipsoid: .grs80, centralMeridian: Double(6 * zone - 183),
            scaleFactor: 0.9996, falseEasting: 500_000, isGaussKrueger: false)
    }

    static func gaussKrueger(zone: Int) -> TransverseMercator {
        TransverseMercator(
            name: "Gauss-Krüger zone \(zone)", ellipsoid: .bessel, centralMeridian: Double(3 * zone),
            scaleFactor: 1, falseEasting: Double(zone) * 1_000_000 + 500_000, isGaussKrueger: true)
    }

    /// Conformal latitude as tan χ from tan φ.
    private func conformalTangent(_ tau: Double) -> Double {
        let sigma = sinh(e * atanh(e * tau / (1 + tau * tau).squareRoot()))
        return tau * (1 + sigma * sigma).squareRoot() - sigma * (1 + tau * tau).squareRoot()
    }

    func forward(longitude: Double, latitude: Double) -> (x: Double, y: Double) {
        let lambda = (longitude - centralMeridian) * .pi / 180
        let tauPrime = conformalTangent(tan(latitude * .pi / 180))
        let xiPrime = atan2(tauPrime, cos(lambda))
        let etaPrime = asinh(sin(lambda) / (tauPrime * tauPrime + cos(lambda) * cos(lambda)).squareRoot())
        var xi = xiPrime, eta = etaPrime
        for j in 1...6 {
            let k = 2 * Double(j)
            xi += alpha[j - 1] * sin(k * xiPrime) * cosh(k * etaPrime)
            eta += alpha[j - 1] * cos(k * xiPrime) * sinh(k * etaPrime)
        }
        let k0A = scaleFactor * rectifyingRadius
        return (falseEasting + k0A * eta, k0A * xi)
    }

    func inverse(x: Double, y: Double) -> (longitude: Double, latitude: Double) {
        let k0A = scaleFactor * rectifyingRadius
        let xi = y / k0A, eta = (x - falseEasting) / k0A
        var xiPrime = xi, etaPrime = eta
        for j in 1...6 {
            let k = 2 * Double(j)
            xiPrime -= beta[j - 1] * sin(k * xi) * cosh(k * eta)
            etaPrime -= beta[j - 1] * cos(k * xi) * sinh(k * eta)
        }
        let sinhEta = sinh(etaPrime), cosXi = cos(xiPrime)
        let tauPrime = sin(xiPrime) / (sinhEta * sinhEta + cosXi * cosXi).squareRoot()
        let lambda = atan2(sinhEta, cosXi)
        // Solve conformalTangent(τ) = τ′ for τ by Newton's method.
        let oneMinusE2 = 1 - ellipsoid.e2
        var tau = tauPrime / oneMinusE2
        for _ in 0..<8 {
            let current = conformalTangent(tau)
            let derivative = oneMinusE2 * (1 + current * current).squareRoot() * (1 + tau * tau).squareRoot()
                / (1 + oneMinusE2 * tau * tau)
            let step = (tauPrime - current) / derivative
            tau += step
            if abs(step) < 1e-14 * max(1, abs(tau)) { break }
        }
        return (centralMeridian + lambda * 180 / .pi, atan(tau) * 180 / .pi)
    }
}
