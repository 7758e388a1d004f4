#if canImport(Glibc)
import Glibc
#endif
import Attrib
import FoundationEssentials

/// The output directory of a command: created before the work starts, so a sweep never ends in
/// "cannot write"; an explicit --out that already holds results is refused unless --force; every
/// failure names the path and the reason in words, not a Foundation error dump.
enum OutputDirectory {
    /// Files whose presence means the directory holds an earlier run's results.
    static let resultFiles = ["summary.json", "curves.json"]

    /// Creates `dir` (with its parents) and checks it can be written. `explicit`: the user gave
    /// it with --out (the default out/METHOD is replaced on every run, as the help says).
    static func prepare(_ dir: String, explicit: Bool, force: Bool) throws {
        var isDir = false
        if exists(dir, isDirectory: &isDir) {
            guard isDir else { throw AttribError.io(path: dir, detail: "--out names a file, not a directory") }
            if explicit && !force, let f = resultFiles.first(where: { FileManager.default.fileExists(atPath: dir + "/" + $0) }) {
                throw AttribError.io(path: dir, detail: "holds the results of an earlier run (\(f)); give --force to overwrite them, or another --out")
            }
        } else {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw AttribError.io(path: dir, detail: "cannot create the output directory: \(reason(dir))")
            }
        }
        guard access(dir, W_OK) == 0 else {
            throw AttribError.io(path: dir, detail: "cannot write in the output directory: \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `data` to `path`, naming the file and the reason on failure.
    static func write(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path)) } catch {
            let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            throw AttribError.io(path: path, detail: "cannot write the file: \(access(dir, W_OK) == 0 ? "\(error)" : String(cString: strerror(errno)))")
        }
    }

    static func exists(_ path: String, isDirectory: inout Bool) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        return true
    }

    /// Why `dir` cannot be created: the first ancestor that exists is a file, or is not writable.
    static func reason(_ dir: String) -> String {
        var p = dir
        while true {
            guard let slash = p.lastIndex(of: "/") else { p = "."; break }
            p = slash == p.startIndex ? "/" : String(p[..<slash])
            var isDir = false
            if exists(p, isDirectory: &isDir) {
                if !isDir { return "'\(p)' is a file, not a directory" }
                if access(p, W_OK) != 0 { return "no permission to create anything in '\(p)'" }
                return "'\(p)' exists but the directory could not be made in it"
            }
            if p == "/" { break }
        }
        return "no parent directory exists"
    }
}
