#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import AttribModels
import FoundationEssentials

/// The state of a sweep in its output directory, under OUT/.attrib-sweep/: how processes that
/// share a sweep meet (no sockets, no daemon: the file system is the only channel), and what a
/// resume reads.
///
///     run.json                       the sweep (fingerprint, command line) and the launch in charge
///     units/u000012/*.npy, meta.json a finished unit's outputs
///     manifest/rank-3.jsonl          one line per unit a rank finished: its files' sizes and CRC-32s
///     ranks/attempt-1-rank-3.json    each rank's throughput, for the summary
///     merge.lock                     taken by the one process that assembles the final files
///
/// A unit's files are written to a temporary directory and renamed into place before the
/// manifest records them: a record names files that were whole when written, and a unit without
/// one (a rank killed mid-unit) is simply computed again. Nothing is fsync'ed per unit: a killed
/// process loses nothing the kernel has, and after a host crash the sizes and CRC-32s catch a
/// file that did not reach the disk (the unit is then computed again).
public struct SweepDirectory: Sendable {
    public let root: String
    public var state: String { root + "/.attrib-sweep" }
    var runPath: String { state + "/run.json" }

    public init(_ root: String) { self.root = root }

    /// The sweep recorded in run.json.
    public struct Run: Codable, Equatable, Sendable {
        public var fingerprint: SweepFingerprint
        /// The command line (after the executable), and the directory it ran in: `attrib merge`
        /// replays it to assemble.
        public var arguments: [String]
        public var workingDirectory: String
        public var launchID: String?
        /// 1 for the first launch, +1 for each resume: names the per-rank statistics files.
        public var attempt: Int
        /// The units finished when this attempt began: every rank of the attempt shares out the
        /// others the same way, however late it starts.
        public var doneAtStart: [Int]
        public var complete: Bool
        public init(fingerprint: SweepFingerprint, arguments: [String], workingDirectory: String, launchID: String?, attempt: Int,
                    doneAtStart: [Int] = [], complete: Bool = false) {
            self.fingerprint = fingerprint; self.arguments = arguments; self.workingDirectory = workingDirectory
            self.launchID = launchID; self.attempt = attempt; self.doneAtStart = doneAtStart; self.complete = complete
        }
    }

    /// One manifest line: a finished unit.
    public struct UnitRecord: Codable, Equatable, Sendable {
        public var unit: Int
        /// File name → CRC-32 (hex) and size.
        public var files: [String: String]
        public var bytes: [String: Int]
        public var rank: Int
        public var attempt: Int
        public var device: String
        public var host: String
        public var seconds: Double
        /// false: a later check found a file damaged; the unit is computed again.
        public var valid: Bool
        /// This record's own id (host, process, time), and for an invalid one the id of the record it
        /// withdraws: manifests are one file per rank, read in no particular order, so a
        /// withdrawal names what it withdraws rather than relying on coming later.
        public var id: String
        public var withdraws: String?
    }

    /// One rank's work in one attempt.
    public struct RankStats: Codable, Equatable, Sendable {
        public var rank: Int
        public var size: Int
        public var launcher: String
        public var host: String
        public var devices: [String]
        public var attempt: Int
        public var units: Int
        public var items: Int
        public var rowsEvaluated: Int
        /// Wall time from this rank's first unit to its last.
        public var seconds: Double
        public init(rank: Int, size: Int, launcher: String, host: String, devices: [String], attempt: Int, units: Int, items: Int, rowsEvaluated: Int, seconds: Double) {
            self.rank = rank; self.size = size; self.launcher = launcher; self.host = host; self.devices = devices
            self.attempt = attempt; self.units = units; self.items = items; self.rowsEvaluated = rowsEvaluated; self.seconds = seconds
        }
    }

    // MARK: run.json

    public func readRun() throws -> Run? {
        guard let bytes = readFileBytes(runPath) else { return nil }
        do { return try JSONDecoder().decode(Run.self, from: Data(bytes)) } catch {
            throw AttribError.io(path: runPath, detail: "is not a sweep record this version reads (\(error)); delete \(state) to start over")
        }
    }

    /// Writes run.json only if there is none (a temporary file hard-linked into place: link(2)
    /// fails when the name exists, so of ranks starting together exactly one creates it).
    public func createRun(_ run: Run) throws -> Bool {
        try makeDirectory(state)
        let tmp = runPath + ".\(getpid()).tmp"
        try writeFile(try Self.encoder.encode(run), to: tmp)
        defer { unlink(tmp) }
        if link(tmp, runPath) == 0 { return true }
        if errno == EEXIST { return false }
        throw AttribError.io(path: runPath, detail: "cannot create: \(String(cString: strerror(errno)))")
    }

    /// Replaces run.json atomically (rename).
    public func replaceRun(_ run: Run) throws {
        try makeDirectory(state)
        let tmp = runPath + ".\(getpid()).tmp"
        try writeFile(try Self.encoder.encode(run), to: tmp)
        guard rename(tmp, runPath) == 0 else { throw AttribError.io(path: runPath, detail: "cannot replace: \(String(cString: strerror(errno)))") }
    }

    // MARK: units

    public func unitDirectory(_ u: Int) -> String {
        let s = String(u)
        return state + "/units/u" + String(repeating: "0", count: max(0, 6 - s.count)) + s
    }

    /// Writes unit `u`'s files with `write` (given a directory to write into), then moves them into
    /// place and records them in this rank's manifest.
    public func commitUnit(_ u: Int, rank: Int, attempt: Int, device: String, seconds: Double,
                           write: (String) throws -> Void) throws -> UnitRecord {
        let final = unitDirectory(u), tmp = final + ".tmp-\(getpid())"
        try removeTree(tmp)
        try makeDirectory(tmp)
        try write(tmp)
        var files: [String: String] = [:], bytes: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: tmp) {
            let (c, b) = try Checksum.crc32(file: tmp + "/" + name)
            files[name] = c; bytes[name] = b
        }
        try removeTree(final)        // an earlier attempt's unrecorded copy
        guard rename(tmp, final) == 0 else { throw AttribError.io(path: final, detail: "cannot move the unit's files into place: \(String(cString: strerror(errno)))") }
        let record = UnitRecord(unit: u, files: files, bytes: bytes, rank: rank, attempt: attempt, device: device, host: Self.hostName,
                                seconds: seconds, valid: true, id: Self.recordID(u), withdraws: nil)
        try append(record, rank: rank)
        return record
    }

    func append(_ record: UnitRecord, rank: Int) throws {
        try makeDirectory(state + "/manifest")
        let path = state + "/manifest/rank-\(rank).jsonl"
        var line = Array(try JSONEncoder().encode(record)); line.append(0x0A)
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw AttribError.io(path: path, detail: "cannot open the manifest: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // A rank killed mid-append left a torn last line: end it, so this record stands on its own.
        var st = stat(), last: UInt8 = 0x0A
        if fstat(fd, &st) == 0, st.st_size > 0, pread(fd, &last, 1, st.st_size - 1) == 1, last != 0x0A { line.insert(0x0A, at: 0) }
        // One write of the whole line: O_APPEND keeps lines of one file whole.
        let n = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == line.count else { throw AttribError.io(path: path, detail: "cannot append to the manifest: \(String(cString: strerror(errno)))") }
    }

    /// The finished units: the last record of each unit across every rank's manifest, where it
    /// is valid and its files are there at the recorded sizes (a torn last line is skipped).
    public func finishedUnits() -> [Int: UnitRecord] {
        var records: [UnitRecord] = []
        let dir = state + "/manifest"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() where name.hasSuffix(".jsonl") {
            guard let bytes = readFileBytes(dir + "/" + name) else { continue }
            for line in bytes.split(separator: 0x0A) {
                if let r = try? JSONDecoder().decode(UnitRecord.self, from: Data(line)) { records.append(r) }
            }
        }
        let withdrawn = Set(records.compactMap(\.withdraws))
        var out: [Int: UnitRecord] = [:]
        for r in records where r.valid && !withdrawn.contains(r.id) {
            let whole = r.files.allSatisfy { name, _ in
                var st = stat()
                return stat(unitDirectory(r.unit) + "/" + name, &st) == 0 && Int(st.st_size) == r.bytes[name]
            }
            if whole { out[r.unit] = r }
        }
        return out
    }

    /// Checks unit `u`'s files against their recorded CRC-32s; a damaged unit is marked invalid
    /// in the manifest (so a resume computes it again) and reported by name.
    public func verify(_ r: UnitRecord, rank: Int) throws {
        for (name, crc) in r.files.sorted(by: { $0.key < $1.key }) {
            let path = unitDirectory(r.unit) + "/" + name
            let actual = try Checksum.crc32(file: path).crc
            if actual != crc {
                var bad = r
                bad.valid = false; bad.withdraws = r.id; bad.id = Self.recordID(r.unit); bad.rank = rank
                try append(bad, rank: rank)
                throw AttribError.io(path: path, detail: "fails its checksum (recorded \(crc), now \(actual)): the unit is marked for recomputation; run the same command with --resume")
            }
        }
    }

    /// Reads unit `u`'s arrays and meta.json, checking their checksums first.
    public func loadUnit(_ r: UnitRecord, rank: Int) throws -> (arrays: [String: NPYArray], meta: Data) {
        try verify(r, rank: rank)
        var arrays: [String: NPYArray] = [:]
        var meta = Data("{}".utf8)
        for name in r.files.keys {
            let path = unitDirectory(r.unit) + "/" + name
            if name.hasSuffix(".npy") { arrays[String(name.dropLast(4))] = try NPY.read(path) }
            else if name == "meta.json", let b = readFileBytes(path) { meta = Data(b) }
        }
        return (arrays, meta)
    }

    // MARK: ranks, locks, logs

    public func writeStats(_ s: RankStats) throws {
        try makeDirectory(state + "/ranks")
        try writeFile(try Self.encoder.encode(s), to: state + "/ranks/attempt-\(s.attempt)-rank-\(s.rank).json")
    }

    public func stats() -> [RankStats] {
        let dir = state + "/ranks"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().compactMap { name in
            readFileBytes(dir + "/" + name).flatMap { try? JSONDecoder().decode(RankStats.self, from: Data($0)) }
        }.sorted { ($0.attempt, $0.rank) < ($1.attempt, $1.rank) }
    }

    /// Takes the merge lock; false when another process holds it.
    public func takeMergeLock() throws -> Bool {
        try makeDirectory(state)
        let fd = open(state + "/merge.lock", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { return false }
        let pid = Array("\(getpid()) \(Self.hostName)\n".utf8)
        _ = pid.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return true
    }

    public func releaseMergeLock() { unlink(state + "/merge.lock") }

    /// Takes the right to start attempt `attempt` (one process of a new launch does; the others
    /// wait for its run.json).
    public func takeAttempt(_ attempt: Int) throws -> Bool {
        try makeDirectory(state)
        let fd = open(state + "/attempt-\(attempt).lock", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// Appends a line to OUT/logs/rank-R.log.
    public func log(rank: Int, _ line: String) {
        try? makeDirectory(root + "/logs")
        let fd = open(root + "/logs/rank-\(rank).log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Deletes every unit's files (after the final files are assembled).
    public func removeUnits() throws { try removeTree(state + "/units") }

    /// Deletes the whole sweep state (a run that starts over).
    public func removeState() throws { try removeTree(state) }

    // MARK: helpers

    /// A record id no other process makes: host, process id, clock, unit.
    static func recordID(_ u: Int) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return "\(hostName)-\(getpid())-\(ts.tv_sec).\(ts.tv_nsec)-\(u)"
    }

    public static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "unknown" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw AttribError.io(path: path, detail: "cannot create the directory: \(String(cString: strerror(errno)))")
        }
    }

    func writeFile(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw AttribError.io(path: path, detail: "cannot write: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let n = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == data.count, fsync(fd) == 0 else { throw AttribError.io(path: path, detail: "cannot write: \(String(cString: strerror(errno)))") }
    }

    func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw AttribError.io(path: path, detail: "cannot remove: \(error)")
        }
    }
}
