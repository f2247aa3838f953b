import Foundation

/// A cron expression in a time zone: when a periodic schedule ticks.
///
/// Fields are matched against the local wall-clock time in `timeZone`, because that is what people mean by
/// "every day at 09:00". Ticks are whole seconds; with five fields the second is 0.
///
/// Daylight-saving transitions follow the rule that keeps a job from running twice or at a time that never
/// happened:
/// - a local time inside a spring-forward gap does not exist, so it does not tick (`30 2 * * *` skips the
///   day New York jumps from 02:00 to 03:00, rather than running at 03:00);
/// - a local time that occurs twice in a fall-back overlap ticks once, at its first occurrence. This holds for
///   frequent schedules too: `* * * * *` is silent during the second pass of the repeated hour, since each of
///   its minutes already ticked in the first pass.
///
/// Day-of-month and day-of-week combine as in Vixie cron: when both are restricted a day matches if either
/// does (`0 0 13 * FRI` is every 13th and every Friday); otherwise both must match. A day field counts as
/// unrestricted only when it is exactly `*` or `?`, so `*/2` is a restriction.
///
/// Searches skip whole months, days, hours and minutes that cannot match, in both directions, so asking for
/// the latest tick of an every-second schedule across a gap of years costs about as much as asking for the next.
/// `next(after:)` gives up after five years, which bounds the work for a rare schedule; a leap-day schedule
/// facing a century year (2100: no 29 February) is the one ordinary case that runs into it. Instants are
/// considered within the years 1–9999 only.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let expression: String
    /// The IANA identifier as given, e.g. "UTC" or "Europe/Berlin".
    public let timeZone: String
    private let fields: CronFields
    private let zone: TimeZone

    /// How far `next(after:)` looks: five calendar years of days, plus the two leap days they can hold.
    private static let searchHorizonSeconds: Int64 = (5 * 365 + 2) * 86_400
    /// 0001-01-01T00:00:00Z through 9999-12-31T23:59:59Z: keeps the arithmetic far from overflow and the
    /// time-zone database within the years it describes.
    private static let earliestSecond: Int64 = -62_135_596_800
    private static let latestSecond: Int64 = 253_402_300_799

    public init(_ expression: String, timeZone: String = "UTC") throws(CronError) {
        let fields = try CronFields(parsing: expression)
        guard let zone = TimeZone(identifier: timeZone) else {
            throw CronError(expression: expression, message: "unknown time zone '\(timeZone)'")
        }
        self.expression = expression
        self.timeZone = timeZone
        self.zone = zone
        self.fields = fields
    }

    public var description: String { "\(expression) in \(timeZone)" }

    /// The first tick strictly after `millis` (Unix ms, UTC). nil when there is none within 5 years (e.g. "0 0 30 2 *").
    public func next(after millis: Int64) -> Int64? {
        firstTick(after: millis, throughWall: nil)
    }

    /// The latest tick strictly after `floor` and at or before `millis`, or nil.
    public func latest(atOrBefore millis: Int64, after floor: Int64) -> Int64? {
        guard fields.canEverMatch else { return nil }
        let last = min(floorDivide(millis, 1000), Self.latestSecond)
        let first = max(floorDivide(floor, 1000) + 1, Self.earliestSecond)
        guard first <= last else { return nil }
        return latestTick(atOrBefore: last, notBefore: first).map { $0 * 1000 }
    }

    /// The ticks in (after, through], oldest first, at most `limit` of them. Unlike `next(after:)` this looks
    /// as far as `through`, so a window of decades still finds a leap day eight years after the previous one.
    public func ticks(after: Int64, through: Int64, limit: Int) -> [Int64] {
        // A day past `through`'s wall time covers any offset change before it; `tick <= through` trims the rest.
        let lastWall = local(min(max(floorDivide(through, 1000), Self.earliestSecond), Self.latestSecond)) + 86_400
        var result: [Int64] = []
        var cursor = after
        while result.count < limit, let tick = firstTick(after: cursor, throughWall: lastWall), tick <= through {
            result.append(tick)
            cursor = tick
        }
        return result
    }

    // MARK: - Searching in UTC

    /// The first tick strictly after `millis`, among wall times up to `throughWall` (five years on when nil).
    ///
    /// The search starts at the wall-clock time of the first eligible second: first occurrences only grow with
    /// wall time, so no earlier wall time can tick after it.
    private func firstTick(after millis: Int64, throughWall: Int64?) -> Int64? {
        guard fields.canEverMatch else { return nil }
        let start = max(floorDivide(millis, 1000) + 1, Self.earliestSecond)
        guard start <= Self.latestSecond else { return nil }
        var from = local(start)
        let limit = min(throughWall ?? from + Self.searchHorizonSeconds, local(Self.latestSecond))
        while let wall = fields.nextMatch(atOrAfter: from, through: limit) {
            switch resolve(wall) {
            case .unique(let instant) where instant >= start:
                return instant * 1000
            case .repeated(let first, _) where first >= start:
                return first * 1000
            case .repeated(_, let overlapEnd), .skipped(_, let overlapEnd):
                // `start` lies in the second pass of an overlap (its times ticked in the first), or the wall
                // time never happens: either way nothing before the end of that stretch can tick.
                from = max(wall + 1, overlapEnd)
            case .unique:
                from = wall + 1
            }
        }
        return nil
    }

    /// The last tick in [lowest, highest] (Unix seconds).
    private func latestTick(atOrBefore highest: Int64, notBefore lowest: Int64) -> Int64? {
        // During the second pass of an overlap every repeated wall time already ticked, up to the overlap's end.
        var from = local(highest)
        if case .repeated(let first, let overlapEnd) = resolve(from), first < highest {
            from = overlapEnd - 1
        }
        let floorWall = local(lowest)
        while let wall = fields.previousMatch(atOrBefore: from, notBefore: floorWall) {
            switch resolve(wall) {
            case .unique(let instant), .repeated(let instant, _):
                if instant <= highest { return instant >= lowest ? instant : nil }
                from = wall - 1
            case .skipped(let gapStart, _):
                from = min(wall, gapStart) - 1
            }
        }
        return nil
    }

    // MARK: - Wall clock ↔ UTC

    /// What a wall-clock time (local seconds, counted like Unix seconds) is in UTC.
    private enum Resolution {
        case unique(Int64)
        /// Occurs twice; `overlapEnd` is the first wall time after the repeated stretch.
        case repeated(first: Int64, overlapEnd: Int64)
        /// Does not occur; the gap covers wall times in [gapStart, gapEnd).
        case skipped(gapStart: Int64, gapEnd: Int64)
    }

    private func offset(at instant: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
    }

    private func local(_ instant: Int64) -> Int64 { instant + offset(at: instant) }

    /// Offsets change only at transitions, and any instant showing `wall` lies within a day of it, so the
    /// offsets a day either side (and at `wall` itself, for zones with two transitions close together)
    /// are the only ones that can apply.
    private func resolve(_ wall: Int64) -> Resolution {
        let candidates = Set([offset(at: wall - 86_400), offset(at: wall), offset(at: wall + 86_400)])
        let instants = candidates.compactMap { candidate in offset(at: wall - candidate) == candidate ? wall - candidate : nil }.sorted()
        guard let first = instants.first, let last = instants.last else {
            guard let lowest = candidates.min(), let highest = candidates.max(), lowest < highest else {
                return .skipped(gapStart: wall, gapEnd: wall + 1)
            }
            let transition = firstChange(after: wall - highest, through: wall - lowest)
            return .skipped(gapStart: transition + offset(at: transition - 1), gapEnd: transition + offset(at: transition))
        }
        guard first < last else { return .unique(first) }
        let transition = firstChange(after: first, through: last)
        return .repeated(first: first, overlapEnd: transition + (wall - first))
    }

    /// The first instant in (start, end] whose offset differs from `start`'s; `end` if none does.
    private func firstChange(after start: Int64, through end: Int64) -> Int64 {
        let before = offset(at: start)
        var low = start, high = end
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == before { low = middle } else { high = middle }
        }
        return high
    }
}

/// A cron expression that cannot be used. The message names the field, so a user can find the mistake.
public struct CronError: Error, Sendable, Hashable, CustomStringConvertible {
    public var expression: String
    /// What is wrong and where, e.g. "field 2 (hour): 24 is out of range 0–23".
    public var message: String

    public init(expression: String, message: String) {
        self.expression = expression
        self.message = message
    }

    public var description: String { "invalid cron expression '\(expression)': \(message)" }
}

// MARK: - Parsing

/// The allowed values of every field as bit sets (bit n set: n allowed). Masks make "next allowed value at or
/// after n" a single bit operation, which is what lets the searches skip instead of step.
private struct CronFields: Sendable, Hashable {
    var seconds: UInt64
    var minutes: UInt64
    var hours: UInt64
    var daysOfMonth: UInt64
    var months: UInt64
    /// 0–6, Sunday 0; a 7 in the expression is folded into 0.
    var daysOfWeek: UInt64
    /// Both day fields restricted: a day matches if either does.
    var eitherDay: Bool
    /// False for combinations no calendar has, such as 30 February; spares searching years for nothing.
    var canEverMatch: Bool

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    init(parsing expression: String) throws(CronError) {
        func fail(_ message: String) -> CronError { CronError(expression: expression, message: message) }

        var parts = expression.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let head = parts.first else { throw fail("the expression is empty") }
        if head.hasPrefix("@") {
            guard parts.count == 1, let expanded = Self.macros[head.lowercased()] else {
                let macro = parts.joined(separator: " ")
                throw fail("unknown macro '\(macro)' (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")
            }
            parts = expanded.split(separator: " ").map(String.init)
        }
        guard parts.count == 5 || parts.count == 6 else {
            throw fail(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second), found \(parts.count)")
        }
        let kinds: [FieldKind] = parts.count == 6 ? FieldKind.allCases : Array(FieldKind.allCases.dropFirst())
        var masks: [FieldKind: UInt64] = [:]
        var unrestricted: Set<FieldKind> = []
        for (index, (kind, part)) in zip(kinds, parts).enumerated() {
            do {
                masks[kind] = try kind.parse(part)
            } catch {
                throw fail("field \(index + 1) (\(kind.name)): \(error.message)")
            }
            if part == "*" || part == "?" { unrestricted.insert(kind) }
        }
        let (months, daysOfMonth, weekdays) = (masks[.month] ?? 0, masks[.dayOfMonth] ?? 0, masks[.dayOfWeek] ?? 0)
        let eitherDay = !unrestricted.contains(.dayOfMonth) && !unrestricted.contains(.dayOfWeek)
        // Every weekday occurs in every month, so only a day of the month that has to match alone can be impossible.
        let dayOfMonthAlone = !eitherDay && unrestricted.contains(.dayOfWeek)
        canEverMatch = !dayOfMonthAlone || (1...12).contains { month in
            months & (1 << UInt64(month)) != 0 && daysOfMonth & ((2 << UInt64(maximumDays(inMonth: month))) - 2) != 0
        }
        (seconds, minutes, hours) = (masks[.second] ?? 1, masks[.minute] ?? 0, masks[.hour] ?? 0)
        (self.daysOfMonth, self.months, self.eitherDay) = (daysOfMonth, months, eitherDay)
        daysOfWeek = (weekdays | (weekdays >> 7)) & 0x7F
    }

    func dayMatches(_ date: CivilDate) -> Bool {
        let byMonthDay = daysOfMonth & (1 << UInt64(date.day)) != 0
        let byWeekday = daysOfWeek & (1 << UInt64(date.weekday)) != 0
        return eitherDay ? byMonthDay || byWeekday : byMonthDay && byWeekday
    }

    /// The first matching wall time in [from, limit], moving to the start of the next month, day, hour or
    /// minute whenever the current one cannot match.
    func nextMatch(atOrAfter from: Int64, through limit: Int64) -> Int64? {
        var at = WallTime(from)
        let lastDay = floorDivide(limit, 86_400)
        while true {
            guard let month = nextBit(months, atOrAfter: at.date.month) else {
                at = WallTime(date: CivilDate(year: at.date.year + 1, month: 1, day: 1))
                continue
            }
            if month != at.date.month { at = WallTime(date: CivilDate(year: at.date.year, month: month, day: 1)) }
            if at.date.daysSinceEpoch > lastDay { return nil }
            guard dayMatches(at.date) else { at = WallTime(date: at.date.adding(days: 1)); continue }
            guard let hour = nextBit(hours, atOrAfter: at.hour) else { at = WallTime(date: at.date.adding(days: 1)); continue }
            if hour != at.hour { (at.hour, at.minute, at.second) = (hour, 0, 0) }
            guard let minute = nextBit(minutes, atOrAfter: at.minute) else {
                (at.hour, at.minute, at.second) = (at.hour + 1, 0, 0)
                continue
            }
            if minute != at.minute { (at.minute, at.second) = (minute, 0) }
            guard let second = nextBit(seconds, atOrAfter: at.second) else {
                (at.minute, at.second) = (at.minute + 1, 0)
                continue
            }
            at.second = second
            return at.seconds <= limit ? at.seconds : nil
        }
    }

    /// The last matching wall time in [floor, from]: `nextMatch` mirrored, moving to the end of the
    /// previous month, day, hour or minute.
    func previousMatch(atOrBefore from: Int64, notBefore floor: Int64) -> Int64? {
        var at = WallTime(from)
        let firstDay = floorDivide(floor, 86_400)
        while true {
            guard let month = previousBit(months, atOrBefore: at.date.month) else {
                at = WallTime(endOf: CivilDate(year: at.date.year - 1, month: 12, day: 31))
                continue
            }
            if month != at.date.month {
                at = WallTime(endOf: CivilDate(year: at.date.year, month: month, day: daysIn(year: at.date.year, month: month)))
            }
            if at.date.daysSinceEpoch < firstDay { return nil }
            guard dayMatches(at.date) else { at = WallTime(endOf: at.date.adding(days: -1)); continue }
            guard let hour = previousBit(hours, atOrBefore: at.hour) else { at = WallTime(endOf: at.date.adding(days: -1)); continue }
            if hour != at.hour { (at.hour, at.minute, at.second) = (hour, 59, 59) }
            guard let minute = previousBit(minutes, atOrBefore: at.minute) else {
                (at.hour, at.minute, at.second) = (at.hour - 1, 59, 59)
                continue
            }
            if minute != at.minute { (at.minute, at.second) = (minute, 59) }
            guard let second = previousBit(seconds, atOrBefore: at.second) else {
                (at.minute, at.second) = (at.minute - 1, 59)
                continue
            }
            at.second = second
            return at.seconds >= floor ? at.seconds : nil
        }
    }
}

/// What is wrong with one field; the parser prefixes which field it is.
private struct FieldProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

private enum FieldKind: Int, CaseIterable, Hashable {
    case second, minute, hour, dayOfMonth, month, dayOfWeek

    var name: String {
        switch self {
        case .second: "second"
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day-of-month"
        case .month: "month"
        case .dayOfWeek: "day-of-week"
        }
    }

    /// Explicit values may go up to 7 in day-of-week (Sunday again), but `*` and open-ended `a/n` stop at
    /// Saturday, so that `1/2` does not sneak in a Sunday.
    var bounds: (lowest: Int, highest: Int, openEnd: Int) {
        switch self {
        case .second, .minute: (0, 59, 59)
        case .hour: (0, 23, 23)
        case .dayOfMonth: (1, 31, 31)
        case .month: (1, 12, 12)
        case .dayOfWeek: (0, 7, 6)
        }
    }

    var names: [String] {
        switch self {
        case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        default: []
        }
    }

    func parse(_ field: String) throws(FieldProblem) -> UInt64 {
        var mask: UInt64 = 0
        for item in field.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw FieldProblem("empty list item in '\(field)'") }
            mask |= try parseItem(String(item))
        }
        return mask
    }

    private func parseItem(_ item: String) throws(FieldProblem) -> UInt64 {
        let slashParts = item.split(separator: "/", omittingEmptySubsequences: false)
        guard slashParts.count <= 2 else { throw FieldProblem("more than one '/' in '\(item)'") }
        let base = String(slashParts[0])
        var step = 1
        if slashParts.count == 2 {
            let stepText = String(slashParts[1])
            guard !stepText.isEmpty else { throw FieldProblem("missing step after '/' in '\(item)'") }
            guard let parsed = try number(stepText, in: item) else { throw FieldProblem("step '\(stepText)' in '\(item)' is not a number") }
            guard parsed >= 1 else { throw FieldProblem("step 0 in '\(item)' must be at least 1") }
            step = parsed
        }

        let (lowest, _, openEnd) = bounds
        let first: Int, last: Int
        if base == "*" || base == "?" {
            guard base == "*" || self == .dayOfMonth || self == .dayOfWeek else {
                throw FieldProblem("'?' is only allowed in day-of-month and day-of-week")
            }
            (first, last) = (lowest, openEnd)
        } else {
            let ends = base.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard ends.count <= 2 else { throw FieldProblem("more than one '-' in '\(item)'") }
            let start = try value(ends[0], in: item)
            if ends.count == 2 {
                var end = try value(ends[1], in: item)
                // "FRI-SUN" reads naturally; the name SUN as a range end means the 7 that follows Saturday.
                if self == .dayOfWeek, end == 0, start > 0, ends[1].uppercased() == "SUN" { end = 7 }
                guard start <= end else { throw FieldProblem("range \(ends[0])-\(ends[1]) starts after it ends") }
                (first, last) = (start, end)
            } else {
                (first, last) = (start, slashParts.count == 2 ? max(start, openEnd) : start)
            }
        }
        var mask: UInt64 = 0
        for bit in stride(from: first, through: last, by: step) { mask |= 1 << UInt64(bit) }
        return mask
    }

    /// A number or (in month and day-of-week) a name, checked against the field's range.
    private func value(_ text: String, in item: String) throws(FieldProblem) -> Int {
        let (lowest, highest, _) = bounds
        if let number = try number(text, in: item) {
            guard (lowest...highest).contains(number) else {
                throw FieldProblem("\(text) is out of range \(lowest)–\(highest)")
            }
            return number
        }
        guard !text.isEmpty else { throw FieldProblem("missing value in '\(item)'") }
        if let firstBad = text.first(where: { !($0.isASCII && $0.isLetter) }) {
            throw FieldProblem("unexpected character '\(firstBad)' in '\(item)'")
        }
        switch self {
        case .month, .dayOfWeek:
            guard let index = names.firstIndex(of: text.uppercased()) else {
                let noun = self == .month ? "month" : "weekday"
                throw FieldProblem("unknown \(noun) name '\(text)' (use \(names.first ?? "")–\(names.last ?? ""))")
            }
            return self == .month ? index + 1 : index
        default:
            throw FieldProblem("'\(text)' is not a number")
        }
    }

    /// The value of an all-digit token, nil for one starting with a letter or empty. Too many digits to
    /// fit an Int is reported as out of range rather than as garbage, since that is what it is.
    private func number(_ text: String, in item: String) throws(FieldProblem) -> Int? {
        guard let head = text.first, head.isASCII, head.isNumber else { return nil }
        if let firstBad = text.first(where: { !($0.isASCII && $0.isNumber) }) {
            throw FieldProblem("unexpected character '\(firstBad)' in '\(item)'")
        }
        guard let number = Int(text) else {
            let (lowest, highest, _) = bounds
            throw FieldProblem("\(text) is out of range \(lowest)–\(highest)")
        }
        return number
    }
}

// MARK: - Civil-date arithmetic

/// A proleptic Gregorian date. Foundation's Calendar would do, but it is slow and the searches build many.
private struct CivilDate {
    var year: Int64
    var month: Int
    var day: Int

    init(year: Int64, month: Int, day: Int) {
        (self.year, self.month, self.day) = (year, month, day)
    }

    /// Howard Hinnant's civil-from-days, shared with ``UTCTime``.
    init(daysSinceEpoch days: Int64) {
        let (year, month, day) = UTCTime.civil(daysSinceEpoch: days)
        self.init(year: year, month: Int(month), day: Int(day))
    }

    /// Howard Hinnant's days-from-civil.
    var daysSinceEpoch: Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Sunday 0; 1970-01-01 was a Thursday.
    var weekday: Int { Int(floorModulo(daysSinceEpoch + 4, 7)) }

    func adding(days: Int64) -> CivilDate { CivilDate(daysSinceEpoch: daysSinceEpoch + days) }
}

/// A wall-clock time whose hour, minute and second may briefly run one past their range (24, 60) or one
/// below (−1) while searching; the bit lookups find nothing there and the search carries to the next unit.
private struct WallTime {
    var date: CivilDate
    var hour: Int
    var minute: Int
    var second: Int

    init(_ seconds: Int64) {
        let days = floorDivide(seconds, 86_400)
        let ofDay = Int(seconds - days * 86_400)
        (date, hour, minute, second) = (CivilDate(daysSinceEpoch: days), ofDay / 3600, ofDay / 60 % 60, ofDay % 60)
    }

    init(date: CivilDate) { (self.date, hour, minute, second) = (date, 0, 0, 0) }

    init(endOf date: CivilDate) { (self.date, hour, minute, second) = (date, 23, 59, 59) }

    var seconds: Int64 { date.daysSinceEpoch * 86_400 + Int64(hour * 3600 + minute * 60 + second) }
}

private func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

private func daysIn(year: Int64, month: Int) -> Int {
    month == 2 ? (isLeap(year) ? 29 : 28) : maximumDays(inMonth: month)
}

private func maximumDays(inMonth month: Int) -> Int {
    switch month {
    case 2: 29
    case 4, 6, 9, 11: 30
    default: 31
    }
}

/// The smallest allowed value at or after `value`, nil when none is; out-of-range `value`s find nothing.
private func nextBit(_ mask: UInt64, atOrAfter value: Int) -> Int? {
    guard (0...63).contains(value) else { return nil }
    let remaining = mask & (~UInt64(0) << UInt64(value))
    return remaining == 0 ? nil : remaining.trailingZeroBitCount
}

/// The largest allowed value at or before `value`, nil when none is.
private func previousBit(_ mask: UInt64, atOrBefore value: Int) -> Int? {
    guard value >= 0 else { return nil }
    let remaining = value >= 63 ? mask : mask & ((UInt64(1) << UInt64(value + 1)) - 1)
    return remaining == 0 ? nil : 63 - remaining.leadingZeroBitCount
}

/// Division rounding toward negative infinity, so instants before 1970 land in the right day and second.
private func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}

private func floorModulo(_ a: Int64, _ b: Int64) -> Int64 { a - floorDivide(a, b) * b }
