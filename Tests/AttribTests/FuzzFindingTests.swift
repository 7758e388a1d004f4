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

    /// FuzzGPT2Model (decoder configs): a gpt_neox config.json with hidden_size 9999999964 made
    /// the RoPE table of its head_dim/2 frequencies allocate until libFuzzer's memory limit. Sizes
    /// are now checked before anything is made from them; layers and head sizes have bounds.
    @Test("decoder configs with absurd sizes are refused before any table is made (FuzzGPT2Model out-of-memory)")
    func absurdDecoderSizes() throws {
        let src = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("llm/gpt_neox/config.json")))) as! [String: Any]
        for (key, value, fragment) in [("hidden_size", 9_999_999_964, "\"hidden_size\" = 9999999964"), ("hidden_size", 2_000_000_000, "a head of"), ("num_hidden_layers", 1 << 30, "num_hidden_layers"),
                                       ("hidden_size", 1 << 40, "\"hidden_size\" = \(1 << 40)"), ("num_attention_heads", -3, "num_attention_heads")] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-fuzz-finding-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var json = src
            json[key] = value
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/config.json"))
            expectAttribError([dir + "/config.json", fragment]) { _ = try DecoderConfig.read(dir + "/config.json") }
        }
    }

    /// FuzzONNX: a Conv node with no output name trapped on n.output[0] (index out of range)
    /// while the graph was built. Every node's first output is now checked before its op.
    /// FuzzImage (out-of-memory): a 332-byte JPEG whose header claims 52,807 × 35,152 gray pixels
    /// made the reader allocate 5.6 GB (RGB) before its data failed to decode. The PNG fixture
    /// claims 20,000 × 20,000 RGB in 65 bytes: its IHDR (correct CRC), an empty IDAT and IEND,
    /// written with Python's zlib and struct. Both are now refused from their size before any
    /// pixel buffer is made; the real images beside them still load.
    @Test("image headers claiming more pixels than their file can hold are refused before allocating (FuzzImage out-of-memory)")
    func imageHeaderClaimsTooMuch() throws {
        for (file, dims) in [("fuzz-claims-52807x35152.jpg", "52807×35152"), ("fuzz-claims-20000x20000.png", "20000×20000")] {
            let path = fixturePath("images/" + file)
            for format in [PNGImage.PixelFormat.rgb, .gray] {
                expectAttribError([path, dims, "the file is malformed"]) { _ = try ImageFile.read(path: path, format: format) }
            }
        }
        for real in ["images/jpeg/inputs/c420.jpg", "images/inputs/a.png"] {
            let img = try ImageFile.read(path: fixturePath(real), format: .rgb)
            #expect(img.pixels.count == img.width * img.height * 3)
        }
    }

    @Test("an ONNX node without an output: a clear error naming the file and the node (FuzzONNX trap)")
    func nodeWithoutOutput() {
        let path = fixturePath("onnx/fuzz-node-without-output.onnx")
        expectAttribError([path, "has no output"]) { _ = try ONNXModel.load(path, on: cpu) }
    }
}
