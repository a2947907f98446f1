import DatenwerkCore
@testable import DatenwerkPublishing
import Foundation
import Testing
import DatenwerkTesting

/// The download path: numbers written without `description` where they have few digits, and rows put together
/// from a station's and a property's parts encoded once, with the last times kept as text.
@Suite struct ObservationEncoderPartsTests {
    typealias S = PublishingSamples

    /// The text `description` gives, written the old way (the reference for the short-decimal path).
    static func reference(_ value: Double) -> String {
        if value.rounded(.towardZero) == value, value.magnitude < 1e16 { return String(Int64(value)) }
        return value.description
    }

    @Test(arguments: [
        0.1, 0.2, 0.3, 17.4, -17.4, 0.0001, 0.00012, 1.0e-4 * 1.5, 9.999e-5, 0.1 + 0.2, 1012.3, 99.95, 1e-4, 5e-5, 123_456_789_012_345.6,
        999_999_999_999_999.9, 1e15 - 0.5, 1e15 + 0.5, 100.25, 0.015625, 2.5e-3, -0.001, 3.141592653589793, 2.718281828459045, 1 / 3.0,
        Double.pi * 1e10, 0.07, 0.57, 1.005, 8.675309, 4.35, 0.29, 1.1, 2.675, 1e-4 - 1e-20, 1e-4 + 1e-19,
    ])
    func shortDecimalsReadLikeDescription(value: Double) {
        #expect(ByteWriting.format(value) == Self.reference(value))
    }

    @Test func valuesWithFewDecimalsReadLikeDescription() {
        var generator = SystemRandomNumberGenerator()
        for decimals in 1...12 {
            let scale = pow(10.0, Double(decimals))
            for _ in 0..<3000 {
                let digits = Double(Int64.random(in: -10_000_000_000_000...10_000_000_000_000, using: &generator) / Int64.random(in: 1...1_000_000, using: &generator))
                let value = digits / scale
                #expect(ByteWriting.format(value) == Self.reference(value), "\(value)")
            }
        }
        for _ in 0..<20000 {
            let value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
            guard value.isFinite else { continue }
            #expect(ByteWriting.format(value) == Self.reference(value), "\(value)")
        }
        for _ in 0..<20000 {
            let value = Double.random(in: -2000...2000, using: &generator)
            #expect(ByteWriting.format(value) == Self.reference(value), "\(value)")
            let rounded = (value * 10).rounded() / 10
            #expect(ByteWriting.format(rounded) == Self.reference(rounded), "\(rounded)")
        }
    }

    /// One encoder over many rows (times kept from row to row, parts reused) writes what one fresh encoder per
    /// row writes, in every format.
    @Test(arguments: ObservationFormat.allCases)
    func partsWrittenOnceGiveTheSameRowsAsFreshEncoders(format: ObservationFormat) {
        let t = Int64(946_684_800_000_000)
        var rows: [ObservationRow] = []
        for (i, base) in S.rows.enumerated() {
            for step in 0..<4 {
                var row = base
                row.startMicros = [t, t, t - 1, -t - 500][step] + Int64(i)
                row.endMicros = step % 2 == 0 ? nil : row.startMicros + [1, 600_000_000, 0, 1][step]
                row.quality = step == 2 ? "Prüfung ausstehend, \"vorläufig\"" : row.quality
                row.value = [1.5, -0.25, 1e-9, .nan][step] * Double(i + 1)
                rows.append(row)
            }
        }
        var encoder = ObservationEncoder(format: format)
        var out: [UInt8] = []
        for row in rows {
            let station = encoder.station(key: row.stationKey, name: row.stationName, longitude: row.longitude, latitude: row.latitude)
            let property = encoder.property(key: row.property, unit: row.unit)
            encoder.write(station: station, property: property, startMicros: row.startMicros, endMicros: row.endMicros, value: row.value,
                          quality: row.quality, into: &out)
        }
        var expected: [UInt8] = []
        for (i, row) in rows.enumerated() {
            var fresh = ObservationEncoder(format: format)
            if format == .geojson, i == 0 {
                ObservationEncoder.appendGeoJSONFeature(row, first: true, to: &expected)
            } else if format == .geojson {
                ObservationEncoder.appendGeoJSONFeature(row, first: false, to: &expected)
            } else {
                fresh.write(row, into: &expected)
            }
        }
        #expect(String(decoding: out, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(encoder.rowsWritten == rows.count)
    }

    @Test func csvRowFromPartsSpelledOut() {
        var encoder = ObservationEncoder(format: .csv)
        let station = encoder.station(key: "bench:S-01", name: "Straße \"Süd\", 東京 🌡", longitude: 7.5, latitude: 51.25)
        let unplaced = encoder.station(key: "=x", name: nil, longitude: nil, latitude: nil)
        let property = encoder.property(key: "air_temperature", unit: "Cel")
        var out: [UInt8] = []
        encoder.write(station: station, property: property, startMicros: -1, endMicros: 946_684_800_500_000, value: -0.25, quality: nil, into: &out)
        encoder.write(station: unplaced, property: property, startMicros: -1, endMicros: nil, value: .nan, quality: "ok", into: &out)
        #expect(String(decoding: out, as: UTF8.self) == """
            bench:S-01,"Straße ""Süd"", 東京 🌡",air_temperature,Cel,1969-12-31T23:59:59.999999Z,2000-01-01T00:00:00.500Z,-0.25,,7.5,51.25
            "'=x",,air_temperature,Cel,1969-12-31T23:59:59.999999Z,,,ok,,

            """)
    }
}
