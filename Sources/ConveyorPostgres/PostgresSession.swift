import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
import ConveyorCore

/// A libpq connection in use on its worker thread. Statements run synchronously here; the async API is
/// ``PostgresConnection/withSession(_:)``. Not `Sendable`: a session never leaves its thread, and the
/// `PGconn` pointer never leaves this file.
public final class PostgresSession {
    private var connection: OpaquePointer?
    private let url: String
    /// Session-level set-up already done on this connection (temporary tables and the like); cleared
    /// whenever the connection is replaced.
    var prepared: Set<String> = []
    /// Statements prepared on this connection (``queryPrepared(_:_:name:)``), by their text: the name each
    /// got. Cleared whenever the connection is replaced.
    private var statements: [String: String] = [:]
    /// How long one statement may wait for the server before the connection is dropped (see
    /// ``StatementWatchdog``); nil waits without bound (only for migrations, under their own lock).
    public var statementTimeout: Duration?
    private let defaultStatementTimeout: Duration?

    init(url: String, statementTimeout: Duration?) {
        self.url = url
        self.statementTimeout = statementTimeout
        self.defaultStatementTimeout = statementTimeout
    }

    /// Runs `body` with another statement deadline (longer for maintenance such as retention), then
    /// restores the default. The server-side `statement_timeout` follows, so a live server cancels a
    /// runaway statement itself before the client gives up on the connection.
    public func withStatementTimeout<T>(_ timeout: Duration?, _ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        let previous = statementTimeout
        let clientTimeout = timeout.map { $0 + Self.clientGrace }
        try execute("SET statement_timeout = \(Self.serverTimeoutMillis(clientTimeout))", name: "set statement_timeout")
        statementTimeout = clientTimeout
        defer {
            statementTimeout = previous
            if isConnected { try? execute("SET statement_timeout = \(Self.serverTimeoutMillis(previous))", name: "reset statement_timeout") }
        }
        return try body()
    }

    /// The client waits this much longer than the server's own `statement_timeout`, so that a server that
    /// is alive answers with its clean cancellation first.
    static let clientGrace = Duration.seconds(1)

    /// The server's `statement_timeout` (ms; 0 is none) for a client deadline: ``clientGrace`` shorter.
    static func serverTimeoutMillis(_ clientTimeout: Duration?) -> Int64 {
        clientTimeout.map { max(($0 - clientGrace).milliseconds, 1) } ?? 0
    }

    deinit { disconnect() }

    var isConnected: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK
    }

    func disconnect() {
        if let connection { PQfinish(connection) }
        connection = nil
        prepared.removeAll()
        statements.removeAll()
    }

    func connect() throws(PostgresError) {
        disconnect()
        guard let connection = PQconnectdb(url) else {
            throw PostgresError(.connectionFailed, "cannot allocate a libpq connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.message(connection)
            PQfinish(connection)
            throw PostgresError(.connectionFailed, message)
        }
        self.connection = connection
        statementTimeout = defaultStatementTimeout
        // Keep NOTICEs (for example "relation already exists, skipping") off stderr; a live server
        // cancels its own statements a little before the client would drop the connection.
        try execute(
            "SET client_min_messages = warning; SET statement_timeout = \(Self.serverTimeoutMillis(defaultStatementTimeout))",
            name: "session setup")
    }

    /// Runs one blocking libpq call under the statement deadline. When the deadline fired, the socket
    /// was shut down: the call's own error is replaced by a ``PostgresError/Code/timedOut`` that says so,
    /// and the dead connection is dropped (the next job reconnects).
    private func guarded<T>(_ name: String, _ call: (OpaquePointer) throws(PostgresError) -> T) throws(PostgresError) -> T {
        let connection = try live()
        guard let timeout = statementTimeout else { return try call(connection) }
        let socket = PQsocket(connection)
        let token = StatementWatchdog.shared.arm(socket: socket, timeout: timeout)
        let result: Result<T, PostgresError>
        do throws(PostgresError) {
            result = .success(try call(connection))
        } catch {
            result = .failure(error)
        }
        if StatementWatchdog.shared.disarm(token) {
            disconnect()
            throw PostgresError(.timedOut, "no answer within \(timeout); the connection was dropped", query: name)
        }
        return try result.get()
    }

    // MARK: - Statements

    /// Runs one or more statements without parameters.
    public func execute(_ sql: String, name: String? = nil) throws(PostgresError) {
        let label = name ?? Self.name(of: sql)
        try guarded(label) { connection throws(PostgresError) in
            guard let result = PQexec(connection, sql) else { throw lost(label) }
            defer { PQclear(result) }
            try check(result, name: label, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        }
    }

    /// Runs one statement with text parameters (`$1`, `$2`, …; nil is NULL) and returns its rows as text.
    public func query(_ sql: String, _ parameters: [String?] = [], name: String? = nil) throws(PostgresError) -> PostgresRows {
        let label = name ?? Self.name(of: sql)
        return try guarded(label) { connection throws(PostgresError) in try query(sql, parameters, label: label, on: connection) }
    }

    private func query(_ sql: String, _ parameters: [String?], label: String, on connection: OpaquePointer) throws(PostgresError) -> PostgresRows {
        try rows(label: label, of: Self.withValues(parameters) { values in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        })
    }

    /// Runs `call` with `parameters` as the C strings libpq takes (NULL for nil), freed afterwards.
    private static func withValues(
        _ parameters: [String?], _ call: (UnsafePointer<UnsafePointer<CChar>?>?) -> OpaquePointer?
    ) -> OpaquePointer? {
        let cStrings = parameters.map { $0.flatMap { strdup($0) } }
        defer { for pointer in cStrings { free(pointer) } }
        let values = cStrings.map { UnsafePointer($0) }
        return values.withUnsafeBufferPointer { call($0.baseAddress) }
    }

    /// The rows of a statement's result, which it clears; a missing or failed result throws.
    private func rows(label: String, of result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        guard let result else { throw lost(label) }
        defer { PQclear(result) }
        try check(result, name: label, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        return Self.rows(of: result)
    }

    /// Like ``query(_:_:name:)``, but parsed and planned once per connection, then only executed: for
    /// the Recorder's merges, whose text never changes and whose planning (a join into the partitioned
    /// `tasks`) cost more than running them on a batch of a few events, as at 1,000 tasks a second.
    /// A statement without parameters keeps its first plan until a change of the tables it reads (a
    /// generation's partition attached, say) makes PostgreSQL plan it again. Only for fixed text: each
    /// distinct text stays prepared for the connection's life.
    public func queryPrepared(_ sql: String, _ parameters: [String?] = [], name: String) throws(PostgresError) -> PostgresRows {
        try guarded(name) { connection throws(PostgresError) in
            let statement = try prepare(sql, parameterCount: parameters.count, name: name, on: connection)
            return try rows(label: name, of: Self.withValues(parameters) { values in
                PQexecPrepared(connection, statement, Int32(parameters.count), values, nil, nil, 0)
            })
        }
    }

    /// Like ``queryPrepared(_:_:name:)``, with every parameter in the binary format (a batch as array
    /// columns, see ``BinaryArrayEncoder``); each `$n` must be cast to its type in `sql`, which is where
    /// the server learns how to read it.
    public func queryPrepared(_ sql: String, binary parameters: [[UInt8]], name: String) throws(PostgresError) -> PostgresRows {
        try guarded(name) { connection throws(PostgresError) in
            let statement = try prepare(sql, parameterCount: parameters.count, name: name, on: connection)
            // One buffer for all of them: libpq takes a pointer per parameter, valid for the call.
            var joined = parameters.reduce(into: [UInt8]()) { $0.append(contentsOf: $1) }
            if joined.isEmpty { joined = [0] }  // a base address for zero-length parameters
            let lengths = parameters.map { Int32($0.count) }
            let formats = [Int32](repeating: 1, count: parameters.count)
            return try rows(label: name, of: joined.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(buffer.count, 1)) { base in
                    var offset = 0
                    let values: [UnsafePointer<CChar>?] = lengths.map { length in
                        defer { offset += Int(length) }
                        return base + offset
                    }
                    return PQexecPrepared(connection, statement, Int32(parameters.count), values, lengths, formats, 0)
                }
            })
        }
    }

    /// The prepared statement for `sql` on this connection, prepared now if it is new.
    private func prepare(_ sql: String, parameterCount: Int, name: String, on connection: OpaquePointer) throws(PostgresError) -> String {
        if let known = statements[sql] { return known }
        let statement = "conveyor_\(statements.count + 1)"
        guard let result = PQprepare(connection, statement, sql, Int32(parameterCount), nil) else { throw lost(name) }
        defer { PQclear(result) }
        try check(result, name: name, expecting: [PGRES_COMMAND_OK])
        statements[sql] = statement
        return statement
    }

    /// Streams `rows` into `target` (a table and its columns, `tasks (id, type, …)`, in the order the rows
    /// were encoded) with `COPY … FROM STDIN (FORMAT binary)`, in chunks of 256 KiB so that the server
    /// parses one chunk while the next is sent. The statement is built here so that binary rows never
    /// meet a COPY that expects text.
    public func copy(into target: String, _ rows: CopyRows, name: String? = nil) throws(PostgresError) {
        let sql = "COPY \(target) FROM STDIN (FORMAT binary)"
        let label = name ?? Self.name(of: sql)
        try guarded(label) { connection throws(PostgresError) in try copy(sql, data: rows.bytes, label: label, on: connection) }
    }

    private func copy(_ sql: String, data: [UInt8], label: String, on connection: OpaquePointer) throws(PostgresError) {
        guard let start = PQexec(connection, sql) else { throw lost(label) }
        let startStatus = PQresultStatus(start)
        if startStatus != PGRES_COPY_IN {
            defer { PQclear(start) }
            try check(start, name: label, expecting: [PGRES_COPY_IN])
        }
        PQclear(start)
        let chunk = 256 * 1024
        var sent = true
        data.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let length = min(chunk, buffer.count - offset)
                let status = buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { base in
                    PQputCopyData(connection, base + offset, Int32(length))
                }
                if status != 1 {
                    sent = false
                    return
                }
                offset += length
            }
        }
        if !sent {
            _ = PQputCopyEnd(connection, "client failed to send data")
        } else if PQputCopyEnd(connection, nil) != 1 {
            sent = false
        }
        // Drain every result: a COPY leaves the connection busy until PQgetResult returns NULL.
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            if failure == nil {
                do throws(PostgresError) {
                    try check(result, name: label, expecting: [PGRES_COMMAND_OK])
                } catch {
                    failure = error
                }
            }
            PQclear(result)
        }
        if let failure { throw failure }
        if !sent { throw PostgresError(.connectionLost, Self.message(connection), query: label) }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back and is rethrown.
    ///
    /// - Parameter settings: `SET LOCAL` statements sent in the BEGIN's own message, so that they cost no
    ///   round trip of their own (each round trip is a wake-up of this thread and of the backend).
    public func transaction<T>(settings: String? = nil, _ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        do {
            // Inside the `do`: a BEGIN sent with its settings can fail after the BEGIN took effect (a SET
            // LOCAL refused), which would leave this pooled connection in an aborted transaction.
            try execute(settings.map { "BEGIN; \($0)" } ?? "BEGIN", name: "begin")
            let value = try body()
            try execute("COMMIT", name: "commit")
            return value
        } catch {
            if isConnected { try? execute("ROLLBACK", name: "rollback") }
            throw error
        }
    }

    // MARK: - Helpers

    func live() throws(PostgresError) -> OpaquePointer {
        guard let connection else { throw PostgresError(.connectionLost, "not connected") }
        return connection
    }

    private func lost(_ name: String?) -> PostgresError {
        PostgresError(.connectionLost, connection.map(Self.message) ?? "no connection", query: name)
    }

    private func check(_ result: OpaquePointer, name: String, expecting: [ExecStatusType]) throws(PostgresError) {
        let status = PQresultStatus(result)
        if expecting.contains(status) { return }
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        var message = String(cString: PQresultErrorMessage(result)).trimmingTrailingWhitespace()
        if message.isEmpty { message = String(cString: PQresStatus(status)) }
        if let connection, PQstatus(connection) != CONNECTION_OK {
            throw PostgresError(.connectionLost, message, sqlState: sqlState, query: name)
        }
        throw PostgresError(.queryFailed, message, sqlState: sqlState, query: name)
    }

    private static func rows(of result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        for column in 0..<columnCount { columns.append(String(cString: PQfname(result, Int32(column)))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                    let pointer = UnsafeRawPointer(PQgetvalue(result, Int32(row), Int32(column))!)
                    values.append(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
                }
            }
            rows.append(values)
        }
        return PostgresRows(columns: columns, rows: rows, affected: Int(String(cString: PQcmdTuples(result))) ?? 0)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingTrailingWhitespace()
    }

    /// The first words of a statement, for error messages that must not echo parameters.
    static func name(of sql: String) -> String {
        String(sql.split(whereSeparator: { $0 == " " || $0 == "\n" }).prefix(3).joined(separator: " "))
    }
}

/// Rows of a result, every value as text (or nil for NULL).
public struct PostgresRows: Sendable, Hashable {
    public var columns: [String]
    public var rows: [[String?]]
    /// Rows inserted, updated or deleted by the statement.
    public var affected: Int
}

extension String {
    fileprivate func trimmingTrailingWhitespace() -> String {
        var slice = Substring(self)
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
