import Attrib
import Foundation
import Testing

/// Issue 21's rough edges, as a new user meets them on the CLI: unwritable and occupied --out,
/// a bad --method's usage, one option set on every sweep command, `attrib compare`, and files
/// larger than memory under `ulimit -v`.
@Suite(.serialized) struct RoughEdgeTests {
    static let inputs = "Models/digits-data/test_inputs.npy"
    static let ig = ["ig", "--model", "Models/digits-mlp", "--inputs", inputs, "--limit", "2", "--steps", "8"]

    @Test("an --out that cannot be made names the path and the reason in words, not a Foundation error dump")
    func unwritableOut() throws {
        let dir = try cliTempDir("unwritable")
        FileManager.default.createFile(atPath: dir + "/file", contents: Data([1]))
        let r = try runAttrib(Self.ig + ["--out", dir + "/file/sub"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("\(dir)/file/sub: cannot create the output directory: '\(dir)/file' is a file, not a directory"), "\(r.stderr)")
        #expect(!r.stderr.contains("CocoaError") && !r.stderr.contains("Error Domain"))
        let f = try runAttrib(Self.ig + ["--out", dir + "/file"])
        #expect(f.status != 0 && f.stderr.contains("--out names a file, not a directory"), "\(f.stderr)")
    }

    @Test("an --out that holds results is refused unless --force, before any work; patching commands too")
    func occupiedOut() throws {
        let dir = try cliTempDir("occupied")
        #expect(try runAttrib(Self.ig + ["--out", dir]).status == 0)
        let again = try runAttrib(Self.ig + ["--out", dir])
        #expect(again.status != 0 && again.stderr.contains("holds the results of an earlier run (summary.json); give --force"), "\(again.stderr)")
        #expect(try runAttrib(Self.ig + ["--out", dir, "--force"]).status == 0)
        let p = ["atp", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--limit", "1", "--out", dir]
        #expect(try runAttrib(p).stderr.contains("give --force"))
        let ev = try runAttrib(["evaluate", "deletion", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "2", "--maps", "random", "--out", dir + "/ev"])
        #expect(ev.status == 0)
        #expect(try runAttrib(["evaluate", "deletion", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "2", "--maps", "random",
                               "--out", dir + "/ev"]).stderr.contains("(curves.json); give --force"))
    }

    @Test("a bad --method, --type, --grad-drop or --nodes value prints the subcommand's usage, not the root's")
    func subcommandUsage() throws {
        let cases: [([String], String)] = [
            (Self.ig + ["--method", "simpson"], "Usage: attrib ig "),
            (["smoothgrad", "--model", "Models/digits-mlp", "--inputs", Self.inputs, "--type", "sg"], "Usage: attrib smoothgrad "),
            (["atp-star", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--grad-drop", "mean"], "Usage: attrib atp-star "),
            (["patch", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json", "--nodes", "layers"], "Usage: attrib patch "),
        ]
        for (args, usage) in cases {
            let r = try runAttrib(args)
            #expect(r.status != 0 && r.stderr.contains(usage), "\(args[0]): \(r.stderr)")
        }
    }

    @Test("every sweep command takes the same --quiet, --seed, --limit, --batch, --json and --force")
    func sharedOptions() throws {
        for cmd in [["ig"], ["saliency"], ["smoothgrad"], ["expected-gradients"], ["sobol"], ["evaluate", "deletion"], ["patch"], ["atp"], ["atp-star"]] {
            let help = try runAttrib(cmd + ["--help"]).stdout
            for option in ["--quiet", "--seed", "--limit", "--batch", "--json", "--force"] {
                #expect(help.contains(option), "attrib \(cmd.joined(separator: " ")) lacks \(option)")
            }
        }
    }

    @Test("attrib compare: one method on two devices, per-input agreement against the stated tolerance")
    func compare() throws {
        let devices = openCLDevices.isEmpty ? "cpu,cpu" : "cpu,opencl"
        for method in ["ig", "saliency", "smoothgrad"] {
            let r = try runAttrib(["compare", method, "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "3",
                                   "--devices", devices, "--json"])
            #expect(r.status == 0, "\(method): \(r.stderr)")
            let j = try r.json()
            let rows = j["inputs"] as! [[String: Any]]
            #expect(rows.count == 3 && rows.allSatisfy { $0["pass"] as? Bool == true } && j["tolerance"] as? Double == 1e-4)
            #expect(rows.allSatisfy { ($0["maxRelativeDifference"] as! Double) <= 1e-4 })
        }
        let bad = try runAttrib(["compare", "ig", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--devices", "cpu"])
        #expect(bad.status != 0 && bad.stderr.contains("--devices needs two specs"))
    }

    /// Runs attrib under `ulimit -v` (KiB) through /bin/sh. Under scripts/sanitize.sh the
    /// binary beside the tests is AddressSanitizer's, whose shadow memory alone exceeds any
    /// such limit; the script names an unsanitized one in ATTRIB_ULIMIT_BINARY for these runs.
    func limited(_ kib: Int, _ args: [String]) throws -> CLIRun {
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let binary = try ProcessInfo.processInfo.environment["ATTRIB_ULIMIT_BINARY"] ?? attribBinary()
        return try runShell("ulimit -v \(kib); exec '\(binary)' \(quoted)")
    }

    func runShell(_ script: String) throws -> CLIRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIRun(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test("an input file larger than memory is refused with a message under ulimit -v, never killed; --limit reads only what it uses")
    func largerThanMemory() throws {
        // A sparse .npy declaring 4,194,304 digits [1, 8, 8] in float32: 1 GiB on disk (no blocks),
        // 2 GiB as Float64 on the host, under a 3 GiB address-space limit.
        let dir = try cliTempDir("huge")
        let path = dir + "/big.npy"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4194304, 1, 8, 8), }"
        header += String(repeating: " ", count: 64 - (10 + header.utf8.count + 1) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        let dataBytes = 4_194_304 * 64 * 4
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: UInt64(bytes.count + dataBytes))
        try h.close()
        bytes = []
        let r = try limited(3_000_000, ["predict", "--device", "cpu", "--model", "Models/digits-cnn", "--inputs", path])
        #expect(r.status == 1, "a clean error exit, not a signal: \(r.status) \(r.stderr)")
        #expect(r.stderr.contains(path) && (r.stderr.contains("of host memory") || r.stderr.contains("cannot map")), "\(r.stderr)")
        let ok = try limited(3_000_000, ["predict", "--device", "cpu", "--model", "Models/digits-cnn", "--inputs", path, "--limit", "2", "--json"])
        #expect(ok.status == 0, "the first 2 rows fit: \(ok.stderr)")
    }

    @Test("a weight file larger than memory is refused naming the file and the tensor under ulimit -v")
    func weightsLargerThanMemory() throws {
        // A Linear 2^24 → 16 whose weight is 1 GiB of (sparse) float32 on disk: 2 GiB on the
        // host as Float64 staging, over what a 3 GiB address-space limit leaves.
        let dir = try cliTempDir("hugeweights")
        let inF = 1 << 24, outF = 16, wBytes = inF * outF * 4
        let config = #"{"format": "attrib-sequential", "version": 1, "input_shape": [\#(inF)], "layers": [{"type": "Linear", "in_features": \#(inF), "out_features": \#(outF)}]}"#
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        var header = #"{"0.weight":{"dtype":"F32","shape":[\#(outF),\#(inF)],"data_offsets":[0,\#(wBytes)]},"0.bias":{"dtype":"F32","shape":[\#(outF)],"data_offsets":[\#(wBytes),\#(wBytes + outF * 4)]}}"#
        header += String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        let n = UInt64(header.utf8.count)
        let prefix = (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) } + Array(header.utf8)
        FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data(prefix))
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/model.safetensors"))
        try h.truncate(atOffset: UInt64(prefix.count + wBytes + outF * 4))
        try h.close()
        let x = dir + "/x.npy"
        try NPY.write([Double](repeating: 0, count: 4), shape: [1, 4], to: x)
        let r = try limited(3_000_000, ["predict", "--device", "cpu", "--model", dir, "--inputs", x])
        #expect(r.status == 1, "a clean error exit, not a signal: \(r.status) \(r.stderr)")
        #expect(r.stderr.contains(dir + "/model.safetensors") && r.stderr.contains("0.weight") && r.stderr.contains("of host memory"), "\(r.stderr)")
    }
}
