import ConveyorCore
import Testing

/// Unix milliseconds of a UTC calendar time, by days-from-civil, so expectations do not lean on the code under test.
private func utc(_ year: Int64, _ month: Int64, _ day: Int64, _ hour: Int64 = 0, _ minute: Int64 = 0, _ second: Int64 = 0) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000
}

private let minute: Int64 = 60_000
private let hour: Int64 = 3_600_000
private let day: Int64 = 86_400_000

@Suite("CronSchedule: fields, names and macros")
struct CronScheduleSyntaxTests {
    @Test("every minute ticks at second 0 of each minute, strictly after the given instant")
    func everyMinute() throws {
        let cron = try CronSchedule("* * * * *")
        #expect(cron.next(after: utc(2024, 1, 1, 0, 0, 0)) == utc(2024, 1, 1, 0, 1))
        #expect(cron.next(after: utc(2024, 1, 1, 0, 0, 30)) == utc(2024, 1, 1, 0, 1))
        #expect(cron.next(after: utc(2024, 12, 31, 23, 59, 59) + 999) == utc(2025, 1, 1))
        #expect(cron.next(after: utc(1969, 12, 31, 23, 59, 1)) == 0, "instants before 1970 round toward the past")
    }

    @Test("every 15 minutes ticks at :00, :15, :30 and :45")
    func everyFifteenMinutes() throws {
        let cron = try CronSchedule("*/15 * * * *")
        #expect(
            cron.ticks(after: utc(2024, 3, 5, 9, 59, 59), through: utc(2024, 3, 5, 11), limit: 100)
                == [utc(2024, 3, 5, 10), utc(2024, 3, 5, 10, 15), utc(2024, 3, 5, 10, 30), utc(2024, 3, 5, 10, 45), utc(2024, 3, 5, 11)])
    }

    @Test("with six fields the first is the second: every second, and every 5 seconds")
    func sixFields() throws {
        let everySecond = try CronSchedule("* * * * * *")
        let start = utc(2024, 6, 1, 12)
        #expect(everySecond.next(after: start) == start + 1000)
        #expect(everySecond.next(after: start + 500) == start + 1000)
        #expect(everySecond.ticks(after: start, through: start + 3000, limit: 10) == [start + 1000, start + 2000, start + 3000])
        let everyFive = try CronSchedule("*/5 * * * * *")
        #expect(everyFive.ticks(after: start, through: start + 20_000, limit: 10) == [5, 10, 15, 20].map { start + $0 * 1000 })
        #expect(everyFive.next(after: utc(2024, 6, 1, 12, 59, 57)) == utc(2024, 6, 1, 13))
        let pinned = try CronSchedule("30 0 12 * * *")
        #expect(pinned.next(after: start) == utc(2024, 6, 1, 12, 0, 30))
    }

    @Test("lists, ranges and steps combine within a field; a/n runs from a to the field's end")
    func listsRangesAndSteps() throws {
        let minutes = try CronSchedule("5,10-12,50/5 * * * *")
        #expect(
            minutes.ticks(after: utc(2024, 2, 1, 7), through: utc(2024, 2, 1, 8), limit: 100)
                == [5, 10, 11, 12, 50, 55].map { utc(2024, 2, 1, 7) + $0 * minute })
        let hours = try CronSchedule("0 9-17/4 * * *")
        #expect(hours.ticks(after: utc(2024, 2, 1), through: utc(2024, 2, 2), limit: 100) == [9, 13, 17].map { utc(2024, 2, 1, $0) })
        let spaced = try CronSchedule("  0\t12   * * *\n")
        #expect(spaced.next(after: utc(2024, 2, 1)) == utc(2024, 2, 1, 12), "any whitespace separates fields")
        let days = try CronSchedule("0 0 1-10/3 * *")
        #expect(days.ticks(after: utc(2024, 2, 1) - 1, through: utc(2024, 2, 29), limit: 100) == [1, 4, 7, 10].map { utc(2024, 2, $0) })
    }

    @Test("month and weekday names work in any case, alone, in lists and in ranges")
    func names() throws {
        let weekdays = try CronSchedule("0 12 * * Mon-FRI")
        // 2024-03-04 is a Monday.
        #expect(
            weekdays.ticks(after: utc(2024, 3, 3), through: utc(2024, 3, 11), limit: 100)
                == [4, 5, 6, 7, 8].map { utc(2024, 3, $0, 12) })
        let months = try CronSchedule("0 0 1 jan,JUL *")
        #expect(
            months.ticks(after: utc(2024, 1, 1), through: utc(2026, 1, 1), limit: 100)
                == [utc(2024, 7, 1), utc(2025, 1, 1), utc(2025, 7, 1), utc(2026, 1, 1)])
        let quarterStarts = try CronSchedule("0 0 1 JAN-DEC/3 *")
        #expect(quarterStarts.ticks(after: utc(2024, 1, 1) - 1, through: utc(2024, 12, 31), limit: 100) == [1, 4, 7, 10].map { utc(2024, $0, 1) })
        let weekend = try CronSchedule("0 0 * * FRI-SUN")
        #expect(weekend.ticks(after: utc(2024, 3, 4), through: utc(2024, 3, 11), limit: 100) == [8, 9, 10].map { utc(2024, 3, $0) })
    }

    @Test("day-of-week 0 and 7 are both Sunday")
    func sundayTwice() throws {
        let window = (after: utc(2024, 3, 1), through: utc(2024, 4, 1))
        let expected = [3, 10, 17, 24, 31].map { utc(2024, 3, $0) }
        for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 6-7"] {
            let sundays = try CronSchedule(expression).ticks(after: window.after, through: window.through, limit: 100)
            #expect(sundays.filter { ($0 / day + 4) % 7 == 0 } == expected, "\(expression)")
        }
        #expect(try CronSchedule("0 0 * * 6-7").ticks(after: window.after, through: window.through, limit: 100).count == 10)
    }

    @Test("macros stand for their five-field schedules, in any case")
    func macros() throws {
        let sunday = utc(2024, 5, 5, 0, 0, 1)  // a Sunday, just after midnight
        #expect(try CronSchedule("@yearly").next(after: sunday) == utc(2025, 1, 1))
        #expect(try CronSchedule("@annually").next(after: sunday) == utc(2025, 1, 1))
        #expect(try CronSchedule("@monthly").next(after: sunday) == utc(2024, 6, 1))
        #expect(try CronSchedule("@weekly").next(after: sunday) == utc(2024, 5, 12))
        #expect(try CronSchedule("@daily").next(after: sunday) == utc(2024, 5, 6))
        #expect(try CronSchedule("@midnight").next(after: sunday) == utc(2024, 5, 6))
        #expect(try CronSchedule("@hourly").next(after: sunday) == utc(2024, 5, 5, 1))
        #expect(try CronSchedule("@DAILY").next(after: sunday) == utc(2024, 5, 6))
    }

    @Test("when both day fields are restricted a day matches either; when one is * or ? both must match")
    func dayOfMonthOrDayOfWeek() throws {
        let window = (after: utc(2024, 9, 1), through: utc(2024, 10, 19))
        // September 2024: Fridays 6, 13, 20, 27; October: Fridays 4, 11, 18, and Sunday the 13th.
        let either = try CronSchedule("0 0 13 * FRI").ticks(after: window.after, through: window.through, limit: 100)
        #expect(
            either == [6, 13, 20, 27].map { utc(2024, 9, $0) } + [4, 11, 13, 18].map { utc(2024, 10, $0) })
        let thirteenths = try CronSchedule("0 0 13 * *").ticks(after: window.after, through: window.through, limit: 100)
        #expect(thirteenths == [utc(2024, 9, 13), utc(2024, 10, 13)])
        let fridays = [utc(2024, 9, 6), utc(2024, 9, 13), utc(2024, 9, 20), utc(2024, 9, 27), utc(2024, 10, 4), utc(2024, 10, 11), utc(2024, 10, 18)]
        #expect(try CronSchedule("0 0 * * FRI").ticks(after: window.after, through: window.through, limit: 100) == fridays)
        #expect(try CronSchedule("0 0 ? * 5").ticks(after: window.after, through: window.through, limit: 100) == fridays)
        #expect(try CronSchedule("0 0 13 * ?").ticks(after: window.after, through: window.through, limit: 100) == thirteenths)
    }

    @Test("29 February ticks only in leap years, and 2100 is not one")
    func leapDay() throws {
        let cron = try CronSchedule("0 0 29 2 *")
        #expect(cron.next(after: utc(2023, 1, 1)) == utc(2024, 2, 29))
        #expect(cron.next(after: utc(2024, 2, 29)) == utc(2028, 2, 29))
        #expect(cron.ticks(after: utc(2020, 3, 1), through: utc(2033, 1, 1), limit: 100) == [utc(2024, 2, 29), utc(2028, 2, 29), utc(2032, 2, 29)])
        #expect(cron.next(after: utc(2096, 3, 1)) == nil, "2104 is more than five years ahead")
        #expect(cron.latest(atOrBefore: utc(2105, 1, 1), after: utc(2090, 1, 1)) == utc(2104, 2, 29))
    }

    @Test("30 February never ticks, without searching forever")
    func impossibleDate() throws {
        let cron = try CronSchedule("0 0 30 2 *")
        #expect(cron.next(after: utc(2024, 1, 1)) == nil)
        #expect(cron.latest(atOrBefore: utc(2024, 1, 1), after: Int64.min) == nil)
        #expect(cron.ticks(after: utc(2024, 1, 1), through: utc(2034, 1, 1), limit: 10).isEmpty)
        #expect(try CronSchedule("0 0 31 4,6,9,11 *").next(after: utc(2024, 1, 1)) == nil)
        #expect(try CronSchedule("0 0 30 2 MON").next(after: utc(2024, 1, 1)) == utc(2024, 2, 5), "either day field may match: a Monday in February")
    }

    @Test("a schedule keeps its expression and time zone, and equal ones compare equal")
    func identity() throws {
        let cron = try CronSchedule("*/5 * * * *", timeZone: "Europe/Berlin")
        #expect(cron.expression == "*/5 * * * *" && cron.timeZone == "Europe/Berlin")
        #expect(cron.description == "*/5 * * * * in Europe/Berlin")
        #expect(cron == (try CronSchedule("*/5 * * * *", timeZone: "Europe/Berlin")))
        #expect(cron != (try CronSchedule("*/5 * * * *")))
        #expect(try CronSchedule("*/5 * * * *").timeZone == "UTC")
    }
}

@Suite("CronSchedule: next, ticks and latest")
struct CronScheduleSearchTests {
    @Test("next(after:) from a tick returns the following tick, not the same one")
    func strictlyAfter() throws {
        let cron = try CronSchedule("*/15 * * * *")
        let tick = utc(2024, 4, 2, 10, 15)
        #expect(cron.next(after: tick - 1) == tick)
        #expect(cron.next(after: tick) == tick + 15 * minute)
        #expect(cron.next(after: tick + 1) == tick + 15 * minute)
    }

    @Test("ticks(after:through:limit:) excludes the start, includes the end, and stops at the limit")
    func ticksBoundsAndLimit() throws {
        let cron = try CronSchedule("0 * * * *")
        let (start, end) = (utc(2024, 4, 2, 10), utc(2024, 4, 2, 13))
        #expect(cron.ticks(after: start, through: end, limit: 10) == [utc(2024, 4, 2, 11), utc(2024, 4, 2, 12), utc(2024, 4, 2, 13)])
        #expect(cron.ticks(after: start, through: end - 1, limit: 10) == [utc(2024, 4, 2, 11), utc(2024, 4, 2, 12)])
        #expect(cron.ticks(after: start, through: end, limit: 2) == [utc(2024, 4, 2, 11), utc(2024, 4, 2, 12)])
        #expect(cron.ticks(after: start, through: end, limit: 0).isEmpty)
        #expect(cron.ticks(after: end, through: start, limit: 10).isEmpty)
    }

    @Test("latest(atOrBefore:after:) over a 3-year gap is immediate for minutely and every-second schedules")
    func latestAcrossYears() throws {
        let minutely = try CronSchedule("* * * * *")
        let everySecond = try CronSchedule("* * * * * *")
        let (floor, now) = (utc(2024, 6, 1), utc(2027, 6, 1, 12, 34, 56) + 789)
        let mondayMornings = try CronSchedule("0 9 * * MON", timeZone: "Europe/Berlin")
        let elapsed = ContinuousClock().measure {
            for _ in 0..<100 {
                #expect(minutely.latest(atOrBefore: now, after: floor) == utc(2027, 6, 1, 12, 34))
                #expect(everySecond.latest(atOrBefore: now, after: floor) == utc(2027, 6, 1, 12, 34, 56))
                // 2027-06-01 is a Tuesday; Monday 09:00 CEST is 07:00Z.
                #expect(mondayMornings.latest(atOrBefore: now, after: floor) == utc(2027, 5, 31, 7))
            }
        }
        #expect(elapsed < .seconds(2))
        #expect(minutely.latest(atOrBefore: utc(2027, 6, 1, 12, 34), after: floor) == utc(2027, 6, 1, 12, 34), "a tick at the bound counts")
    }

    @Test("latest for a yearly schedule finds the last New Year in the window, excluding the floor")
    func latestYearly() throws {
        let cron = try CronSchedule("@yearly")
        #expect(cron.latest(atOrBefore: utc(2026, 6, 1), after: utc(2020, 1, 1)) == utc(2026, 1, 1))
        #expect(cron.latest(atOrBefore: utc(2026, 1, 1), after: utc(2020, 1, 1)) == utc(2026, 1, 1))
        #expect(cron.latest(atOrBefore: utc(2026, 1, 1) - 1, after: utc(2020, 1, 1)) == utc(2025, 1, 1))
        #expect(cron.latest(atOrBefore: utc(2026, 6, 1), after: utc(2026, 1, 1)) == nil)
    }

    @Test("latest returns nil when no tick lies in the window")
    func latestEmptyWindow() throws {
        #expect(try CronSchedule("0 0 1 1 *").latest(atOrBefore: utc(2024, 12, 31), after: utc(2024, 2, 1)) == nil)
        #expect(try CronSchedule("0 12 * * *").latest(atOrBefore: utc(2024, 5, 5, 11, 59, 59), after: utc(2024, 5, 5)) == nil)
        #expect(try CronSchedule("* * * * *").latest(atOrBefore: utc(2024, 5, 5), after: utc(2024, 5, 5)) == nil)
    }

    @Test("latest agrees with the last of ticks, in UTC and across daylight-saving changes")
    func latestMatchesTicks() throws {
        let cases: [(String, String)] = [
            ("*/7 3-5 * * *", "UTC"), ("0 0 13 * FRI", "UTC"), ("15 2 * * *", "America/New_York"),
            ("*/20 1 * * *", "America/New_York"), ("0 */3 * * *", "Europe/Berlin"), ("30 2 * 3 SUN", "Europe/Berlin"),
        ]
        let (start, end) = (utc(2024, 1, 1), utc(2025, 1, 1))
        let step = Int(13 * day + 17 * hour + 11 * minute)
        for (expression, zone) in cases {
            let cron = try CronSchedule(expression, timeZone: zone)
            let all = cron.ticks(after: start, through: end, limit: 10_000)
            for through in stride(from: start + 7 * day, through: end, by: step) {
                let expected = all.last(where: { $0 <= through })
                #expect(cron.latest(atOrBefore: through, after: start) == expected, "\(expression) in \(zone) at or before \(through)")
            }
        }
    }
}

@Suite("CronSchedule: time zones and daylight saving")
struct CronScheduleTimeZoneTests {
    @Test("Europe/Berlin daily at 09:00 is 08:00Z in winter and 07:00Z in summer")
    func berlin() throws {
        let cron = try CronSchedule("0 9 * * *", timeZone: "Europe/Berlin")
        #expect(cron.next(after: utc(2024, 1, 15)) == utc(2024, 1, 15, 8))
        #expect(cron.next(after: utc(2024, 7, 15)) == utc(2024, 7, 15, 7))
        // Berlin springs forward on 2024-03-31.
        #expect(
            cron.ticks(after: utc(2024, 3, 30), through: utc(2024, 4, 2), limit: 10)
                == [utc(2024, 3, 30, 8), utc(2024, 3, 31, 7), utc(2024, 4, 1, 7)])
    }

    @Test("New York's 02:30 does not exist on the spring-forward day, so that day has no tick")
    func springForwardSkips() throws {
        for zone in ["America/New_York", "US/Eastern"] {
            let cron = try CronSchedule("30 2 * * *", timeZone: zone)
            #expect(
                cron.ticks(after: utc(2024, 3, 8), through: utc(2024, 3, 13), limit: 10)
                    == [utc(2024, 3, 8, 7, 30), utc(2024, 3, 9, 7, 30), utc(2024, 3, 11, 6, 30), utc(2024, 3, 12, 6, 30)])
            #expect(cron.latest(atOrBefore: utc(2024, 3, 11), after: utc(2024, 3, 1)) == utc(2024, 3, 9, 7, 30))
        }
    }

    @Test("across the spring-forward gap an every-minute schedule goes on without a pause")
    func springForwardMinutely() throws {
        let cron = try CronSchedule("* * * * *", timeZone: "America/New_York")
        // 01:59 EST is 06:59Z; the next minute is 03:00 EDT, 07:00Z.
        #expect(cron.next(after: utc(2024, 3, 10, 6, 59)) == utc(2024, 3, 10, 7))
        #expect(cron.latest(atOrBefore: utc(2024, 3, 10, 7, 0, 30), after: utc(2024, 3, 10)) == utc(2024, 3, 10, 7))
    }

    @Test("New York's 01:30 happens twice on the fall-back day and ticks once, at the first")
    func fallBackTicksOnce() throws {
        let cron = try CronSchedule("30 1 * * *", timeZone: "America/New_York")
        // 01:30 EDT is 05:30Z; 01:30 EST, an hour later, is the repeat.
        #expect(
            cron.ticks(after: utc(2024, 11, 2), through: utc(2024, 11, 5), limit: 10)
                == [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)])
        #expect(cron.next(after: utc(2024, 11, 3, 5, 30)) == utc(2024, 11, 4, 6, 30))
        #expect(cron.latest(atOrBefore: utc(2024, 11, 3, 7), after: utc(2024, 11, 3)) == utc(2024, 11, 3, 5, 30))
    }

    @Test("during the repeated hour an every-minute schedule is silent, since each minute ticked in the first pass")
    func fallBackMinutely() throws {
        let cron = try CronSchedule("* * * * *", timeZone: "America/New_York")
        // The first pass ends at 01:59 EDT (05:59Z); the second pass runs 06:00Z–06:59Z; 02:00 EST is 07:00Z.
        #expect(cron.next(after: utc(2024, 11, 3, 5, 58)) == utc(2024, 11, 3, 5, 59))
        #expect(cron.next(after: utc(2024, 11, 3, 5, 59)) == utc(2024, 11, 3, 7))
        #expect(cron.next(after: utc(2024, 11, 3, 6, 30)) == utc(2024, 11, 3, 7))
        #expect(cron.latest(atOrBefore: utc(2024, 11, 3, 6, 30), after: utc(2024, 11, 3)) == utc(2024, 11, 3, 5, 59))
        #expect(cron.ticks(after: utc(2024, 11, 3, 5), through: utc(2024, 11, 3, 8), limit: 1000).count == 59 + 61)
    }
}

@Suite("CronSchedule: mistakes in an expression")
struct CronScheduleErrorTests {
    @Test("each mistake is reported with what is wrong and in which field")
    func messages() {
        let cases: [(String, String)] = [
            ("", "the expression is empty"),
            ("   ", "the expression is empty"),
            ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second), found 4"),
            ("* * * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second), found 7"),
            ("1,,2 * * * *", "field 1 (minute): empty list item in '1,,2'"),
            ("5, * * * *", "field 1 (minute): empty list item in '5,'"),
            ("0 24 * * *", "field 2 (hour): 24 is out of range 0–23"),
            ("60 * * * * *", "field 1 (second): 60 is out of range 0–59"),
            ("0 0 0 * *", "field 3 (day-of-month): 0 is out of range 1–31"),
            ("0 0 * 13 *", "field 4 (month): 13 is out of range 1–12"),
            ("0 0 * * 8", "field 5 (day-of-week): 8 is out of range 0–7"),
            ("99999999999999999999 * * * *", "field 1 (minute): 99999999999999999999 is out of range 0–59"),
            ("0 17-9 * * *", "field 2 (hour): range 17-9 starts after it ends"),
            ("0 0 * * FRI-MON", "field 5 (day-of-week): range FRI-MON starts after it ends"),
            ("*/0 * * * *", "field 1 (minute): step 0 in '*/0' must be at least 1"),
            ("*/ * * * *", "field 1 (minute): missing step after '/' in '*/'"),
            ("1/2/3 * * * *", "field 1 (minute): more than one '/' in '1/2/3'"),
            ("5- * * * *", "field 1 (minute): missing value in '5-'"),
            ("0 0 * FOO *", "field 4 (month): unknown month name 'FOO' (use JAN–DEC)"),
            ("0 0 * * Monday", "field 5 (day-of-week): unknown weekday name 'Monday' (use SUN–SAT)"),
            ("JAN * * * *", "field 1 (minute): 'JAN' is not a number"),
            ("5# * * * *", "field 1 (minute): unexpected character '#' in '5#'"),
            ("0 0 * * 1%2", "field 5 (day-of-week): unexpected character '%' in '1%2'"),
            ("0 0 * * */x", "field 5 (day-of-week): step 'x' in '*/x' is not a number"),
            ("? * * * *", "field 1 (minute): '?' is only allowed in day-of-month and day-of-week"),
            ("@every", "unknown macro '@every' (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"),
            ("@daily 5", "unknown macro '@daily 5' (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"),
        ]
        for (expression, message) in cases {
            #expect(throws: CronError(expression: expression, message: message), "\(expression)") { try CronSchedule(expression) }
        }
    }

    @Test("an unknown time zone is an error, and the description quotes the expression")
    func timeZoneAndDescription() {
        #expect(throws: CronError(expression: "* * * * *", message: "unknown time zone 'Mars/Olympus'")) {
            try CronSchedule("* * * * *", timeZone: "Mars/Olympus")
        }
        let error = CronError(expression: "0 24 * * *", message: "field 2 (hour): 24 is out of range 0–23")
        #expect(error.description == "invalid cron expression '0 24 * * *': field 2 (hour): 24 is out of range 0–23")
    }
}
