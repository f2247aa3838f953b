/// Formats Unix milliseconds as UTC calendar time without Foundation's date formatters, which are slow
/// and not meant for per-row and per-log-line use.
///
/// Hand-written down to the bytes: the Recorder and the task COPY format two to four timestamps per task
/// at the ceiling, and building them from padded substrings was 14 % of the coordinator's CPU there.
public enum UTCTime {
    /// `YYYY-MM-DD<separator>HH:MM:SS.mmm<suffix>`: RFC 3339 with `"T"` and `"Z"`, PostgreSQL's timestamptz
    /// input with `" "` and `"+00"`.
    public static func format(millis: Int64, separator: String = "T", suffix: String = "Z") -> String {
        guard let separatorByte = separator.utf8.first, separator.utf8.count == 1, let core = Core(millis: millis) else {
            return slowFormat(millis: millis, separator: separator, suffix: suffix)
        }
        var suffix = suffix
        return suffix.withUTF8 { suffixBytes in
            String(unsafeUninitializedCapacity: Core.length + suffixBytes.count) { buffer in
                core.write(separator: separatorByte, to: buffer)
                var index = Core.length
                for byte in suffixBytes {
                    buffer[index] = byte
                    index += 1
                }
                return index
            }
        }
    }

    /// Appends `format(millis:separator:suffix:)`'s bytes to `bytes`, with no intermediate string.
    public static func append(millis: Int64, separator: UInt8, suffix: StaticString, to bytes: inout [UInt8]) {
        guard let core = Core(millis: millis) else {
            let text = slowFormat(millis: millis, separator: String(decoding: [separator], as: UTF8.self), suffix: suffix.description)
            bytes.append(contentsOf: text.utf8)
            return
        }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: Core.length))
        bytes.withUnsafeMutableBufferPointer { buffer in
            core.write(separator: separator, to: UnsafeMutableBufferPointer(rebasing: buffer[start...]))
        }
        suffix.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// The calendar fields of a time whose year has four digits (the fast path's fixed width).
    private struct Core {
        static let length = 23  // YYYY-MM-DD?HH:MM:SS.mmm
        var year: Int64, month: Int64, day: Int64, millisOfDay: Int64

        init?(millis: Int64) {
            let days = UTCTime.floorDivide(millis, 86_400_000)
            (year, month, day) = UTCTime.civil(daysSinceEpoch: days)
            millisOfDay = millis - days * 86_400_000
            guard (0...9999).contains(year) else { return nil }
        }

        func write(separator: UInt8, to out: UnsafeMutableBufferPointer<UInt8>) {
            func digits(_ value: Int64, _ width: Int, at end: Int) {
                var value = value
                for index in stride(from: end - 1, through: end - width, by: -1) {
                    out[index] = UInt8(truncatingIfNeeded: 0x30 + value % 10)
                    value /= 10
                }
            }
            digits(year, 4, at: 4)
            out[4] = UInt8(ascii: "-")
            digits(month, 2, at: 7)
            out[7] = UInt8(ascii: "-")
            digits(day, 2, at: 10)
            out[10] = separator
            digits(millisOfDay / 3_600_000, 2, at: 13)
            out[13] = UInt8(ascii: ":")
            digits(millisOfDay / 60_000 % 60, 2, at: 16)
            out[16] = UInt8(ascii: ":")
            digits(millisOfDay / 1000 % 60, 2, at: 19)
            out[19] = UInt8(ascii: ".")
            digits(millisOfDay % 1000, 3, at: 23)
        }
    }

    /// Years outside 0…9999 (never a task's time, but the formatter must not lie about them).
    private static func slowFormat(millis: Int64, separator: String, suffix: String) -> String {
        let days = floorDivide(millis, 86_400_000)
        let millisOfDay = millis - days * 86_400_000
        let (year, month, day) = civil(daysSinceEpoch: days)
        var out = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + separator
        out += pad(millisOfDay / 3_600_000, 2) + ":" + pad(millisOfDay / 60_000 % 60, 2) + ":"
        out += pad(millisOfDay / 1000 % 60, 2) + "." + pad(millisOfDay % 1000, 3) + suffix
        return out
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    static func civil(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : (a - b + 1) / b
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
