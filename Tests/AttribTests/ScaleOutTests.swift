import Attrib
@testable import AttribMethods
import Foundation
import Testing

/// Issue 19's pieces on their own: launchers' variables, the cut into units, random draws per
/// unit equal to the whole sweep's, fingerprints, and the manifest's checks.
@Suite struct ScaleOutUnitTests {
    @Test func launchers() throws {
        #expect(try LaunchEnvironment.detect([:]) == .single)
        let ompi = try LaunchEnvironment.detect(["OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                                                 "OMPI_MCA_ess_base_jobid": "99"])
        #expect(ompi.rank == 2 && ompi.size == 3 && ompi.localRank == 1 && ompi.launcher == "open-mpi" && ompi.launchID == "99")
        let mpich = try LaunchEnvironment.detect(["PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1"])
        #expect(mpich.rank == 1 && mpich.size == 4 && mpich.launcher == "mpich")
        let srun = try LaunchEnvironment.detect(["SLURM_STEP_ID": "0", "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "77"])
        #expect(srun.rank == 5 && srun.size == 8 && srun.localRank == 1 && srun.launchID == "slurm-77.0")
        // A batch script's own environment names the allocation's task count, not a launch.
        #expect(try LaunchEnvironment.detect(["SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "77"]) == .single)
        let array = try LaunchEnvironment.detect(["SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2",
                                                  "SLURM_ARRAY_TASK_COUNT": "5", "SLURM_ARRAY_JOB_ID": "500", "SLURM_JOB_ID": "503"])
        #expect(array.rank == 2 && array.size == 5 && array.launchID == "slurm-array-500")
        // srun with 2 tasks inside each of 5 array tasks: 10 ranks.
        let both = try LaunchEnvironment.detect(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "5", "SLURM_ARRAY_JOB_ID": "500",
                                                 "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2"])
        #expect(both.rank == 7 && both.size == 10)
        let shard = try LaunchEnvironment.detect(["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"], shard: "3/4")
        #expect(shard.rank == 3 && shard.size == 4 && shard.launchID == nil, "--shard wins over the launcher")
        for bad in ["4/4", "1", "a/2", "-1/3"] {
            #expect(throws: AttribError.self) { try LaunchEnvironment.detect([:], shard: bad) }
        }
        #expect(throws: AttribError.self) { try LaunchEnvironment.detect(["OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "3"]) }
        #expect(throws: AttribError.self) { try LaunchEnvironment.detect(["PMI_RANK": "x", "PMI_SIZE": "3"]) }
    }

    @Test func unitsPartitionTheSweep() {
        let w = WorkUnits(items: 103, unitSize: 10)
        #expect(w.count == 11 && w.range(10) == 100..<103)
        for size in 1...4 {
            let done: Set<Int> = [1, 4]
            let shares = (0..<size).map { w.share(rank: $0, size: size, done: done) }
            let all = shares.flatMap { $0 }
            #expect(all.count == Set(all).count, "no unit twice")
            #expect(Set(all) == Set(0..<11).subtracting(done), "every open unit once")
            #expect(shares.map(\.count).max()! - shares.map(\.count).min()! <= 1, "shares differ by at most one unit")
        }
        // ~16384 rows per unit, fewer when the host buffers would pass 512 MiB.
        #expect(WorkUnits.defaultSize(rowsPerItem: 64, valuesPerItem: 64) == 256)
        #expect(WorkUnits.defaultSize(rowsPerItem: 32, valuesPerItem: 150_528) == 13)
        #expect(WorkUnits.defaultSize(rowsPerItem: 1_000_000, valuesPerItem: 10) == 1)
    }

    /// Each unit draws exactly what a whole-sweep run draws for its inputs, at odd offsets too
    /// (Box–Muller pairs straddle unit boundaries).
    @Test func unitDrawsEqualTheWholeSweeps() throws {
        let n = 7, s = 3, d = 5
        let all = try GradientMethods.Noise.gaussian(sigma: 0.3, seed: 11).forInputs(0..<n, samples: s, d: d).values(n: n, samples: s, d: d)
        for r in [0..<1, 1..<4, 3..<7, 6..<7] {
            let unit = GradientMethods.Noise.gaussian(sigma: 0.3, seed: 11).forInputs(r, samples: s, d: d)
            #expect(try unit.values(n: r.count, samples: s, d: d) == Array(all[(r.lowerBound * s * d)..<(r.upperBound * s * d)]))
            // A unit of a unit (a resumed shard's inputs) still reads the whole sweep's stream.
            let inner = unit.forInputs(1..<r.count, samples: s, d: d)
            #expect(try inner.values(n: r.count - 1, samples: s, d: d) == Array(all[((r.lowerBound + 1) * s * d)..<(r.upperBound * s * d)]))
        }
        let full = GradientMethods.ExpectationDraws.random(n: n, samples: s, baselines: 4, d: d, sigma: 0.2, seed: 5)
        for r in [0..<2, 2..<5, 5..<7] {
            let part = GradientMethods.ExpectationDraws.random(n: n, samples: s, baselines: 4, d: d, sigma: 0.2, seed: 5, inputs: r)
            let rows = (r.lowerBound * s)..<(r.upperBound * s)
            #expect(part.baselineIndex == Array(full.baselineIndex[rows]) && part.alpha == Array(full.alpha[rows]))
            #expect(part.noise! == Array(full.noise![(r.lowerBound * s * d)..<(r.upperBound * s * d)]))
        }
        let base = Baseline.uniform(-1, 1, seed: 9)
        let (wv, _) = try base.resolve(inputs: [Double](repeating: 0, count: n * d), n: n, sampleShape: [d])
        for r in [0..<3, 3..<7] {
            guard case .values(let v, let rows) = base.forInputs(r, of: n, d: d) else { Issue.record("expected values"); continue }
            #expect(rows == r.count && v == Array(wv[(r.lowerBound * d)..<(r.upperBound * d)]))
        }
        var a = SplitMix64(seed: 3), b = SplitMix64(seed: 3, skipping: 10)
        for _ in 0..<10 { _ = a.next() }
        #expect(a.next() == b.next())
    }

    @Test func fingerprintOptionsAndDifferences() {
        let op: Set<String> = ["--out", "--quiet", "--device"]
        let a = SweepFingerprint.options(["--model", "m", "--steps=32", "--out", "x", "--quiet", "--baseline", "constant:-1"],
                                         operational: op, contentChecked: ["--model"])
        #expect(a == ["--baseline constant:-1", "--steps 32"], "operational options out, content-checked paths out, --a=b split, sorted")
        let b = SweepFingerprint.options(["--steps", "32", "--device", "cpu", "--baseline", "constant:-1", "--model", "elsewhere"],
                                         operational: op, contentChecked: ["--model"])
        #expect(a == b, "the order, the device and the model's path do not make another sweep")
        let f1 = SweepFingerprint(command: "ig", files: ["model": [.init(path: "model.safetensors", bytes: 10, crc32: "00000001")]],
                                  options: a, items: 10, unitSize: 4)
        var f2 = f1
        f2.files["model"]![0].crc32 = "00000002"
        f2.options = ["--steps 16"]
        let diff = f2.differences(from: f1)
        #expect(diff.count == 2 && diff[0].contains("model") && diff[0].contains("model.safetensors") && diff[1].contains("--steps 16"))
        #expect(f1.differences(from: f1).isEmpty)
    }

    @Test func manifestKeepsOnlyWholeUnits() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-manifest-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = SweepDirectory(root)
        let fp = SweepFingerprint(command: "ig", files: [:], options: [], items: 4, unitSize: 2)
        let run = SweepDirectory.Run(fingerprint: fp, arguments: ["ig"], workingDirectory: "/", launchID: "a", attempt: 1)
        #expect(try dir.createRun(run))
        #expect(try !dir.createRun(run), "exactly one process creates the sweep")
        #expect(try dir.readRun() == run)
        for u in 0..<2 {
            _ = try dir.commitUnit(u, rank: u, attempt: 1, device: "cpu", seconds: 0.1) { tmp in
                try NPY.write([Float(u), 1, 2, 3], shape: [2, 2], to: tmp + "/attributions.npy")
            }
        }
        #expect(dir.finishedUnits().keys.sorted() == [0, 1])
        // A torn last line (a rank killed mid-append) is skipped, not an error.
        let m = root + "/.attrib-sweep/manifest/rank-0.jsonl"
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: m)); h.seekToEndOfFile(); h.write(Data("{\"unit\": 3, \"fi".utf8)); h.closeFile()
        #expect(dir.finishedUnits().keys.sorted() == [0, 1])
        // A damaged file fails its checksum, names itself, and the unit is computed again.
        let f = dir.unitDirectory(1) + "/attributions.npy"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: f))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: f))
        let rec = dir.finishedUnits()[1]!
        #expect { try dir.loadUnit(rec, rank: 0) } throws: { "\($0)".contains("attributions.npy") && "\($0)".contains("checksum") }
        #expect(dir.finishedUnits().keys.sorted() == [0])
        // A truncated file is not finished either (its size differs from the record).
        let g = dir.unitDirectory(0) + "/attributions.npy"
        try Data(try Data(contentsOf: URL(fileURLWithPath: g)).prefix(20)).write(to: URL(fileURLWithPath: g))
        #expect(dir.finishedUnits().isEmpty)
        #expect(try dir.takeMergeLock() && !dir.takeMergeLock(), "one process merges")
    }
}

/// Issue 19 end to end, through the attrib executable: several devices in one process, mpirun,
/// Slurm's variables, a killed sweep resumed, a changed sweep refused, attrib merge.
@Suite(.serialized) struct ScaleOutCLITests {
    let mlp = ["--model", "Models/digits-mlp", "--inputs", "Models/digits-data/test_inputs.npy", "--limit", "60", "--quiet", "--no-heatmaps"]
    let pairs = ["--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--limit", "12", "--quiet"]

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func ok(_ r: CLIRun, _ what: String) {
        #expect(r.status == 0, "\(what): \(r.stderr)")
    }

    /// An mpirun line that runs here as CI runs (root, 2 cores, 3 processes).
    func mpirun(_ n: Int, _ args: [String]) throws -> CLIRun {
        var pre = ["--oversubscribe", "-n", String(n)]
        if getuid() == 0 { pre.insert("--allow-run-as-root", at: 0) }
        return try runProcess("mpirun", pre + [try attribBinary()] + args)
    }

    @Test func mpirunEqualsOneProcessBitwise() throws {
        let d = try cliTempDir("mpi")
        defer { try? FileManager.default.removeItem(atPath: d) }
        ok(try runAttrib(["ig"] + mlp + ["--chunk", "8", "--out", d + "/one"]), "ig, one process")
        let r = try mpirun(3, ["ig"] + mlp + ["--chunk", "8", "--out", d + "/three"])
        ok(r, "ig under mpirun -n 3")
        for f in ["attributions.npy", "deltas.npy", "targets.npy"] {
            #expect(try bytes(d + "/one/" + f) == bytes(d + "/three/" + f), "\(f): mpirun -n 3 equals one process, bitwise")
        }
        let s = try JSONSerialization.jsonObject(with: bytes(d + "/three/summary.json")) as! [String: Any]
        let ranks = s["ranks"] as! [[String: Any]]
        #expect(ranks.count == 3 && Set(ranks.map { $0["rank"] as! Int }) == [0, 1, 2] && ranks.allSatisfy { ($0["launcher"] as! String) == "open-mpi" })
        #expect(ranks.map { $0["items"] as! Int }.reduce(0, +) == 60, "the shares add up to the sweep")
        for k in 0..<3 { #expect(FileManager.default.fileExists(atPath: d + "/three/logs/rank-\(k).log"), "a log per rank") }
        #expect(!FileManager.default.fileExists(atPath: d + "/three/.attrib-sweep/units"), "units' files go once assembled")

        ok(try runAttrib(["atp"] + pairs + ["--chunk", "2", "--out", d + "/atp1"]), "atp, one process")
        ok(try mpirun(3, ["atp"] + pairs + ["--chunk", "2", "--out", d + "/atp3"]), "atp under mpirun -n 3")
        #expect(try bytes(d + "/atp1/scores.npy") == bytes(d + "/atp3/scores.npy"), "atp --pairs: mpirun -n 3 equals one process, bitwise")
    }

    @Test func slurmVariablesAreHonoured() throws {
        let d = try cliTempDir("slurm")
        defer { try? FileManager.default.removeItem(atPath: d) }
        ok(try runAttrib(["saliency"] + mlp + ["--chunk", "7", "--out", d + "/one"]), "one process")
        // The three tasks of one srun step, here one after the other: the last to finish assembles.
        for k in 0..<3 {
            let r = try runAttrib(["saliency"] + mlp + ["--chunk", "7", "--out", d + "/srun"],
                                  environment: ["SLURM_STEP_ID": "0", "SLURM_JOB_ID": "4242", "SLURM_PROCID": String(k), "SLURM_NTASKS": "3", "SLURM_LOCALID": String(k)])
            ok(r, "srun task \(k)")
            #expect(FileManager.default.fileExists(atPath: d + "/srun/attributions.npy") == (k == 2), "only the last task assembles")
        }
        #expect(try bytes(d + "/one/attributions.npy") == bytes(d + "/srun/attributions.npy"))
        let s = try JSONSerialization.jsonObject(with: bytes(d + "/srun/summary.json")) as! [String: Any]
        #expect((s["ranks"] as! [[String: Any]]).allSatisfy { ($0["launcher"] as! String) == "slurm" })
    }

    @Test func killedSweepResumesToTheSameFiles() throws {
        let d = try cliTempDir("resume")
        defer { try? FileManager.default.removeItem(atPath: d) }
        ok(try runAttrib(["smoothgrad"] + mlp + ["--chunk", "6", "--samples", "8", "--out", d + "/whole"]), "uninterrupted")
        // Killed (SIGKILL, as a preempted job is) after 5 of 10 units.
        let killed = try runAttrib(["smoothgrad"] + mlp + ["--chunk", "6", "--samples", "8", "--out", d + "/run"],
                                   environment: ["ATTRIB_FAULT_KILL_AFTER_UNITS": "5"])
        #expect(killed.status != 0)
        let again = try runAttrib(["smoothgrad"] + mlp + ["--chunk", "6", "--samples", "8", "--out", d + "/run"])
        #expect(again.status != 0 && again.stderr.contains("--resume"), "a second run without --resume is refused and says how to continue")
        // The same model with one weight changed.
        try FileManager.default.copyItem(atPath: projectRoot + "/Models/digits-mlp", toPath: d + "/changed")
        var w = try bytes(d + "/changed/model.safetensors")
        w[w.count - 1] ^= 0x01
        try w.write(to: URL(fileURLWithPath: d + "/changed/model.safetensors"))
        let other = try runAttrib(["smoothgrad", "--model", d + "/changed"] + mlp.dropFirst(2) + ["--chunk", "6", "--samples", "8", "--out", d + "/run", "--resume"])
        #expect(other.status != 0 && other.stderr.contains("model"), "a resume with another model is refused, naming it: \(other.stderr)")
        let changed = try runAttrib(["smoothgrad"] + mlp + ["--chunk", "6", "--samples", "4", "--out", d + "/run", "--resume"])
        #expect(changed.status != 0 && changed.stderr.contains("--samples 4"), "a changed option is refused, naming it")
        let resumed = try runAttrib(["smoothgrad"] + mlp + ["--chunk", "6", "--samples", "8", "--out", d + "/run", "--resume", "--json"])
        ok(resumed, "resume")
        #expect(try bytes(d + "/whole/attributions.npy") == bytes(d + "/run/attributions.npy"), "resumed equals uninterrupted, bitwise")
        let s = try resumed.json()
        let ranks = s["ranks"] as! [[String: Any]]
        #expect(s["attempts"] as? Int == 2 && ranks.last!["units"] as? Int == 5, "the resume ran only the 5 missing units")
    }

    /// Ctrl-C (a real SIGINT) mid-sweep: exit 130, the finished inputs written in order, then
    /// --resume completes to the uninterrupted files.
    @Test func ctrlCThenResume() throws {
        let d = try cliTempDir("ctrlc")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let args = ["smoothgrad", "--model", "Models/digits-cnn", "--inputs", "Models/digits-data/test_inputs.npy", "--limit", "300",
                    "--quiet", "--no-heatmaps", "--samples", "64", "--chunk", "2"]
        ok(try runAttrib(args + ["--out", d + "/whole"]), "uninterrupted")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try attribBinary())
        p.arguments = args + ["--out", d + "/run"]
        p.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
        p.environment = ProcessInfo.processInfo.environment.merging(["ATTRIB_DEVICE": "cpu"]) { _, b in b }
        p.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: d + "/stderr", contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: d + "/stderr"))
        try p.run()
        // Interrupt once a few units are recorded (of 150).
        let manifest = d + "/run/.attrib-sweep/manifest/rank-0.jsonl"
        let start = Date()
        while p.isRunning, Date().timeIntervalSince(start) < 60,
              ((try? String(contentsOfFile: manifest, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 { usleep(5_000) }
        #expect(p.isRunning, "the sweep outlasted the wait for its third unit")
        p.interrupt()
        p.waitUntilExit()
        #expect(p.terminationStatus == 130, "an interrupted sweep exits 130: \((try? String(contentsOfFile: d + "/stderr", encoding: .utf8)) ?? "")")
        let s = try JSONSerialization.jsonObject(with: bytes(d + "/run/summary.json")) as! [String: Any]
        let done = s["completedInputs"] as! Int
        #expect(s["interrupted"] as? Bool == true && done >= 6 && done < 300)
        let partial = try NPYFloats(d + "/run/attributions.npy"), whole = try NPYFloats(d + "/whole/attributions.npy")
        #expect(partial.count == done * 64 && partial.elementsEqual(whole.prefix(partial.count)), "the finished inputs, in order")
        ok(try runAttrib(args + ["--out", d + "/run", "--resume"]), "resume")
        #expect(try bytes(d + "/whole/attributions.npy") == bytes(d + "/run/attributions.npy"), "resumed after Ctrl-C equals uninterrupted, bitwise")
    }

    /// The other sweep commands, each as two shards run one after the other (--shard): the last
    /// assembles the same files as one process, bitwise.
    @Test(arguments: [
        ["expected-gradients", "--baselines", "Models/digits-data/test_inputs.npy", "--samples", "8", "--stdev", "0.1"],
        ["sobol", "--model", "Models/digits-cnn", "--grid", "4", "--designs", "8"],
        ["evaluate", "deletion", "--model", "Models/digits-cnn", "--maps", "random", "--steps", "8"],
        ["patch", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--limit", "4", "--quiet"],
        ["atp-star", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--limit", "6", "--quiet"],
    ])
    func shardsEqualOneProcess(_ command: [String]) throws {
        let d = try cliTempDir("shards")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let patching = ["patch", "atp-star"].contains(command[0])
        var args = command + ["--chunk", "3"]
        if !patching {
            if !args.contains("--model") { args += ["--model", "Models/digits-mlp"] }
            args += ["--inputs", "Models/digits-data/test_inputs.npy", "--limit", "20", "--quiet", "--no-heatmaps"]
        }
        ok(try runAttrib(args + ["--out", d + "/one"]), "\(command[0]), one process")
        for k in 0..<2 { ok(try runAttrib(args + ["--out", d + "/two", "--shard", "\(k)/2"]), "\(command[0]), shard \(k)") }
        let files = patching ? ["scores.npy"] : command[0] == "evaluate" ? ["curves.json"] : command[0] == "sobol" ? ["attributions.npy", "indices.npy"] : ["attributions.npy", "targets.npy"]
        for f in files {
            if f.hasSuffix(".json") {
                var a = try JSONSerialization.jsonObject(with: bytes(d + "/one/" + f)) as! [String: Any]
                var b = try JSONSerialization.jsonObject(with: bytes(d + "/two/" + f)) as! [String: Any]
                // Per process, not per result: who ran which units, and each process's peak memory.
                for k in ["ranks", "processes", "attempts", "peakResidentBytes"] { a[k] = nil; b[k] = nil }
                #expect(NSDictionary(dictionary: a).isEqual(to: b), "\(command[0]): \(f)")
            } else {
                #expect(try bytes(d + "/one/" + f) == bytes(d + "/two/" + f), "\(command[0]): \(f), bitwise")
            }
        }
    }

    @Test func mergeAssemblesWhatNoRankCould() throws {
        let d = try cliTempDir("merge")
        defer { try? FileManager.default.removeItem(atPath: d) }
        ok(try runAttrib(["ig"] + mlp + ["--chunk", "10", "--steps", "16", "--out", d + "/one"]), "one process")
        let out = d + "/sharded"
        ok(try runAttrib(["ig"] + mlp + ["--chunk", "10", "--steps", "16", "--out", out, "--shard", "0/2"]), "shard 0")
        let early = try runAttrib(["merge", out])
        #expect(early.status != 0 && early.stderr.contains("3 of 6 units are not finished"), "merge names what is missing: \(early.stderr)")
        // Shard 1 dies right after its last unit, before it can assemble.
        _ = try runAttrib(["ig"] + mlp + ["--chunk", "10", "--steps", "16", "--out", out, "--shard", "1/2"], environment: ["ATTRIB_FAULT_KILL_AFTER_UNITS": "3"])
        #expect(!FileManager.default.fileExists(atPath: out + "/attributions.npy"))
        ok(try runAttrib(["merge", out]), "merge")
        #expect(try bytes(d + "/one/attributions.npy") == bytes(out + "/attributions.npy"), "merged equals one process, bitwise")
        let done = try runAttrib(["merge", out])
        #expect(done.status == 0 && done.stdout.contains("complete"))
    }

    /// Two devices in one process (the CPU backend and PoCL): every unit is one device's, so each
    /// row equals that device's run alone bitwise, and the two devices agree to Float32 parity
    /// (IG on a 2-layer MLP: a few ulps of |attribution| ≤ 4 per product, 1e-4 absolute covers it).
    @Test(.enabled(if: !openCLDevices.isEmpty)) func twoDevicesEqualEachAlone() throws {
        let d = try cliTempDir("devices")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let args = ["ig"] + mlp + ["--chunk", "5", "--steps", "32"]
        ok(try runAttrib(args + ["--device", "cpu", "--out", d + "/cpu"]), "cpu alone")
        ok(try runAttrib(args + ["--device", "opencl:0", "--out", d + "/cl"]), "opencl alone")
        let r = try runAttrib(args + ["--device", "cpu,opencl:0", "--out", d + "/both", "--json"])
        ok(r, "both")
        let devices = ((try r.json()["ranks"] as! [[String: Any]])[0]["devices"] as! [String])
        #expect(devices.count == 2)
        let (cpu, cl, both) = (try NPYFloats(d + "/cpu/attributions.npy"), try NPYFloats(d + "/cl/attributions.npy"), try NPYFloats(d + "/both/attributions.npy"))
        let per = cpu.count / 60
        for i in 0..<60 {
            let row = both[i * per..<(i + 1) * per]
            #expect(row.elementsEqual(cpu[i * per..<(i + 1) * per]) || row.elementsEqual(cl[i * per..<(i + 1) * per]), "input \(i) is one device's, bitwise")
        }
        #expect(zip(cpu, cl).map { abs($0 - $1) }.max()! < 1e-4, "the devices agree to Float32 parity")
        let dup = try runAttrib(args + ["--device", "cpu,cpu", "--out", d + "/dup"])
        #expect(dup.status != 0 && dup.stderr.contains("second time"))
    }
}

/// A .npy file's values as Float (the CLI writes attributions as float32).
func NPYFloats(_ path: String) throws -> [Float] { try NPY.read(path).floats() }
