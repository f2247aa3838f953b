import ConveyorCore
import ConveyorPostgres
import Hummingbird

/// `GET /v1/schedules`: the registry's periodic schedules, each with its last enqueued tick and its next.
struct ScheduleRoutes: Sendable {
    let registry: TaskTypeRegistry
    let store: ScheduleStore
    let retryAfterSeconds: Int

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.get("schedules") { _, context in try await list(context: context) }
    }

    private func list(context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.read, for: "list schedules")
        let lastTicks: [String: Int64]
        do {
            lastTicks = try await store.lastTicks()
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        return JSONResponse.make(.ok, Self.json(registry, lastTicks: lastTicks, now: WallClock.nowMillis()))
    }

    static func json(_ registry: TaskTypeRegistry, lastTicks: [String: Int64], now: Int64) -> String {
        func string(_ value: String?) -> String {
            guard let value else { return "null" }
            var out = ""
            JSONValue.writeString(value, into: &out)
            return out
        }
        var json = "{\"schedules\":["
        for (index, schedule) in registry.schedules.enumerated() {
            if index > 0 { json += "," }
            let queue = schedule.queue ?? registry[schedule.type]?.queue
            json += "{\"name\":\(string(schedule.name)),\"cron\":\(string(schedule.cron.expression)),"
            json += "\"time_zone\":\(string(schedule.cron.timeZone)),\"type\":\(string(schedule.type)),\"queue\":\(string(queue)),"
            json += "\"params\":\(schedule.params),\"missed\":\"\(schedule.missedTicks.rawValue)\","
            json += "\"last_tick\":\(string(lastTicks[schedule.name].map { UTCTime.format(millis: $0) })),"
            json += "\"next_tick\":\(string(schedule.cron.next(after: max(now, lastTicks[schedule.name] ?? now)).map { UTCTime.format(millis: $0) }))}"
        }
        return json + "]}"
    }
}
