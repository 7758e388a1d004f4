import AttribCore
import FoundationEssentials

/// A whole file as Data (readFileBytes: POSIX reads, no FileManager leak on empty files).
public func readFileData(_ path: String) -> Data? { readFileBytes(path).map { Data($0) } }
