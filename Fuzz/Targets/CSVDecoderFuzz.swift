// Fuzz target: CSVDecoder. Any split of the input gives the same records, rejections and error as one chunk,
// and every record has one value per column.
import DatenwerkCore
@testable import DatenwerkFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var options = CSVOptions()
    let o = input.options
    options.delimiter = [UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "\t"), UInt8(ascii: "|")][Int(o & 3)]
    if o & 4 != 0 { options.quote = nil }
    options.trimFields = o & 8 != 0
    if o & 16 != 0 {
        options.header = false
        if o & 2 != 0 { options.columns = ["a", "b", "a", ""] }
    }
    switch (o >> 5) & 3 {
    case 1: options.encoding = .latin1
    case 2: options.encoding = .windows1252
    case 3: options.skipEmptyLines = false
    default: break
    }
    if o & 128 != 0 {
        options.maxRecordBytes = 40
        options.commentPrefixes = ["#", "Gesamt;"]
        options.skipRows = Int(input.seed % 3)
    }

    var oneShot = CSVDecoder(options: options, origin: "fuzz.csv")
    let whole = Fuzz.run(&oneShot, input.document, cuts: [])
    var split = CSVDecoder(options: options, origin: "fuzz.csv")
    Fuzz.same(whole, Fuzz.run(&split, input.document, cuts: input.cuts), "CSV split at \(input.cuts)")

    for case .record(let record) in whole.decoded {
        Fuzz.require(record.values.count == record.fields.count, "record with \(record.values.count) values for \(record.fields.count) columns")
    }
    return 0
}
