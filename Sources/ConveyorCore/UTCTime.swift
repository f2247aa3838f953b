/// Formats Unix milliseconds as UTC calendar time without Foundation's date formatters, which are slow
/// and not meant for per-row and per-log-line use.
public enum UTCTime {
    /// `YYYY-MM-DD<separator>HH:MM:SS.mmm<suffix>`: RFC 3339 with `"T"` and `"Z"`, PostgreSQL's timestamptz
    /// input with `" "` and `"+00"`.
    public static func format(millis: Int64, separator: String = "T", suffix: String = "Z") -> String {
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
