#if canImport(Glibc)
import Glibc
#endif
import Attrib
import FoundationEssentials
import Synchronization

/// An array a unit writes: its values and shape (the first dimension is the unit's items).
enum UnitArray: Sendable {
    case float32([Float], shape: [Int]), float64([Double], shape: [Int]), int32([Int32], shape: [Int])
    func write(to path: String) throws {
        switch self {
        case let .float32(v, s): try NPY.write(v, shape: s, to: path)
        case let .float64(v, s): try NPY.write(v, shape: s, to: path)
        case let .int32(v, s): try NPY.write(v, shape: s, to: path)
        }
    }
}

/// What one unit of a sweep produced.
struct UnitOutput: Sendable {
    var arrays: [String: UnitArray] = [:]
    var meta: [String: JSONValue] = [:]
    /// Items (inputs or pairs) finished; fewer than the unit's only when interrupted.
    var items: Int
    var interrupted = false
    var rowsEvaluated = 0
}

/// A unit read back for the final files.
struct LoadedUnit {
    var arrays: [String: NPYArray]
    var meta: [String: JSONValue]
    /// Concatenates one array over units along the first dimension.
    static func concatenated(_ units: [LoadedUnit], _ name: String) -> (values: [Double], shape: [Int])? {
        let parts = units.compactMap { $0.arrays[name] }
        guard parts.count == units.count, let first = parts.first else { return nil }
        let rows = parts.reduce(0) { $0 + ($1.shape.first ?? 0) }
        return (parts.flatMap { $0.doubles() }, [rows] + first.shape.dropFirst())
    }
    /// Sums a number of every unit's meta.
    static func sum(_ units: [LoadedUnit], _ key: String) -> Double { units.reduce(0) { $0 + ($1.meta[key]?.double ?? 0) } }
}

/// The device a worker of a sweep runs on and how it computes a unit (items `range`).
struct SweepWorker: @unchecked Sendable {
    var device: String
    var compute: (Range<Int>, SweepControl) throws -> UnitOutput
}

/// `attrib merge DIR` sets this: the command replays the sweep's command line and only assembles.
nonisolated(unsafe) var mergeOnlyMode = false

/// A sweep cut into units (WorkUnits), spread over this process's devices and over the processes
/// of a launch (LaunchEnvironment), recorded unit by unit in the output directory
/// (SweepDirectory) so that a resume runs only what is missing, and assembled into the same files
/// as a one-process run by whichever process finishes last (or by `attrib merge`).
final class ShardedSweep {
    let dir: SweepDirectory
    let launch: LaunchEnvironment
    let units: WorkUnits
    let options: SweepOptions
    let fingerprint: SweepFingerprint
    let label: String
    let itemName: String
    let explicitOut: Bool
    private(set) var run: SweepDirectory.Run?

    /// Operational options: where outputs go, how progress shows, which devices, how batches are
    /// sized, resume and sharding. They do not change a unit's numbers beyond device rounding,
    /// so a resume may change them.
    static let operational: Set<String> = ["--out", "--force", "--quiet", "--json", "--resume", "--device", "--batch", "--keep-units",
                                           "--shard", "--no-heatmaps", "--heatmaps", "--heatmap-scale", "--top", "--warmup"]

    /// `files`: role → path of every file the results depend on (digested into the fingerprint).
    init(command: String, out: String, explicitOut: Bool, options: SweepOptions, items: Int, unitSize: Int,
         files: [String: String], contentChecked: Set<String>, itemName: String = "inputs") throws {
        self.dir = SweepDirectory(out)
        self.launch = try LaunchEnvironment.detect(ProcessInfo.processInfo.environment, shard: options.shard)
        self.units = WorkUnits(items: items, unitSize: options.chunk ?? unitSize)
        self.options = options
        self.label = command
        self.itemName = itemName
        self.explicitOut = explicitOut
        var digests: [String: [SweepFingerprint.FileDigest]] = [:]
        for (role, path) in files { digests[role] = try SweepFingerprint.digest(path) }
        let args = Array(sweepArguments.dropFirst())
        self.fingerprint = SweepFingerprint(command: command, files: digests,
                                            options: SweepFingerprint.options(args, operational: Self.operational, contentChecked: contentChecked),
                                            items: items, unitSize: self.units.unitSize)
    }

    /// The result of `execute`: every unit read back in order (this process assembles), nil when
    /// another process will; `interrupted` when Ctrl-C stopped it (the units are a finished prefix,
    /// plus the unfinished unit's finished items where it follows them).
    struct Outcome {
        var units: [LoadedUnit]?
        var interrupted = false
        var alreadyComplete = false
        var stats: [SweepDirectory.RankStats] = []
    }

    // MARK: preparing the directory

    func refuse(_ detail: String) -> AttribError { AttribError.io(path: dir.root, detail: detail) }

    func mismatch(_ old: SweepDirectory.Run) -> String? {
        let d = fingerprint.differences(from: old.fingerprint)
        return d.isEmpty ? nil : "holds a sweep of other work: \(d.joined(separator: "; ")). Give another --out, or --force to start over"
    }

    /// Creates, joins or resumes the sweep in the output directory; the run in force.
    func prepare() throws -> SweepDirectory.Run {
        let cwd = FileManager.default.currentDirectoryPath
        let args = sweepArguments
        if mergeOnlyMode {
            guard let r = try dir.readRun() else { throw refuse("holds no sweep to merge (no .attrib-sweep/run.json)") }
            if let m = mismatch(r) { throw refuse(m) }
            return r
        }
        try OutputDirectory.prepare(dir.root, explicit: false, force: true)
        let existing = try dir.readRun()
        if launch.size == 1 {
            if let old = existing, options.resume {
                if let m = mismatch(old) { throw refuse(m) }
                var r = old
                r.attempt += 1; r.launchID = nil; r.arguments = args; r.workingDirectory = cwd
                r.doneAtStart = old.complete ? [] : dir.finishedUnits().keys.sorted()
                if !old.complete { try dir.replaceRun(r) }
                return r
            }
            if let old = existing, !old.complete, explicitOut, !options.force {
                throw refuse("holds an unfinished sweep (\(dir.finishedUnits().count) of \(old.fingerprint.items == 0 ? 0 : WorkUnits(items: old.fingerprint.items, unitSize: old.fingerprint.unitSize).count) units done); give --resume to continue it, --force to start over, or another --out")
            }
            try OutputDirectory.prepare(dir.root, explicit: explicitOut, force: options.force || !explicitOut)
            try dir.removeState()
            let r = SweepDirectory.Run(fingerprint: fingerprint, arguments: args, workingDirectory: cwd, launchID: nil, attempt: 1)
            try dir.replaceRun(r)
            return r
        }
        // Several processes: the first to arrive creates or takes over the sweep; the others join.
        let mine = launch.launchID
        if existing == nil {
            if explicitOut && !options.force, let f = OutputDirectory.resultFiles.first(where: { FileManager.default.fileExists(atPath: dir.root + "/" + $0) }) {
                throw refuse("holds the results of an earlier run (\(f)); give --force to overwrite them, or another --out")
            }
            let r = SweepDirectory.Run(fingerprint: fingerprint, arguments: args, workingDirectory: cwd, launchID: mine, attempt: 1)
            if try dir.createRun(r) { return r }
        }
        let deadline = ContinuousClock.now + .seconds(Self.joinSeconds)
        while true {
            guard let r = try dir.readRun() else { throw refuse("its sweep record vanished while joining") }
            if let m = mismatch(r) { throw refuse(m) }
            // This launch's sweep; without a launch id (--shard, a launcher that gives none), any
            // unfinished sweep of the same work: its units are the same numbers whoever computes them.
            if mine != nil && r.launchID == mine || mine == nil && !r.complete && r.launchID == nil {
                return r
            }
            guard options.resume else {
                throw refuse(r.complete ? "holds the results of a finished sweep; give another --out"
                                        : "holds an unfinished sweep of an earlier launch; give --resume to continue it (with several processes, --force cannot start over: delete \(dir.state) first)")
            }
            if r.complete { return r }
            if try dir.takeAttempt(r.attempt + 1) {
                var n = r
                n.attempt += 1; n.launchID = mine; n.arguments = args; n.workingDirectory = cwd
                n.doneAtStart = dir.finishedUnits().keys.sorted()
                try dir.replaceRun(n)
                return n
            }
            guard ContinuousClock.now < deadline else {
                throw refuse("waited \(Self.joinSeconds) s for the process that resumes this sweep to record it, in vain; is another launch writing here?")
            }
            usleep(50_000)
        }
    }

    /// How long a rank waits for the one that takes over a resumed sweep (ATTRIB_JOIN_SECONDS).
    static var joinSeconds: Int { Int(ProcessInfo.processInfo.environment["ATTRIB_JOIN_SECONDS"] ?? "") ?? 120 }

    // MARK: running

    /// Runs this process's share of the units on `workers` (one thread each, taking units as they
    /// free up), records each, and, where every unit is then finished and this process takes the
    /// merge lock, reads them all back.
    func execute(workers: [SweepWorker]) throws -> Outcome {
        let r = try prepare()
        run = r
        if r.complete {
            return Outcome(units: nil, alreadyComplete: true)
        }
        var partial: (unit: Int, output: UnitOutput)?
        var interrupted = false
        if !mergeOnlyMode {
            // The share is fixed by the attempt's record (every rank cuts the same way); of it, what
            // is already finished (this rank's own work before a restart under --shard) is skipped.
            let finishedNow = dir.finishedUnits()
            let share = units.share(rank: launch.rank, size: launch.size, done: Set(r.doneAtStart)).filter { finishedNow[$0] == nil }
            (partial, interrupted) = try compute(share, workers: workers, attempt: r.attempt)
        }
        let finished = dir.finishedUnits()
        if interrupted {
            guard launch.size == 1 else { return Outcome(units: nil, interrupted: true) }
            // One process: what is finished in order from the first unit, then the unfinished one.
            var loaded: [LoadedUnit] = []
            var u = 0
            while let rec = finished[u] { loaded.append(try load(rec)); u += 1 }
            // The unfinished unit counts only where it is the first unfinished one (with several
            // devices another may have stopped first: its items would not follow the prefix).
            if let p = partial, p.unit == u, p.output.items > 0 {
                loaded.append(LoadedUnit(arrays: try p.output.arrays.mapValues { try $0.inMemory() }, meta: p.output.meta))
            }
            return Outcome(units: loaded, interrupted: true, stats: dir.stats())
        }
        guard finished.count == units.count else {
            if mergeOnlyMode {
                let missing = (0..<units.count).filter { finished[$0] == nil }
                throw refuse("\(missing.count) of \(units.count) units are not finished (first: unit \(missing[0]), \(itemName) \(units.range(missing[0]).lowerBound)…); run the command again with --resume to compute them")
            }
            return Outcome(units: nil)
        }
        guard try dir.takeMergeLock() else { return Outcome(units: nil) }
        let loaded = try (0..<units.count).map { try load(finished[$0]!) }
        return Outcome(units: loaded, stats: dir.stats())
    }

    func load(_ rec: SweepDirectory.UnitRecord) throws -> LoadedUnit {
        let (arrays, metaData) = try dir.loadUnit(rec, rank: launch.rank)
        let meta = (try? JSONDecoder().decode([String: JSONValue].self, from: metaData)) ?? [:]
        return LoadedUnit(arrays: arrays, meta: meta)
    }

    /// After the final files are written: the sweep is complete, its units' files go (unless
    /// --keep-units), the merge lock is released.
    func finish() throws {
        guard var r = run else { return }
        r.complete = true
        try dir.replaceRun(r)
        if !options.keepUnits { try dir.removeUnits() }
        dir.releaseMergeLock()
    }

    /// Runs `share` on the workers; the unfinished unit (when interrupted) and whether it was.
    private func compute(_ share: [Int], workers: [SweepWorker], attempt: Int) throws -> ((unit: Int, output: UnitOutput)?, Bool) {
        let next = Mutex(0)
        let stop = Atomic<Bool>(false)
        let failure = Mutex<(any Error)?>(nil)
        let partialBox = Mutex<(unit: Int, output: UnitOutput)?>(nil)
        let committed = Atomic<Int>(0)
        let rowsDone = Atomic<Int>(0)
        let killAfter = Int(ProcessInfo.processInfo.environment["ATTRIB_FAULT_KILL_AFTER_UNITS"] ?? "")
        let shareItems = share.reduce(0) { $0 + self.units.range($1).count }
        let bar = ProgressBar(launch.size > 1 ? "\(label) [rank \(launch.rank)]" : label, inputs: shareItems,
                              quiet: options.quiet || options.json)
        // Progress in items: finished units' items plus each worker's fraction of its unit.
        let progress = Mutex((finished: 0, current: [Double](repeating: 0, count: workers.count)))
        let clock = ContinuousClock(), start = clock.now
        let dir = self.dir, units = self.units, launch = self.launch, itemName = self.itemName
        if launch.size > 1 || workers.count > 1 {
            dir.log(rank: launch.rank, "\(Date()) \(label): \(launch), \(share.count) of \(units.count) units (\(shareItems) \(itemName)) on \(workers.map(\.device).joined(separator: ", ")); attempt \(attempt)")
        }
        runOnThreads(workers.count) { w in
            let worker = workers[w]
            // Ctrl-C stops at the batch in hand, and before the next unit: a unit that fits in one
            // batch never reports itself interrupted.
            while !stop.load(ordering: .relaxed) && !interruptRequested.load(ordering: .relaxed) {
                let k: Int? = next.withLock { i in
                    guard i < share.count else { return nil }
                    defer { i += 1 }
                    return i
                }
                guard let k else { return }
                let u = share[k], range = units.range(u)
                let control = SweepControl(progress: { d, t in
                    let line = progress.withLock { p -> (Int, Int) in
                        p.current[w] = t > 0 ? Double(d) / Double(t) * Double(range.count) : 0
                        return (Int((Double(p.finished) + p.current.reduce(0, +)) * 1000), shareItems * 1000)
                    }
                    bar.update(line.0, line.1)
                }, shouldStop: { interruptRequested.load(ordering: .relaxed) })
                let t0 = clock.now
                do {
                    let out = try worker.compute(range, control)
                    if out.interrupted || out.items < range.count {
                        partialBox.withLock { $0 = (u, out) }
                        stop.store(true, ordering: .relaxed)
                        return
                    }
                    let seconds = (clock.now - t0).seconds
                    var meta = out.meta
                    meta["items"] = .int(out.items); meta["rowsEvaluated"] = .int(out.rowsEvaluated); meta["seconds"] = .double(seconds)
                    meta["device"] = .string(worker.device); meta["rank"] = .int(launch.rank)
                    let metaData = try JSONEncoder().encode(meta)
                    _ = try dir.commitUnit(u, rank: launch.rank, attempt: attempt, device: worker.device, seconds: seconds) { tmp in
                        for (name, a) in out.arrays { try a.write(to: "\(tmp)/\(name).npy") }
                        try OutputDirectory.write(metaData, to: tmp + "/meta.json")
                    }
                    rowsDone.add(out.rowsEvaluated, ordering: .relaxed)
                    progress.withLock { p in p.finished += range.count; p.current[w] = 0 }
                    if launch.size > 1 || workers.count > 1 {
                        dir.log(rank: launch.rank, "\(Date()) unit \(u) (\(itemName) \(range.lowerBound)..<\(range.upperBound)) on \(worker.device): \(fixed(seconds, 3)) s")
                    }
                    let c = committed.add(1, ordering: .relaxed).newValue
                    if let killAfter, c >= killAfter {
                        // Fault injection for the resume tests: die as a killed rank does, mid-sweep.
                        raise(SIGKILL)
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    stop.store(true, ordering: .relaxed)
                    return
                }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        let seconds = (clock.now - start).seconds
        let p = partialBox.withLock { $0 }
        let items = progress.withLock { $0.finished }
        try dir.writeStats(SweepDirectory.RankStats(rank: launch.rank, size: launch.size, launcher: launch.launcher, host: SweepDirectory.hostName,
                                                    devices: workers.map(\.device), attempt: attempt, units: committed.load(ordering: .relaxed),
                                                    items: items, rowsEvaluated: rowsDone.load(ordering: .relaxed), seconds: seconds))
        return (p, p != nil || interruptRequested.load(ordering: .relaxed) && committed.load(ordering: .relaxed) < share.count)
    }

    /// What a process that does not assemble says: the sweep was complete already, or another
    /// process writes the final files; an interrupted one exits as Ctrl-C does (130).
    func reportUnassembled(_ outcome: Outcome, json: Bool) {
        if outcome.alreadyComplete { print("\(dir.root) holds this sweep, complete; nothing to do") }
        else if !outcome.interrupted, !json { print("\(label): \(launch) finished its share; the last process to finish writes the final files in \(dir.root)") }
        if outcome.interrupted { AttributionOptions.exitInterrupted() }
    }

    /// Per-rank throughput for summary.json.
    static func rankSummary(_ stats: [SweepDirectory.RankStats]) -> JSONValue {
        .array(stats.map { s in
            .object(["rank": .int(s.rank), "size": .int(s.size), "launcher": .string(s.launcher), "host": .string(s.host),
                     "devices": .array(s.devices.map { .string($0) }), "attempt": .int(s.attempt), "units": .int(s.units),
                     "items": .int(s.items), "seconds": .double(s.seconds), "rowsEvaluated": .int(s.rowsEvaluated),
                     "itemsPerSecond": .double(Double(s.items) / max(s.seconds, 1e-9))])
        })
    }

    /// Wall time of the sweep for the summary: the slowest rank of each attempt, summed over attempts.
    static func wallSeconds(_ stats: [SweepDirectory.RankStats]) -> Double {
        Dictionary(grouping: stats, by: \.attempt).values.reduce(0) { $0 + ($1.map(\.seconds).max() ?? 0) }
    }
}

extension UnitArray {
    /// The array as a file would hold it, for an unfinished unit kept in memory.
    func inMemory() throws -> NPYArray {
        switch self {
        case let .float32(v, s): return NPYArray(shape: s, dtype: .float32, data: v.withUnsafeBytes { Array($0) })
        case let .float64(v, s): return NPYArray(shape: s, dtype: .float64, data: v.withUnsafeBytes { Array($0) })
        case let .int32(v, s): return NPYArray(shape: s, dtype: .int32, data: v.withUnsafeBytes { Array($0) })
        }
    }
}

/// Runs `body(i)` for i in 0..<n, each on its own thread (one per device: a device's calls stay on
/// one thread), and waits for all.
func runOnThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    if n == 1 { body(0); return }
    final class Box: @unchecked Sendable { let run: () -> Void; init(_ r: @escaping () -> Void) { run = r } }
    var threads: [pthread_t] = []
    for i in 0..<n {
        let box = Unmanaged.passRetained(Box { body(i) }).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { p in
            let b = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
            b.run()
            return nil
        }, box)
        if rc != 0 { Unmanaged<Box>.fromOpaque(box).takeRetainedValue().run() } else { threads.append(t) }
    }
    for t in threads { pthread_join(t, nil) }
}
