// Fuzz target: CronSchedule (cron expressions, `every <duration>`, next fire times) and the duration parser.
// Nothing traps; a parsed duration is within 1...maximumDurationSeconds; next(after:) is later than `after`.
import DatenwerkCore
@testable import DatenwerkTransforms

private let zones = ["Europe/Berlin", "UTC", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Nowhere/Else"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCron(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let text = String(decoding: input.document, as: UTF8.self)

    if let seconds = try? CronSchedule.durationSeconds(text) {
        Fuzz.require((1...CronSchedule.maximumDurationSeconds).contains(seconds), "duration \(seconds) s out of range for \(text.debugDescription)")
    }
    if let seconds = try? CronSchedule.durationSeconds(text, maximum: 60) {
        Fuzz.require((1...60).contains(seconds), "duration \(seconds) s over the maximum 60 for \(text.debugDescription)")
    }

    guard let schedule = try? CronSchedule(text, zone: zones[Int(input.options) % zones.count]) else { return 0 }
    var state = UInt64(input.seed) << 8 | UInt64(input.options)
    let starts: [Int64] = [
        1_714_557_600_000_000,            // 2024-05-01T10:00Z
        1_711_846_800_000_000,            // 2024-03-31T01:00Z, the spring change
        0, -1, .min, .max,
        CronSchedule.earliestMicroseconds, CronSchedule.endMicroseconds - 1,
        Int64(bitPattern: state &* 0x9E37_79B9_7F4A_7C15),
    ]
    for start in starts.prefix(input.seed % 2 == 0 ? 4 : starts.count) {
        var at = start
        for _ in 0..<3 {
            guard let next = schedule.next(after: at) else { break }
            Fuzz.require(next > at, "\(text.debugDescription): next(after: \(at)) = \(next) is not later")
            if case .every(let seconds) = schedule.kind {
                Fuzz.require(next - at <= seconds * 1_000_000, "\(text.debugDescription): next(after: \(at)) = \(next) is more than one step later")
            }
            at = next
        }
        state = state &* 6_364_136_223_846_793_005 &+ 1
    }
    return 0
}
