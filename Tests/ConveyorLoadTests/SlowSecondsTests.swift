@testable import conveyor_load
import Testing

@Suite("Slow seconds and what explains them")
struct SlowSecondsTests {
    private static func second(_ second: Int, p99: Double, busy: Double = 50, steal: Double = 0) -> LoadRun.Second {
        LoadRun.Second(
            second: second, accepted: 1000, failed: 0, inFlight: 3, enqueueP50Milliseconds: 3, enqueueP99Milliseconds: p99,
            machine: MachineSecond(busyPercent: busy, stealPercent: steal))
    }

    @Test("a second above 50 ms is explained by an agent restart from its start until five seconds after it ended")
    func restartShadow() {
        // The restart runs from 4.2 s to 5.1 s into the run: seconds 5 and 6 hold it, 7–11 are its shadow.
        let timeline = (1...14).map { Self.second($0, p99: 60) }
        let slow = SlowSeconds(timeline: timeline, restarts: [10_004_200...10_005_100], startedAtMillis: 10_000_000)
        #expect(slow.entries.count == 14)
        #expect(slow.entries.filter { $0.causes == [.agentRestart] }.map(\.second) == Array(5...11))
        #expect(slow.unexplained.map(\.second) == [1, 2, 3, 4, 12, 13, 14])
    }

    @Test("steal or both CPUs busy in that second or the one before explain it; fast seconds are not listed")
    func machineCauses() {
        let timeline = [
            Self.second(1, p99: 12),
            Self.second(2, p99: 80, steal: 12),
            Self.second(3, p99: 70),
            Self.second(4, p99: 20, busy: 97),
            Self.second(5, p99: 55),
            Self.second(6, p99: 51),
            Self.second(7, p99: 90, busy: 99, steal: 30),
        ]
        let slow = SlowSeconds(timeline: timeline, restarts: [], startedAtMillis: 0)
        #expect(slow.entries.map(\.second) == [2, 3, 5, 6, 7])
        #expect(slow.entries.map(\.causes) == [[.steal], [.steal], [.cpuBusy], [], [.steal, .cpuBusy]])
        #expect(slow.summary == "5 with enqueue P99 > 50 ms (3 steal, 2 CPUs busy); unexplained: 1 at 6 s (51 ms)")
    }

    @Test("a run without slow seconds says so; one without machine figures explains nothing by them")
    func summaries() {
        #expect(SlowSeconds(timeline: [Self.second(1, p99: 49.9)], restarts: [], startedAtMillis: 0).summary == "none with enqueue P99 > 50 ms")
        var blind = Self.second(1, p99: 200)
        blind.machine = nil
        let slow = SlowSeconds(timeline: [blind], restarts: [], startedAtMillis: 0)
        #expect(slow.unexplained.count == 1)
    }

    @Test("a TCP loss waited out in that second or the one before explains it")
    func tcpTimeouts() {
        var timeline = (1...4).map { Self.second($0, p99: 210) }
        timeline[1].machine?.tcpTimeouts = 2
        let slow = SlowSeconds(timeline: timeline, restarts: [], startedAtMillis: 0)
        #expect(slow.entries.map(\.causes) == [[], [.tcpTimeout], [.tcpTimeout], []])
        #expect(slow.summary == "4 with enqueue P99 > 50 ms (2 TCP timeout); unexplained: 2 at 1 s (210 ms), 4 s (210 ms)")
    }

    @Test("/proc/net/netstat's TcpExt lines give retransmission timeouts plus listen-queue drops; tail loss probes and other lines are not counted")
    func procNetNetstat() {
        let text = """
            TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPTimeouts TCPLossProbes
            TcpExt: 0 10969 10969 8645 28919
            IpExt: InNoRoutes InTruncatedPkts
            IpExt: 0 0
            """
        #expect(MachineCounters.timeouts(text) == 10969 + 8645)
        #expect(MachineCounters.timeouts("IpExt: InNoRoutes\nIpExt: 0\n") == nil)
    }

    @Test("autovacuum or a Redis fork seen by the backend sampler explains the second it was seen in and the next")
    func backendActivity() {
        let timeline = (1...6).map { Self.second($0, p99: 70) }
        // Seen 2.4 s and 4.9 s into the run: seconds 3–4 and 5–6.
        let slow = SlowSeconds(
            timeline: timeline, restarts: [], activity: [(5_002_400, .autovacuum), (5_004_900, .redisFork), (5_004_950, .autovacuum)],
            startedAtMillis: 5_000_000)
        #expect(slow.entries.map(\.causes) == [[], [], [.autovacuum], [.autovacuum], [.autovacuum, .redisFork], [.autovacuum, .redisFork]])
        #expect(slow.summary == "6 with enqueue P99 > 50 ms (4 autovacuum, 2 Redis fork); unexplained: 2 at 1 s (70 ms), 2 s (70 ms)")
    }

    @Test("retention seen opening or dropping a generation explains the second it was seen in and the next")
    func partitionChange() {
        let timeline = (1...4).map { Self.second($0, p99: 200) }
        let slow = SlowSeconds(timeline: timeline, restarts: [], activity: [(5_001_700, .partitionChange)], startedAtMillis: 5_000_000)
        #expect(slow.entries.map(\.causes) == [[], [.partitionChange], [.partitionChange], []])
        #expect(slow.summary == "4 with enqueue P99 > 50 ms (2 partition drop or open); unexplained: 2 at 1 s (200 ms), 4 s (200 ms)")
    }

    @Test("INFO's name:value lines are read across sections, headers skipped")
    func infoFields() {
        let fields = BackendActivitySampler.infoFields("# Persistence\r\naof_rewrite_in_progress:1\r\n\n# Stats\r\ntotal_forks:35\r\n")
        #expect(fields == ["aof_rewrite_in_progress": "1", "total_forks": "35"])
    }

    @Test("/proc/stat's first line gives busy and steal over the interval, guest time not counted twice")
    func procStat() throws {
        let before = try #require(MachineCounters.parse("cpu  1000 0 500 8000 500 0 0 0 300 0\ncpu0 1 2 3 4 5 6 7 8\n"))
        let after = try #require(MachineCounters.parse("cpu  1300 0 600 8400 500 0 0 200 400 0\n"))
        let second = try #require(MachineCounters.second(from: before, to: after))
        // 300 user + 100 system + 200 steal busy, 400 idle: 1,000 in all.
        #expect(abs(second.busyPercent - 60) < 1e-9 && abs(second.stealPercent - 20) < 1e-9)
        #expect(MachineCounters.parse("intr 1 2 3") == nil)
    }

    @Test("the report lists slow seconds for an open-loop run only")
    func reportLine() {
        let timeline = [Self.second(1, p99: 70)]
        let load = LoadRun.Result(
            acceptedIDs: [1], submittedTasks: 1, failedTasks: 0, errors: [:], shedRequests: 0, shedTasks: 0,
            enqueue: LatencyHistogram(), acceptedEnqueue: LatencyHistogram(), timeline: timeline, elapsed: .seconds(1),
            startedAtMillis: 0, cancelled: 0, cancelTooLate: 0)
        let open = LoadReport(mode: "test", mix: "noop=100", load: load, outcome: nil, processes: [], objectives: [], openLoop: true)
        #expect(open.table.contains("slow seconds              1 with enqueue P99 > 50 ms; unexplained: 1 at 1 s (70 ms)"))
        let closed = LoadReport(mode: "test", mix: "noop=100", load: load, outcome: nil, processes: [], objectives: [])
        #expect(closed.slowSeconds == nil && !closed.table.contains("slow seconds"))
    }
}
