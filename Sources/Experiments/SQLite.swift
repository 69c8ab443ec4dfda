import CSQLite
import Foundation
import VQDiffusion

/// A problem with the results database a user can act on (missing file, newer schema, locked, …).
public struct ResultsError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A value bound to or read from an SQL statement.
enum SQLValue {
    case null, integer(Int64), real(Double), text(String)
}

/// A thin wrapper over one SQLite connection. Not thread-safe by itself: `ResultsDatabase`
/// serialises access with its lock.
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String

    /// Opens `path` read-write (creating it when `create`), with a busy timeout so that several
    /// processes can write: a writer waits up to `busyTimeoutMs` for another's transaction.
    init(path: String, create: Bool, busyTimeoutMs: Int32) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw ResultsError("cannot open the results database \(path): \(message)")
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, busyTimeoutMs)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { sqlite3_close_v2(handle) }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    func error(_ what: String) -> ResultsError {
        let code = sqlite3_errcode(handle)
        var hint = ""
        if code == SQLITE_NOTADB { hint = " (the file is not an SQLite database; pass another path with --db)" }
        if code & 0xFF == SQLITE_BUSY { hint = " (another process held the database for longer than the busy timeout)" }
        if code & 0xFF == SQLITE_READONLY || code & 0xFF == SQLITE_CANTOPEN { hint = " (check the file and its folder are writable)" }
        return ResultsError("results database \(path): \(what) failed: \(lastError)\(hint)")
    }

    /// Runs one or more statements that return no rows of interest.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? lastError
            sqlite3_free(message)
            throw error("\(sql.prefix(60))… (\(text))")
        }
    }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw error("preparing \(sql.prefix(60))")
        }
        return SQLiteStatement(statement, connection: self)
    }

    /// Rows of a query, each as an array of values.
    func query(_ sql: String, _ arguments: [SQLValue] = []) throws -> [[SQLValue]] {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        var rows: [[SQLValue]] = []
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    /// Runs `body` in a write transaction (BEGIN IMMEDIATE takes the write lock up front, so two
    /// writers queue on the busy timeout instead of deadlocking on a lock upgrade).
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A prepared statement, reusable with `reset`.
final class SQLiteStatement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection

    init(_ handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ values: [SQLValue]) throws {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .real(let v): rc = sqlite3_bind_double(handle, index, v)
            case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, SQLiteStatement.transient)
            }
            guard rc == SQLITE_OK else { throw connection.error("binding parameter \(index)") }
        }
    }

    /// Advances; true when a row is available.
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error("statement \(String(cString: sqlite3_sql(handle)).prefix(60))")
        }
    }

    /// Binds, runs to completion, resets.
    func run(_ values: [SQLValue]) throws {
        try bind(values)
        while try step() {}
        sqlite3_reset(handle)
    }

    func row() -> [SQLValue] {
        (0..<sqlite3_column_count(handle)).map { i in
            switch sqlite3_column_type(handle, i) {
            case SQLITE_INTEGER: .integer(sqlite3_column_int64(handle, i))
            case SQLITE_FLOAT: .real(sqlite3_column_double(handle, i))
            case SQLITE_NULL: .null
            default: .text(String(cString: sqlite3_column_text(handle, i)))
            }
        }
    }
}

extension SQLValue {
    var text: String? {
        switch self {
        case .text(let s): s
        case .integer(let v): String(v)
        case .real(let v): String(v)
        case .null: nil
        }
    }
    var integer: Int64? {
        switch self {
        case .integer(let v): v
        case .real(let v): Int64(v)
        case .text(let s): Int64(s)
        case .null: nil
        }
    }
    var real: Double? {
        switch self {
        case .real(let v): v
        case .integer(let v): Double(v)
        case .text(let s): Double(s)
        case .null: nil
        }
    }
}

extension Optional where Wrapped == String {
    var sql: SQLValue { map { .text($0) } ?? .null }
}
extension Optional where Wrapped == Int {
    var sql: SQLValue { map { .integer(Int64($0)) } ?? .null }
}
