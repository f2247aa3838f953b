import ConveyorCore
import ConveyorPostgres

/// Where one live stream stands in its task's history: which rows it has sent, and from where to read
/// next.
///
/// Rows are ordered by (time, event id), but two Recorders may commit one task's steps out of that
/// order. So each read starts ``overlap`` before the newest row sent and skips the rows already sent:
/// a step committed late, within the overlap, still goes out (after newer ones). Every frame carries
/// the newest position sent as its SSE `id`, so a client that reconnects with `Last-Event-ID` resumes
/// after everything it has seen.
struct TaskFollower {
    /// Where the client stood when it connected: rows up to here it has (or had its chance to have).
    private let floor: HistoryCursor
    /// The newest position sent.
    private(set) var position: HistoryCursor
    /// Rows sent within the overlap window (event id → time), to skip on the next read.
    private var recent: [String: Int64] = [:]
    /// The last item sent was a terminal step (which the task's row must confirm: a redrive may follow).
    private(set) var lastWasTerminal = false

    static let overlapMillis: Int64 = 5_000

    init(after position: HistoryCursor) {
        self.floor = position
        self.position = position
    }

    /// Where the next read starts: the overlap before the newest position sent, never before the floor.
    var readFrom: HistoryCursor {
        max(floor, HistoryCursor(atMillis: position.atMillis - Self.overlapMillis, eventID: ""))
    }

    /// The frames of the rows not sent yet, in order; records them as sent.
    mutating func take(_ rows: [HistoryRow]) -> String {
        var frames = ""
        for row in rows where row.cursor > floor && recent[row.eventID] == nil {
            recent[row.eventID] = row.atMillis
            if row.cursor > position { position = row.cursor }
            for item in TaskTimeline.items(row) {
                frames += TaskWatchRoutes.frame(item, id: position.description)
                lastWasTerminal = item.isTerminal
            }
        }
        let horizon = position.atMillis - Self.overlapMillis
        recent = recent.filter { $0.value >= horizon }
        return frames
    }

    /// A terminal frame made from the task's row, when its history holds no terminal step.
    mutating func outcome(_ task: TaskRecord) -> String {
        let item = TaskTimeline.outcome(task, after: position)
        lastWasTerminal = true
        return TaskWatchRoutes.frame(item, id: position.description)
    }
}
