#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Attrib
import FoundationEssentials

/// `attrib merge DIR`: assembles the final files of a sweep whose units are all finished (by
/// several processes or launches) from DIR/.attrib-sweep, by replaying the sweep's command line
/// (recorded in run.json) with nothing left to compute. The processes of a launch do this
/// themselves (the last to finish); merge is for when none could, or to write the files again.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Assemble a sweep's final files from the finished units in DIR (after processes that each did a share).")

    @Argument(help: "The sweep's output directory (its --out).") var directory: String

    func run() throws {
        let dir = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        guard let run = try SweepDirectory(dir).readRun() else {
            throw AttribError.io(path: dir, detail: "holds no sweep to merge (no .attrib-sweep/run.json)")
        }
        if run.complete {
            print("\(directory): the sweep is complete and its final files are written; nothing to merge")
            return
        }
        guard chdir(run.workingDirectory) == 0 else {
            throw AttribError.io(path: run.workingDirectory, detail: "the directory the sweep ran in is gone; the sweep's relative paths are read from it")
        }
        // The recorded command line, writing into DIR, and only assembling.
        var args = run.arguments
        if let i = args.firstIndex(of: "--out"), i + 1 < args.count { args[i + 1] = dir }
        else if let i = args.firstIndex(where: { $0.hasPrefix("--out=") }) { args[i] = "--out=" + dir }
        else { args += ["--out", dir] }
        replayedArguments = args
        mergeOnlyMode = true
        var command = try AttribCommand.parseAsRoot(args)
        try command.run()
    }
}

/// The command line a sweep fingerprints: the process's own, or the one `attrib merge` replays.
nonisolated(unsafe) var replayedArguments: [String]?
var sweepArguments: [String] { replayedArguments ?? Array(CommandLine.arguments.dropFirst()) }
