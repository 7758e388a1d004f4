import Foundation
import Testing

/// The output of one run of the `attrib` executable.
struct CLIRun {
    let status: Int32
    let stdout: String
    let stderr: String
    /// stdout parsed as a JSON object (for --json runs).
    func json() throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw CLIError.notJSON(stdout)
        }
        return o
    }
}

enum CLIError: Error { case noBinary(String), notJSON(String) }

/// The project root (the CLI tests run attrib there, as a user would).
let projectRoot: String = {
    let fixtures = fixturePath("")
    var dir = String(fixtures.dropLast())                     // …/Tests/Fixtures
    for _ in 0..<2 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }
    return dir
}()

/// The `attrib` binary built beside the test bundle (scripts/test.sh builds it first:
/// `swift build --product attrib`). A missing binary fails the test; it is never skipped.
func attribBinary() throws -> String {
    if let p = ProcessInfo.processInfo.environment["ATTRIB_BINARY"], !p.isEmpty { return p }
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    for candidate in [dir + "/attrib", dir + "/../attrib"] where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    throw CLIError.noBinary("no attrib executable beside the tests in \(dir): run `swift build --product attrib` first (scripts/test.sh does)")
}

/// Runs attrib with `args` in the project root on the CPU device; stdout and stderr go
/// through files (a pipe that fills would block the child).
func runAttrib(_ args: [String], environment extra: [String: String] = [:], unsetting: [String] = []) throws -> CLIRun {
    try runProcess(try attribBinary(), args, environment: extra, unsetting: unsetting)
}

/// Runs `executable` (a path, or a name looked up on PATH) with `args` in the project root, with
/// ATTRIB_DEVICE=cpu and `extra` added to the environment, and the variables `unsetting` removed.
func runProcess(_ executable: String, _ args: [String], environment extra: [String: String] = [:], unsetting: [String] = []) throws -> CLIRun {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    let out = tmp.appendingPathComponent("stdout"), err = tmp.appendingPathComponent("stderr")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : try onPath(executable))
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
    var env = ProcessInfo.processInfo.environment
    env["ATTRIB_DEVICE"] = "cpu"
    env.merge(extra) { _, b in b }
    for k in unsetting { env[k] = nil }
    p.environment = env
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    try p.run()
    p.waitUntilExit()
    return CLIRun(status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
                  stderr: try String(contentsOf: err, encoding: .utf8))
}

/// A fresh empty directory for one test's outputs.
func cliTempDir(_ name: String) throws -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-cli-\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// The full path of a program on PATH; a missing one fails the test with the package that has it.
func onPath(_ name: String) throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    throw CLIError.noBinary("\(name) is not on PATH (scripts/setup.sh --tests installs it: openmpi-bin for mpirun)")
}
