import Attrib
import AttribONNX
import Foundation
import Testing

/// Regression tests for what the fuzz targets (scripts/fuzz.sh) found.
@Suite struct FuzzFindingTests {
    /// FuzzONNX and FuzzDecoderModel, on an empty file: FoundationEssentials' FileManager.contents
    /// leaked a 4 KiB buffer per empty file (LeakSanitizer). The loaders now read files with
    /// POSIX reads (readFileBytes); an empty file is read as zero bytes and refused by name.
    @Test("empty config.json and .onnx files: zero bytes read, a clear error naming the file")
    func emptyFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-fuzz-finding-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/config.json", contents: Data())
        FileManager.default.createFile(atPath: dir + "/model.onnx", contents: Data())
        #expect(readFileBytes(dir + "/config.json") == [])
        #expect(readFileBytes(dir + "/missing") == nil && readFileBytes(dir) == nil, "a missing file and a directory are nil")
        expectAttribError([dir + "/config.json"]) { _ = try DecoderModel.load(dir, on: cpu) }
        expectAttribError([dir + "/config.json"]) { _ = try Sequential.load(dir, on: cpu) }
        expectAttribError([dir + "/model.onnx"]) { _ = try ONNXModel.load(dir + "/model.onnx", on: cpu) }
    }
}
