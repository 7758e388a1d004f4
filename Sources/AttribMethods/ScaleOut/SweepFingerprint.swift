#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import FoundationEssentials

/// What a sweep's results depend on: the command, the contents of its files (model, inputs,
/// targets, baselines, maps, pairs), the options that change the numbers, and how the items are
/// cut into units. A resume, a joining rank and a merge all refuse a directory whose sweep had
/// another fingerprint, and say what differs.
public struct SweepFingerprint: Codable, Equatable, Sendable {
    public struct FileDigest: Codable, Equatable, Sendable {
        public var path: String
        public var bytes: Int
        public var crc32: String
        public init(path: String, bytes: Int, crc32: String) { self.path = path; self.bytes = bytes; self.crc32 = crc32 }
    }

    public var command: String
    /// Role ("model", "inputs", "baselines", …) → the digests of its files (a directory: every
    /// regular file under it, sorted by path relative to it).
    public var files: [String: [FileDigest]]
    /// The options that change results, as "--name value" strings, sorted.
    public var options: [String]
    public var items: Int
    public var unitSize: Int

    public init(command: String, files: [String: [FileDigest]], options: [String], items: Int, unitSize: Int) {
        self.command = command; self.files = files; self.options = options; self.items = items; self.unitSize = unitSize
    }

    /// The digests of the file at `path`, or of every regular file under the directory at `path`.
    public static func digest(_ path: String) throws -> [FileDigest] {
        var st = stat()
        guard stat(path, &st) == 0 else { throw AttribError.io(path: path, detail: "cannot read it to fingerprint the sweep: \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            let (c, b) = try Checksum.crc32(file: path)
            return [FileDigest(path: lastComponent(path), bytes: b, crc32: c)]
        }
        var out: [FileDigest] = []
        for rel in try regularFiles(under: path, prefix: "") {
            let (c, b) = try Checksum.crc32(file: path + "/" + rel)
            out.append(FileDigest(path: rel, bytes: b, crc32: c))
        }
        return out
    }

    static func lastComponent(_ p: String) -> String { p.split(separator: "/").last.map(String.init) ?? p }

    static func regularFiles(under dir: String, prefix: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw AttribError.io(path: dir, detail: "cannot list the directory to fingerprint the sweep")
        }
        var out: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { out += try regularFiles(under: dir + "/" + name, prefix: prefix + name + "/") }
            else if (st.st_mode & S_IFMT) == S_IFREG { out.append(prefix + name) }
        }
        return out
    }

    /// The options of a command line that change results: each "--name [values]" group, with
    /// --name=value split, sorted; `operational` names (where outputs go, progress, devices,
    /// batching, resume) and `contentChecked` names (paths whose files are digested instead, so a
    /// moved file is the same sweep) left out.
    public static func options(_ arguments: [String], operational: Set<String>, contentChecked: Set<String>) -> [String] {
        var groups: [[String]] = []
        for a in arguments {
            if a.hasPrefix("--") {
                if let eq = a.firstIndex(of: "=") { groups.append([String(a[..<eq]), String(a[a.index(after: eq)...])]) }
                else { groups.append([a]) }
            } else if groups.isEmpty { groups.append([a]) }   // positionals before any option
            else { groups[groups.count - 1].append(a) }
        }
        return groups.filter { g in !operational.contains(g[0]) && !contentChecked.contains(g[0]) }
            .map { g in contentChecked.contains(g[0]) ? g[0] : g.joined(separator: " ") }.sorted()
    }

    /// What differs from `old`, one phrase each (empty when the sweeps are the same).
    public func differences(from old: SweepFingerprint) -> [String] {
        var out: [String] = []
        if command != old.command { out.append("the command (\(old.command) → \(command))") }
        for role in Set(files.keys).union(old.files.keys).sorted() where files[role] != old.files[role] {
            switch (old.files[role], files[role]) {
            case (nil, _): out.append("\(role) given now, not before")
            case (_, nil): out.append("\(role) given before, not now")
            case (let a?, let b?):
                let changed = Set(a.map(\.path)).union(b.map(\.path)).sorted().filter { p in a.first { $0.path == p } != b.first { $0.path == p } }
                out.append("the \(role)'s contents (\(changed.prefix(3).joined(separator: ", "))\(changed.count > 3 ? ", …" : ""))")
            }
        }
        if options != old.options {
            let added = options.filter { !old.options.contains($0) }, removed = old.options.filter { !options.contains($0) }
            out.append("the options (before: \(removed.isEmpty ? "-" : removed.joined(separator: " ")); now: \(added.isEmpty ? "-" : added.joined(separator: " ")))")
        }
        if items != old.items { out.append("the number of items (\(old.items) → \(items))") }
        if unitSize != old.unitSize { out.append("the unit size (--chunk \(old.unitSize) → \(unitSize))") }
        return out
    }
}
