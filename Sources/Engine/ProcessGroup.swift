import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The processes that train one model together, and the collectives that combine their work.
///
/// A program is one process — `ProcessGroup.world` is then a group of one, whose collectives
/// return their input untouched — unless Open MPI's `mpirun` started it with more than one rank
/// (it sets `OMPI_COMM_WORLD_SIZE` and `OMPI_COMM_WORLD_RANK`). Then `ProcessGroup.start()` loads
/// libmpi with `dlopen`, joins the job (`MPI_Init_thread`) and makes `world` the job's ranks. No
/// program links against libmpi, so runs without `mpirun` need no MPI installed.
///
/// Data parallelism over ranks is one more level of the engine's sharding (`DataParallel`): rank r
/// of N owns the contiguous rows `Parallel.chunkRange(B, N, r)` of every global batch of B rows,
/// cuts them into its own thread shards, and leaves in its gradients the mean over its rows;
/// `sumGradients` then weighs each rank's mean by its share of the batch and sums them with one
/// `MPI_Allreduce` over a single flat buffer, so that every rank holds the gradient of the whole
/// batch — what one process with the same batch computes, up to the order of the float sums —
/// and takes the same optimizer step. Everything else that must agree (optimizer moments, EMA,
/// random streams) follows from identical updates.
///
/// Collectives are called from one thread at a time (`MPI_THREAD_SERIALIZED`), in the same order on
/// every rank.
public final class ProcessGroup: @unchecked Sendable {
    /// This process's rank, 0 ..< size.
    public let rank: Int
    /// Processes in the group.
    public let size: Int
    private let mpi: OpenMPI?
    private var gradientBuffer = Storage(uninitializedCount: 0)

    /// What the gradient sums have cost so far: calls, bytes reduced per call (the last one's) and
    /// seconds spent in `MPI_Allreduce` (waiting for the slowest rank included).
    public private(set) var gradientReductions = 0
    public private(set) var gradientBytes = 0
    public private(set) var gradientSeconds = 0.0

    private init(rank: Int, size: Int, mpi: OpenMPI?) {
        self.rank = rank
        self.size = size
        self.mpi = mpi
    }

    /// A group of one process.
    public static let single = ProcessGroup(rank: 0, size: 1, mpi: nil)

    nonisolated(unsafe) private static var started: ProcessGroup?

    /// The group this program trains in: the MPI job after `start()` under `mpirun`, else one process.
    public static var world: ProcessGroup { started ?? single }

    /// Whether the group has more than one process.
    public var isDistributed: Bool { size > 1 }
    /// Rank 0, which alone writes checkpoints, logs runs and prints.
    public var isRoot: Bool { rank == 0 }

    // MARK: Joining and leaving

    /// How Open MPI's launcher started this process: its rank and the job's size, or nil when no
    /// launcher did.
    public static func launch(environment: [String: String] = ProcessInfo.processInfo.environment) -> (rank: Int, size: Int)? {
        guard let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init),
              let rank = environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) else { return nil }
        return (rank, size)
    }

    /// Joins the MPI job when `mpirun` started this process with more than one rank, and makes
    /// `world` its ranks; otherwise `world` stays one process and nothing is loaded. Called once,
    /// first thing, by a program's main. Throws naming what is missing when the job cannot be joined.
    @discardableResult
    public static func start(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ProcessGroup {
        if let started { return started }
        guard let launch = launch(environment: environment) else {
            if let other = environment["PMI_SIZE"].flatMap(Int.init), other > 1 {
                throw ProcessGroupError("this process was started by an MPI launcher that is not Open MPI's mpirun "
                    + "(PMI_SIZE is \(other), OMPI_COMM_WORLD_SIZE is not set); data-parallel runs join Open MPI jobs "
                    + "only: start them with mpirun from openmpi-bin (make deps installs it)")
            }
            return single
        }
        guard launch.size > 1 else { return single }
        let mpi = try OpenMPI.load()
        var provided: Int32 = 0
        try mpi.check(mpi.initThread(nil, nil, OpenMPI.threadSerialized, &provided), "MPI_Init_thread")
        guard provided >= OpenMPI.threadSerialized else {
            throw ProcessGroupError("Open MPI provides thread level \(provided), below MPI_THREAD_SERIALIZED, which "
                + "training needs (its collectives run on whichever thread the command runs on)")
        }
        var rank: Int32 = 0, size: Int32 = 0
        try mpi.check(mpi.commRank(mpi.world, &rank), "MPI_Comm_rank")
        try mpi.check(mpi.commSize(mpi.world, &size), "MPI_Comm_size")
        let group = ProcessGroup(rank: Int(rank), size: Int(size), mpi: mpi)
        started = group
        return group
    }

    /// Leaves the job (`MPI_Finalize`) once every rank has come here; does nothing for one
    /// process. Ranks that finish early wait without spinning, so that rank 0's last words (saving
    /// and measuring the model) keep the cores.
    public func finish() {
        guard let mpi else { return }
        barrier()
        _ = mpi.finalize()
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`); for one process, exits. The caller
    /// prints why first.
    public func abort(code: Int32) -> Never {
        if let mpi { _ = mpi.abort(mpi.world, code) }
        exit(code)
    }

    // MARK: Rows of a batch

    /// The rows of a global batch of `batch` rows that this rank trains: a contiguous part,
    /// `Parallel.chunkRange(batch, size, rank)`.
    public func rows(ofBatch batch: Int) -> Range<Int> {
        Parallel.chunkRange(batch, chunks: size, index: rank)
    }

    /// This rank's fraction of a global batch of `batch` rows.
    public func share(ofBatch batch: Int) -> Float {
        Float(rows(ofBatch: batch).count) / Float(batch)
    }

    /// Why a batch of `batch` rows cannot be split over the ranks, or nil when it can.
    public func batchProblem(_ batch: Int) -> String? {
        batch >= size ? nil : "a batch of \(batch) cannot be split over \(size) MPI ranks: use a batch of at least \(size), or fewer ranks"
    }

    // MARK: Collectives

    /// After every rank's backward pass over its rows of a batch: replaces each parameter's
    /// gradient by Σ_ranks weight_r · g_r, the same on every rank — with `weight` this rank's share
    /// of the batch and g_r the mean over its rows, the whole batch's mean gradient. One flat fp32
    /// buffer and one `MPI_Allreduce` per call, parameters in the order given (the same on every
    /// rank); a parameter that no rank gave a gradient keeps none, as in one process. Does nothing
    /// for one process.
    public func sumGradients(_ parameters: [Tensor], weight: Float) {
        guard let mpi else { return }
        let values = parameters.reduce(0) { $0 + $1.count }
        let total = values + parameters.count   // the values, then one flag per parameter: has it a gradient
        if gradientBuffer.count != total { gradientBuffer = Storage(uninitializedCount: total) }
        let buffer = gradientBuffer.pointer
        var offset = 0
        for p in parameters {
            if let g = p.gradStorage?.pointer {
                for k in 0..<p.count { buffer[offset + k] = weight * g[k] }
            } else {
                (buffer + offset).update(repeating: 0, count: p.count)
            }
            offset += p.count
        }
        for (i, p) in parameters.enumerated() { buffer[offset + i] = p.gradStorage == nil ? 0 : 1 }
        let start = MonotonicClock.seconds()
        mpi.sumInPlace(buffer, count: total, type: mpi.float)
        gradientSeconds += MonotonicClock.seconds() - start
        gradientReductions += 1
        gradientBytes = total * MemoryLayout<Float>.stride
        offset = 0
        for (i, p) in parameters.enumerated() {
            if buffer[values + i] > 0 {
                if p.gradStorage == nil { p.gradStorage = Storage(uninitializedCount: p.count) }
                p.gradStorage!.pointer.update(from: buffer + offset, count: p.count)
            } else {
                p.gradStorage = nil
            }
            offset += p.count
        }
    }

    /// Element-wise sums of `values` over the ranks, the same on every rank (`values` itself for
    /// one process). Every rank passes as many.
    public func sum(_ values: [Double]) -> [Double] {
        guard let mpi, !values.isEmpty else { return values }
        var out = values
        out.withUnsafeMutableBufferPointer { mpi.sumInPlace($0.baseAddress!, count: $0.count, type: mpi.double) }
        return out
    }

    /// Every rank's `local` values, concatenated in rank order (`local` itself for one process).
    /// Ranks may pass different counts.
    public func allGather<T: BitwiseCopyable>(_ local: [T]) -> [T] {
        guard let mpi else { return local }
        let stride = MemoryLayout<T>.stride
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(local.count * stride)
        precondition(local.count * stride <= Int(Int32.max), "ProcessGroup.allGather: \(local.count) values exceed one call")
        counts.withUnsafeMutableBufferPointer { all in
            mpi.mustSucceed(mpi.allgather(&mine, 1, mpi.int, all.baseAddress, 1, mpi.int, mpi.world), "MPI_Allgather")
        }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + counts[r - 1] }
        let totalBytes = Int(displacements[size - 1] + counts[size - 1])
        precondition(totalBytes % stride == 0, "ProcessGroup.allGather: ranks gathered values of different types")
        return [T](unsafeUninitializedCapacity: totalBytes / stride) { buffer, initialized in
            local.withUnsafeBytes { send in
                mpi.mustSucceed(mpi.allgatherv(send.baseAddress, mine, mpi.byte, UnsafeMutableRawPointer(buffer.baseAddress),
                                               counts, displacements, mpi.byte, mpi.world), "MPI_Allgatherv")
            }
            initialized = totalBytes / stride
        }
    }

    /// Waits until every rank has come here, polling every millisecond instead of spinning (it is
    /// for waits of seconds: rank 0 preparing a cache, the end of a job).
    public func barrier() {
        guard let mpi else { return }
        var request: OpaquePointer?
        mpi.mustSucceed(mpi.ibarrier(mpi.world, &request), "MPI_Ibarrier")
        var done: Int32 = 0
        while true {
            mpi.mustSucceed(mpi.test(&request, &done, nil), "MPI_Test")
            if done != 0 { return }
            usleep(1000)
        }
    }

    /// Runs `body` on rank 0 first and on the other ranks once it is done, so that what it writes
    /// (a token cache, text features) is made once and then found; one process just runs it.
    /// An error on rank 0 is rethrown after the others have been released.
    public func rootFirst<T>(_ body: () throws -> T) throws -> T {
        guard isDistributed else { return try body() }
        if isRoot {
            let result = Result { try body() }
            barrier()
            return try result.get()
        }
        barrier()
        return try body()
    }

    /// Throws unless every rank passes the same `fingerprint` (of its weights, optimizer state,
    /// random streams and data position), naming the ranks that differ from rank 0 and `what` was
    /// compared. Does nothing for one process.
    public func checkAgreement(_ fingerprint: UInt64, _ what: String) throws {
        guard isDistributed else { return }
        let all = allGather([fingerprint])
        let differing = all.indices.filter { all[$0] != all[0] }
        guard differing.isEmpty else {
            throw ProcessGroupError("\(what) differs between the MPI ranks (rank\(differing.count == 1 ? "" : "s") "
                + "\(differing.map(String.init).joined(separator: ", ")) against rank 0): every rank must run the same "
                + "build with the same options on the same data and checkpoint files")
        }
    }

    // MARK: Description

    /// One line for `vqd info`: whether this process runs under MPI, with how many ranks, and
    /// whether libmpi can be loaded.
    public static func summary(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let library = OpenMPI.libraryVersion()
        let loadable = library.map { "libmpi loadable (\($0))" }
            ?? "libmpi not loadable (make deps installs Open MPI; needed only under mpirun)"
        if let started, started.isDistributed {
            return "MPI: rank \(started.rank) of \(started.size) under mpirun; \(loadable)"
        }
        if let launch = launch(environment: environment) {
            return "MPI: under mpirun with \(launch.size) rank\(launch.size == 1 ? "" : "s") (one rank runs as a single process); \(loadable)"
        }
        return "MPI: not under mpirun (one process); \(loadable)"
    }
}

/// Why a process cannot join or go on with its MPI job.
public struct ProcessGroupError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Open MPI's C interface, resolved at run time in libmpi (`dlopen`, `dlsym`): the functions the
/// group calls and Open MPI's predefined handles, which are the addresses of its global objects
/// (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`, `MPI_FLOAT` `&ompi_mpi_float`, `MPI_SUM`
/// `&ompi_mpi_op_sum`, as its mpi.h defines them).
struct OpenMPI {
    typealias Handle = OpaquePointer
    static let threadSerialized: Int32 = 2      // MPI_THREAD_SERIALIZED
    static let success: Int32 = 0               // MPI_SUCCESS
    static let inPlace = UnsafeRawPointer(bitPattern: 1)   // MPI_IN_PLACE
    /// The library names tried, the environment's VQD_LIBMPI first.
    static var libraryNames: [String] {
        [ProcessInfo.processInfo.environment["VQD_LIBMPI"], "libmpi.so.40", "libmpi.so"].compactMap { $0 }
    }

    typealias InitThread = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>?) -> Int32
    typealias CommQuery = @convention(c) (Handle?, UnsafeMutablePointer<Int32>?) -> Int32
    typealias Allreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle?, Handle?, Handle?) -> Int32
    typealias Allgather = @convention(c) (UnsafeRawPointer?, Int32, Handle?, UnsafeMutableRawPointer?, Int32, Handle?, Handle?) -> Int32
    typealias Allgatherv = @convention(c) (UnsafeRawPointer?, Int32, Handle?, UnsafeMutableRawPointer?, UnsafePointer<Int32>?,
                                           UnsafePointer<Int32>?, Handle?, Handle?) -> Int32
    typealias Ibarrier = @convention(c) (Handle?, UnsafeMutablePointer<OpaquePointer?>?) -> Int32
    typealias Test = @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32
    typealias Abort = @convention(c) (Handle?, Int32) -> Int32
    typealias Finalize = @convention(c) () -> Int32
    typealias LibraryVersion = @convention(c) (UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int32>?) -> Int32

    let initThread: InitThread, commRank: CommQuery, commSize: CommQuery
    let allreduce: Allreduce, allgather: Allgather, allgatherv: Allgatherv
    let ibarrier: Ibarrier, test: Test, abort: Abort, finalize: Finalize
    let world: Handle, float: Handle, double: Handle, byte: Handle, int: Handle, sum: Handle

    /// libmpi, or an error saying how to install it.
    static func load() throws -> OpenMPI {
        guard let library = open() else {
            throw ProcessGroupError("mpirun started this process, but Open MPI's library cannot be loaded "
                + "(tried \(libraryNames.joined(separator: ", ")): \(String(cString: dlerror()))); install Open MPI "
                + "(make deps installs libopenmpi-dev and openmpi-bin) or set VQD_LIBMPI to its libmpi.so")
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let pointer = dlsym(library, name) else {
                throw ProcessGroupError("the loaded libmpi has no \(name): it is not Open MPI 4 or later; "
                    + "start the job with Open MPI's mpirun and library")
            }
            return pointer
        }
        func function<F>(_ name: String, _ type: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
        return OpenMPI(
            initThread: try function("MPI_Init_thread", InitThread.self),
            commRank: try function("MPI_Comm_rank", CommQuery.self), commSize: try function("MPI_Comm_size", CommQuery.self),
            allreduce: try function("MPI_Allreduce", Allreduce.self), allgather: try function("MPI_Allgather", Allgather.self),
            allgatherv: try function("MPI_Allgatherv", Allgatherv.self), ibarrier: try function("MPI_Ibarrier", Ibarrier.self),
            test: try function("MPI_Test", Test.self), abort: try function("MPI_Abort", Abort.self),
            finalize: try function("MPI_Finalize", Finalize.self),
            world: Handle(try symbol("ompi_mpi_comm_world")), float: Handle(try symbol("ompi_mpi_float")),
            double: Handle(try symbol("ompi_mpi_double")), byte: Handle(try symbol("ompi_mpi_byte")),
            int: Handle(try symbol("ompi_mpi_int")), sum: Handle(try symbol("ompi_mpi_op_sum")))
    }

    /// The first of `libraryNames` that loads, globally (Open MPI's plug-ins resolve its symbols).
    private static func open() -> UnsafeMutableRawPointer? {
        for name in libraryNames { if let handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { return handle } }
        return nil
    }

    /// `MPI_Get_library_version` of the libmpi that loads (callable before joining a job), or nil.
    static func libraryVersion() -> String? {
        guard let library = open(), let pointer = dlsym(library, "MPI_Get_library_version") else { return nil }
        var text = [CChar](repeating: 0, count: 512)   // MPI_MAX_LIBRARY_VERSION_STRING is 256
        var length: Int32 = 0
        guard unsafeBitCast(pointer, to: LibraryVersion.self)(&text, &length) == success else { return nil }
        let version = String(cString: text).split(separator: ",").first.map(String.init) ?? ""
        return version.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func check(_ code: Int32, _ call: String) throws {
        guard code == OpenMPI.success else { throw ProcessGroupError("\(call) failed with MPI error \(code)") }
    }

    /// For calls inside collectives: with Open MPI's default error handler a failure already ends
    /// the job with its own message, so a code other than success means a broken library.
    func mustSucceed(_ code: Int32, _ call: String) {
        precondition(code == OpenMPI.success, "\(call) failed with MPI error \(code)")
    }

    /// Sums `count` values of `type` at `buffer` over the ranks, in place, in calls of at most 2³⁰ values.
    func sumInPlace<T>(_ buffer: UnsafeMutablePointer<T>, count: Int, type: Handle) {
        var done = 0
        while done < count {
            let n = min(count - done, 1 << 30)
            mustSucceed(allreduce(OpenMPI.inPlace, UnsafeMutableRawPointer(buffer + done), Int32(n), type, sum, world),
                        "MPI_Allreduce")
            done += n
        }
    }
}
