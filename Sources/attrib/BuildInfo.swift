import CBuildInfo

/// What `attrib --version` prints: the version, the commit it was built from, and how it was built.
enum BuildInfo {
    static let version = "0.6.0"

    static var commit: String { String(cString: attrib_build_commit()) }

    static var configuration: String {
        #if DEBUG
        let build = "debug build"
        #else
        let build = "release build"
        #endif
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "other architecture"
        #endif
        #if canImport(Musl)
        let libc = "musl (static)"
        #else
        let libc = "glibc"
        #endif
        #if swift(>=6.3)
        let swift = "Swift 6.3+"
        #else
        let swift = "Swift < 6.3"
        #endif
        return "\(build), \(arch) Linux, \(libc), \(swift)"
    }

    static var line: String { "attrib \(version) (commit \(commit); \(configuration))" }
}
