import ConveyorMetricNames
import ConveyorObservability
import Metrics

/// The write-batch metrics of one PostgreSQL transaction (rows, batch size, time), shared by the
/// Submitter and the Recorder.
enum PostgresBatchMetrics {
    static func record(operation: String, table: String, rows: Int, since started: ContinuousClock.Instant) {
        Counter(label: MetricsCatalog.postgresRows.name, dimensions: [("table", table)]).increment(by: rows)
        Metrics.Recorder(label: MetricsCatalog.postgresBatch.name, dimensions: [("operation", operation)]).record(rows)
        Timer(label: MetricsCatalog.postgresDuration.name, dimensions: [("operation", operation)]).recordInterval(since: started)
    }
}

extension Timer {
    /// Records the time elapsed since `start`.
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
