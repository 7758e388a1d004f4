import Attrib
import Foundation
import Testing

/// readFileData: a whole file read straight into a Data (the loaders' read of .onnx files,
/// labels and JSON side files).
@Suite struct FileDataTests {
    @Test("the file's bytes, empty files as empty Data, missing files and directories as nil, /proc files past their zero size")
    func wholeFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-file-data-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // More than one read's worth and not a multiple of any block size.
        var rng = SplitMix64(seed: 5)
        let bytes = (0..<(3 << 20) + 12_345).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        FileManager.default.createFile(atPath: dir + "/big", contents: Data(bytes))
        FileManager.default.createFile(atPath: dir + "/empty", contents: Data())
        #expect(readFileData(dir + "/big") == Data(bytes))
        #expect(readFileData(dir + "/empty") == Data())
        #expect(readFileData(dir + "/missing") == nil && readFileData(dir) == nil, "a missing file and a directory are nil")
        // The kernel's files say size 0 and have content: read to the end, not to fstat's size.
        let status = String(decoding: try #require(readFileData("/proc/self/status")), as: UTF8.self)
        #expect(status.contains("VmRSS:"), "/proc/self/status read whole")
    }
}
