import DatenwerkCore
import Testing

@testable import DatenwerkTransforms
import DatenwerkTesting

@Suite struct UnitsTests {
    @Test(arguments: [
        ("°C", "Cel"), ("degC", "Cel"), ("Cel", "Cel"), ("C", "Cel"), ("CEL", "Cel"),
        ("°F", "[degF]"), ("degF", "[degF]"), ("[degF]", "[degF]"), ("F", "[degF]"), ("FAH", "[degF]"),
        ("K", "K"), ("KEL", "K"),
        ("km/h", "km/h"), ("kmh", "km/h"), ("km/hr", "km/h"), ("KMH", "km/h"), ("m/s", "m/s"), ("MTS", "m/s"),
        ("Wh", "W.h"), ("kWh", "kW.h"), ("MWh", "MW.h"), ("MW.h", "MW.h"), ("GWh", "GW.h"), ("kW.h", "kW.h"), ("GW.h", "GW.h"),
        ("W", "W"), ("kW", "kW"), ("MW", "MW"), ("GW", "GW"),
        ("mg/m3", "mg/m3"), ("mg/m³", "mg/m3"), ("µg/m³", "ug/m3"), ("μg/m3", "ug/m3"), ("ug/m3", "ug/m3"), ("GQ", "ug/m3"),
        ("Pa", "Pa"), ("hPa", "hPa"), ("kPa", "kPa"), ("mbar", "hPa"), ("A97", "hPa"),
        ("%", "%"), ("P1", "%"), ("1", "1"), ("count", "1"), ("Anzahl", "1"), ("C62", "1"),
        ("mm", "mm"), ("MMT", "mm"), ("s", "s"), ("min", "min"), ("h", "h"), ("J/cm2", "J/cm2"), ("J/cm²", "J/cm2"), ("deg", "deg"),
        (" km/h ", "km/h"), ("V", "V"),
    ])
    func canonicalSymbols(spelling: String, code: String) {
        #expect(Units.canonicalSymbol(spelling) == code)
    }

    @Test func unknownAndCaseSensitiveSpellings() {
        #expect(Units.canonicalSymbol("furlong") == nil)
        #expect(Units.canonicalSymbol("") == nil)
        // Prefix case matters: milliwatt is not megawatt.
        #expect(Units.canonicalSymbol("mW") == nil)
        #expect(Units.canonicalSymbol("ANZAHL") == "1")
    }

    @Test func everyVocabularyUnitIsKnown() {
        for property in Vocabulary.properties {
            #expect(Units.canonicalSymbol(property.unit) == property.unit, "\(property.key)")
        }
    }

    @Test func temperatures() throws {
        #expect(try Units.convert(212, from: "°F", to: "Cel") == 100)
        #expect(try Units.convert(32, from: "FAH", to: "°C") == 0)
        #expect(try Units.convert(-40, from: "[degF]", to: "Cel") == -40)
        #expect(abs(try Units.convert(98.6, from: "°F", to: "Cel") - 37) < 1e-12)
        #expect(abs(try Units.convert(273.15, from: "K", to: "Cel")) < 1e-12)
        #expect(abs(try Units.convert(300, from: "KEL", to: "Cel") - 26.85) < 1e-12)
        #expect(abs(try Units.convert(20, from: "Cel", to: "K") - 293.15) < 1e-12)
        #expect(try Units.convert(100, from: "Cel", to: "[degF]") == 212)
        #expect(abs(try Units.convert(0, from: "K", to: "°F") - -459.67) < 1e-9)
    }

    @Test func speedsEnergyPowerConcentrationPressureTime() throws {
        #expect(abs(try Units.convert(36, from: "km/h", to: "m/s") - 10) < 1e-12)
        #expect(abs(try Units.convert(10, from: "m/s", to: "kmh") - 36) < 1e-12)
        #expect(abs(try Units.convert(10, from: "kn", to: "km/h") - 18.52) < 1e-12)
        #expect(try Units.convert(1500, from: "kWh", to: "MW.h") == 1.5)
        #expect(try Units.convert(2, from: "GWh", to: "MWh") == 2000)
        #expect(try Units.convert(250, from: "Wh", to: "kW.h") == 0.25)
        #expect(try Units.convert(3, from: "MW", to: "kW") == 3000)
        #expect(try Units.convert(1, from: "GW", to: "W") == 1e9)
        #expect(try Units.convert(0.04, from: "mg/m3", to: "ug/m3") == 40)
        #expect(try Units.convert(40, from: "µg/m³", to: "mg/m3") == 0.04)
        #expect(try Units.convert(101_325, from: "Pa", to: "hPa") == 1013.25)
        #expect(try Units.convert(101.325, from: "kPa", to: "hPa") == 1013.25)
        #expect(try Units.convert(1013.25, from: "mbar", to: "hPa") == 1013.25)
        #expect(try Units.convert(1.5, from: "h", to: "min") == 90)
        #expect(try Units.convert(90, from: "s", to: "min") == 1.5)
        #expect(try Units.convert(1, from: "kWh/m2", to: "J/cm2") == 360)
        #expect(try Units.convert(12.5, from: "l/m²", to: "mm") == 12.5)
        #expect(try Units.convert(7, from: "C62", to: "count") == 7)
    }

    @Test func conversionIsResolvedOnce() throws {
        let conversion = try Units.conversion(from: "°F", to: "Cel")
        #expect(conversion.from == "[degF]")
        #expect(conversion.to == "Cel")
        #expect(conversion.apply(50) == 10)
        #expect(conversion.apply(68) == 20)
    }

    @Test func errorsNameBothUnits() {
        let dimensions = #expect(throws: UnitError.self) { try Units.convert(1, from: "km/h", to: "Cel") }
        #expect(dimensions?.description == "cannot convert 'km/h' to 'Cel': different dimensions (speed and temperature)")

        let unknown = #expect(throws: UnitError.self) { try Units.convert(1, from: "kmhh", to: "m/s") }
        #expect(unknown?.description == "cannot convert 'kmhh' to 'm/s': unknown unit 'kmhh'; did you mean 'km/h'?")

        let unknownTarget = #expect(throws: UnitError.self) { try Units.convert(1, from: "%", to: "furlong") }
        #expect(unknownTarget?.description.hasPrefix("cannot convert '%' to 'furlong': unknown unit 'furlong'") == true)

        // A count is not a percentage, and power is not energy.
        #expect(throws: UnitError.self) { try Units.convert(1, from: "1", to: "%") }
        #expect(throws: UnitError.self) { try Units.convert(1, from: "kW", to: "kWh") }
    }
}
