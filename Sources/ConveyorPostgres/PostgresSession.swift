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

    init(url: String) {
        self.url = url
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
        // Keep NOTICEs (for example "relation already exists, skipping") off stderr.
        try execute("SET client_min_messages = warning", name: "session setup")
    }

    // MARK: - Statements

    /// Runs one or more statements without parameters.
    public func execute(_ sql: String, name: String? = nil) throws(PostgresError) {
        let connection = try live()
        guard let result = PQexec(connection, sql) else { throw lost(name) }
        defer { PQclear(result) }
        try check(result, name: name ?? Self.name(of: sql), expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
    }

    /// Runs one statement with text parameters (`$1`, `$2`, …; nil is NULL) and returns its rows as text.
    public func query(_ sql: String, _ parameters: [String?] = [], name: String? = nil) throws(PostgresError) -> PostgresRows {
        let connection = try live()
        let cStrings = parameters.map { $0.flatMap { strdup($0) } }
        defer { for pointer in cStrings { free(pointer) } }
        let values = cStrings.map { UnsafePointer($0) }
        let result = values.withUnsafeBufferPointer { buffer in
            PQexecParams(connection, sql, Int32(parameters.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        guard let result else { throw lost(name) }
        defer { PQclear(result) }
        try check(result, name: name ?? Self.name(of: sql), expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        return Self.rows(of: result)
    }

    /// Streams `data` (COPY text format) into `sql`, a `COPY … FROM STDIN` statement, in chunks of 256 KiB
    /// so that the server parses one chunk while the next is sent.
    public func copy(_ sql: String, data: [UInt8], name: String? = nil) throws(PostgresError) {
        let connection = try live()
        let label = name ?? Self.name(of: sql)
        guard let start = PQexec(connection, sql) else { throw lost(name) }
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
    public func transaction<T>(_ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try execute("BEGIN", name: "begin")
        do {
            let value = try body()
            try execute("COMMIT", name: "commit")
            return value
        } catch {
            if isConnected { try? execute("ROLLBACK", name: "rollback") }
            throw error
        }
    }

    // MARK: - Helpers

    private func live() throws(PostgresError) -> OpaquePointer {
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
