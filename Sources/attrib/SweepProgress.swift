#if canImport(Glibc)
import Glibc
#endif
import Attrib
import Synchronization

/// Set by the first Ctrl-C: sweeps finish the device batch in hand and keep
/// what is complete. A second Ctrl-C exits at once.
let interruptRequested = Atomic<Bool>(false)

/// Installs the SIGINT handler for a sweep.
func installInterruptHandler() {
    // A launcher may start us with SIGINT blocked (a parent's dispatch thread, some job
    // runners): then Ctrl-C, or mpirun's forwarded SIGINT, would stay pending forever.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    signal(SIGINT) { _ in
        if interruptRequested.exchange(true, ordering: .relaxed) { _exit(130) }
        let msg = "\ninterrupt: finishing the current batch and saving what is done (Ctrl-C again to quit now)\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
    }
}

/// A one-line progress bar on standard error, drawn only on a terminal and at
/// most ten times a second.
final class ProgressBar: @unchecked Sendable {
    let label: String
    let inputs: Int
    let enabled: Bool
    let clock = ContinuousClock()
    let start: ContinuousClock.Instant
    var last: ContinuousClock.Instant
    let lock = Mutex(())

    /// `inputs`: how many inputs the sweep covers; the line counts those, not device rows.
    init(_ label: String, inputs: Int, quiet: Bool = false) {
        self.label = label; self.inputs = inputs
        enabled = !quiet && isatty(2) == 1
        start = clock.now; last = start
    }

    func update(_ done: Int, _ total: Int) {
        guard enabled else { return }
        lock.withLock { _ in
            let now = clock.now
            guard done == total || (now - last).seconds >= 0.1 else { return }
            last = now
            let line = SweepProgressLine.text(label: label, rowsDone: done, rowsTotal: total, inputs: inputs, elapsedSeconds: (now - start).seconds)
            writeStandardError("\r" + line + " " + (done == total ? "\n" : ""))
        }
    }

    var control: SweepControl {
        SweepControl(progress: { [self] d, t in update(d, t) },
                     shouldStop: { interruptRequested.load(ordering: .relaxed) })
    }
}

