import Dispatch
import Foundation
import VQDiffusion

/// Marks open runs KILLED when the process receives SIGINT or SIGTERM, then lets the signal end
/// the process as it would have.
///
/// The approach: a real signal handler may only call async-signal-safe functions, and SQLite
/// (locks, malloc) is not one. So nothing is written in signal context: the signals are observed
/// through dispatch signal sources (libdispatch's own minimal handler only records the signal;
/// SIG_IGN is set first so that nothing happens before the source is armed). The event handler
/// then runs on an ordinary queue thread, takes each open run's database lock (waiting for a
/// write in progress on the training thread to finish), writes the buffered entries, sets status
/// KILLED and the tag `sys.end_reason`, restores the default action and re-raises the signal, so
/// the exit status still says "killed by SIGTERM" (or SIGINT). A process that dies without a
/// catchable signal (SIGKILL, a crash, power loss) leaves its run RUNNING; the next
/// `ResultsDatabase` opened on this host sees that the recorded pid is gone and marks it KILLED.
///
/// This is the one piece of process-wide state in the results code: signals belong to the process.
final class RunTermination: @unchecked Sendable {
    static let shared = RunTermination()

    private final class WeakRun {
        weak var run: Run?
        init(_ run: Run) { self.run = run }
    }

    private let lock = NSLock()
    private var runs: [ObjectIdentifier: WeakRun] = [:]
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "run-termination")
    static let signals: [(Int32, String)] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")]

    func register(_ run: Run) {
        lock.lock()
        defer { lock.unlock() }
        runs[ObjectIdentifier(run)] = WeakRun(run)
        guard sources.isEmpty else { return }
        for (number, name) in Self.signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in self.terminate(signal: number, name: name) }
            source.resume()
            sources.append(source)
        }
    }

    func unregister(_ run: Run) {
        lock.lock()
        runs[ObjectIdentifier(run)] = nil
        lock.unlock()
    }

    private func terminate(signal number: Int32, name: String) {
        lock.lock()
        let open = runs.values.compactMap(\.run)
        lock.unlock()
        for run in open { run.markKilled(reason: "signal \(name)") }
        signal(number, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        raise(number)
        _exit(128 + number)
    }
}
