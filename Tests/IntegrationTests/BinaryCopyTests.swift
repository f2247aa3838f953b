import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Binary COPY and binary array parameters against a real PostgreSQL")
struct BinaryCopyTests {
    @Test("every column type Conveyor copies arrives as written: NULLs, extremes, times before 2000, text nothing escapes")
    func everyTypeRoundTrips() async throws {
        var encoder = CopyRowEncoder()
        // 2026-11-18 11:06:40.123 UTC; one millisecond after PostgreSQL's epoch; the Unix epoch (before it).
        let times: [Int64?] = [1_795_000_000_123, 946_684_800_001, 0]
        let texts: [String?] = ["tab\there\nnew\\slash\rcr \u{1F600}", nil, "a\u{0}b"]
        for row in 0..<3 {
            encoder.append(bigint: [Int64.max, Int64.min, -5][row])
            encoder.append(integer: [Int(Int32.max), Int(Int32.min), 0][row])
            encoder.append(smallint: [2, nil, -1][row])
            encoder.append(boolean: row == 0)
            encoder.append(timestamptzMillis: times[row])
            encoder.append(text: texts[row])
            encoder.append(jsonb: [#"{"k": "v\tw", "n": [1, 2.5]}"#, nil, "[\"x\u{0}\"]"][row])
            encoder.append(textWrittenBy: { $0.append(contentsOf: Array("id-\(row)".utf8)) })
            encoder.endRow()
        }
        let rows = encoder.finish()
        #expect(rows.count == 3)
        let read = try await Self.withSession { session in
            try session.execute("""
                CREATE TEMP TABLE copy_types (b bigint, i integer, s smallint, f boolean, t timestamptz, x text, j jsonb, w text)
                """, name: "create copy types")
            try session.copy(into: "copy_types (b, i, s, f, t, x, j, w)", rows, name: "copy types")
            return try session.query("""
                SELECT b, i, s, f, (extract(epoch FROM t) * 1000)::bigint, x, j::text, w FROM copy_types ORDER BY w
                """, name: "read copy types").rows
        }
        #expect(read.count == 3)
        #expect(read[0] == ["9223372036854775807", "2147483647", "2", "t", "1795000000123", "tab\there\nnew\\slash\rcr \u{1F600}", #"{"k": "v\tw", "n": [1, 2.5]}"#, "id-0"])
        #expect(read[1] == ["-9223372036854775808", "-2147483648", nil, "f", "946684800001", nil, nil, "id-1"])
        #expect(read[2] == ["-5", "0", "-1", "f", "0", "a\u{FFFD}b", "[\"x\u{FFFD}\"]", "id-2"])
    }

    @Test("a stream without rows copies nothing and still succeeds")
    func emptyStream() async throws {
        var empty = CopyRowEncoder()
        let rows = empty.finish()
        let count = try await Self.withSession { session in
            try session.execute("CREATE TEMP TABLE copy_empty (b bigint)", name: "create copy empty")
            try session.copy(into: "copy_empty (b)", rows, name: "copy empty")
            return try session.query("SELECT count(*) FROM copy_empty", name: "count copy empty").rows.first?[0]
        }
        #expect(count == "0")
    }

    @Test("a value of the wrong width is refused with the column named, and the session stays usable")
    func wrongWidthIsRefused() async throws {
        var encoder = CopyRowEncoder()
        encoder.append(bigint: 7)  // eight bytes where the column takes four
        encoder.endRow()
        let rows = encoder.finish()
        let after = try await Self.withSession { session in
            try session.execute("CREATE TEMP TABLE copy_width (i integer)", name: "create copy width")
            let error = #expect(throws: PostgresError.self) { try session.copy(into: "copy_width (i)", rows, name: "copy width") }
            #expect(error?.description.contains("incorrect binary data format") == true, "\(String(describing: error))")
            #expect(error?.description.contains("column i") == true, "\(String(describing: error))")
            return try session.query("SELECT count(*) FROM copy_width", name: "count copy width").rows.first?[0]
        }
        #expect(after == "0")
    }

    @Test("a number its column cannot hold is refused as data (SQLSTATE 22P03), never stored wrapped")
    func outOfRangeIsRefused() async throws {
        var batches: [CopyRows] = []
        for write in [
            { (encoder: inout CopyRowEncoder) in encoder.append(integer: Int(Int32.max) + 1) },
            { (encoder: inout CopyRowEncoder) in encoder.append(smallint: -40_000) },
            { (encoder: inout CopyRowEncoder) in encoder.append(timestamptzMillis: Int64.min) },
        ] {
            var encoder = CopyRowEncoder()
            encoder.append(bigint: 1)
            write(&encoder)
            encoder.endRow()
            batches.append(encoder.finish())
        }
        let columns = ["i integer", "s smallint", "t timestamptz"]
        let streams = batches
        let after = try await Self.withSession { session in
            for (index, rows) in streams.enumerated() {
                try session.execute("CREATE TEMP TABLE copy_range_\(index) (b bigint, \(columns[index]))", name: "create copy range")
                let column = columns[index].split(separator: " ")[0]
                let error = #expect(throws: PostgresError.self) { try session.copy(into: "copy_range_\(index) (b, \(column))", rows, name: "copy range") }
                #expect(error?.sqlState == "22P03", "\(String(describing: error))")
            }
            return try session.query("SELECT (SELECT count(*) FROM copy_range_0) + (SELECT count(*) FROM copy_range_1) + (SELECT count(*) FROM copy_range_2)", name: "count copy range").rows.first?[0]
        }
        #expect(after == "0")
    }

    @Test("binary array parameters arrive as written through unnest: every element type, NULLs, extremes, times before 2000")
    func arrayParametersRoundTrip() async throws {
        var ids = BinaryArrayEncoder(of: .bigint)
        var attempts = BinaryArrayEncoder(of: .integer)
        var names = BinaryArrayEncoder(of: .text)
        var times = BinaryArrayEncoder(of: .timestamptz)
        var documents = BinaryArrayEncoder(of: .jsonb)
        for row in 0..<3 {
            ids.append(bigint: [Int64.max, Int64.min, -5][row])
            attempts.append(integer: [Int(Int32.max), nil, 0][row])
            names.append(text: ["tab\there\nnew\\slash \u{1F600}", nil, "a\u{0}b"][row])
            times.append(timestamptzMillis: [1_795_000_000_123, 946_684_800_001, 0][row])
            documents.append(jsonb: [#"{"k": "v"}"#, nil, "[1, 2.5]"][row])
        }
        let columns = [ids.finish(), attempts.finish(), names.finish(), times.finish(), documents.finish()]
        let read = try await Self.withSession { session in
            try session.queryPrepared("""
                SELECT b, i, x, (extract(epoch FROM t) * 1000)::bigint, j::text
                FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[], $5::jsonb[]) AS u(b, i, x, t, j)
                """, binary: columns, name: "read arrays").rows
        }
        #expect(read.count == 3)
        #expect(read[0] == ["9223372036854775807", "2147483647", "tab\there\nnew\\slash \u{1F600}", "1795000000123", #"{"k": "v"}"#])
        #expect(read[1] == ["-9223372036854775808", nil, nil, "946684800001", nil])
        #expect(read[2] == ["-5", "0", "a\u{FFFD}b", "0", "[1, 2.5]"])
    }

    @Test("an empty array parameter unnests to no rows; an out-of-range element is refused as data (22P03); the session stays usable")
    func arrayParametersEmptyAndRefused() async throws {
        var empty = BinaryArrayEncoder(of: .bigint)
        var tooLarge = BinaryArrayEncoder(of: .integer)
        tooLarge.append(integer: Int(Int32.max) + 1)
        let (emptyColumn, badColumn) = (empty.finish(), tooLarge.finish())
        let after = try await Self.withSession { session in
            let none = try session.queryPrepared("SELECT count(*) FROM unnest($1::bigint[])", binary: [emptyColumn], name: "empty array").rows
            #expect(none.first?[0] == "0")
            let error = #expect(throws: PostgresError.self) {
                try session.queryPrepared("SELECT count(*) FROM unnest($1::integer[])", binary: [badColumn], name: "bad array")
            }
            #expect(error?.sqlState == "22P03", "\(String(describing: error))")
            return try session.query("SELECT 1", name: "after bad array").rows.first?[0]
        }
        #expect(after == "1")
    }

    /// A session on this suite's database of the test process' PostgreSQL (its temp tables go with it).
    private static func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let environment = try await TestServers.shared.environment(name: "binary-copy")
        let postgres = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { postgres.close() }
        return try await postgres.withSession(body)
    }
}
