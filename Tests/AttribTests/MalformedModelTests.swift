import Attrib
import Foundation
import Testing

/// Issue 23's cases, each the same edit to a copy of a bundled model or input that crashed
/// the engine or gave a silent wrong number: now a one-line error naming the file, the layer
/// or field, and the value.
@Suite struct MalformedModelTests {
    /// A copy of Models/<name> in a fresh temporary directory, config.json passed through `edit`.
    static func copy(_ name: String, edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let src = fixturePath("../../Models/" + name)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-malformed-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: src, toPath: dir)
        let url = URL(fileURLWithPath: dir + "/config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return dir
    }

    static func layer(_ json: inout [String: Any], _ i: Int, _ key: String, _ value: Any) {
        var layers = json["layers"] as! [[String: Any]]
        layers[i][key] = value
        json["layers"] = layers
    }

    /// Expects loading to fail with a single-line error holding every fragment.
    static func expectLoadError(_ dir: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        expectAttribError([dir + "/config.json"] + fragments, sourceLocation: sourceLocation) { _ = try Sequential.load(dir, on: cpu) }
        do { _ = try Sequential.load(dir, on: cpu) } catch {
            #expect(!"\(error)".contains("\n"), "one line: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("sizes read from config.json are checked before any arithmetic or allocation (crashes 1, 2, 4)")
    func sizes() throws {
        let big = 1 << 32, huge = Int.max
        Self.expectLoadError(try Self.copy("digits-mlp") { $0["input_shape"] = [1, big, big] }, ["input_shape", "\(big)", "2147483647"])
        Self.expectLoadError(try Self.copy("digits-cnn") { $0["input_shape"] = [1, huge, 8] }, ["input_shape", "\(huge)"])
        Self.expectLoadError(try Self.copy("digits-cnn") { Self.layer(&$0, 0, "padding", [huge, 1]) }, ["layer 0 (Conv2d)", "padding", "\(huge)"])
        Self.expectLoadError(try Self.copy("digits-cnn") { Self.layer(&$0, 0, "stride", [1]) }, ["layer 0 (Conv2d)", "stride = [1]"])
        Self.expectLoadError(try Self.copy("digits-cnn") { Self.layer(&$0, 2, "kernel_size", [-1, 2]) }, ["layer 2 (AvgPool2d)", "kernel_size = [-1, 2]"])
        // LayerNorm without weights: its normalized_shape is checked against the input before
        // anything is allocated ([2^31] asked for 16 GiB; [-1] trapped; [2^31, 2^31] segfaulted).
        for ns in [[-1], [1 << 62, 4], [1 << 31], [1 << 31, 1 << 31], [1 << 28], [0]] {
            let dir = try Self.copy("digits-mlp") { json in
                var layers = json["layers"] as! [[String: Any]]
                layers.insert(["type": "LayerNorm", "normalized_shape": ns, "elementwise_affine": false], at: 1)
                json["layers"] = layers
            }
            Self.expectLoadError(dir, ["layer 1 (LayerNorm)", "normalized_shape \(ns)"])
        }
    }

    @Test("labels must be one per output (crash 3: too few indexed out of range; too many were accepted)")
    func labels() throws {
        for labels in [Array(repeating: "x", count: 9), [], Array(repeating: "x", count: 11)] {
            Self.expectLoadError(try Self.copy("digits-mlp") { $0["labels"] = labels }, ["labels has \(labels.count) entries", "10 outputs"])
        }
    }

    @Test("implausible eps values are refused")
    func epsilon() throws {
        let dir = try Self.copy("digits-mlp") { json in
            var layers = json["layers"] as! [[String: Any]]
            layers.insert(["type": "LayerNorm", "normalized_shape": [128], "elementwise_affine": false, "eps": 1.8e19], at: 2)
            json["layers"] = layers
        }
        Self.expectLoadError(dir, ["layer 2 (LayerNorm)", "eps = 1.8e+19"])
        let gpt = try Self.copy("induction-2l") { $0["layer_norm_epsilon"] = 1.8e19 }
        expectAttribError([gpt + "/config.json", "layer_norm_epsilon = 1.8e+19"]) { _ = try DecoderModel.load(gpt, on: cpu) }
    }

    @Test("GPT-2 sizes: n_embd of 2^62 or −2^63 is an error, not an overflow of 4·n_embd (crash 5)")
    func gpt2Sizes() throws {
        for v in [1 << 62, Int.min] {
            let dir = try Self.copy("induction-2l") { $0["n_embd"] = v }
            expectAttribError([dir + "/config.json", "n_embd = \(v)"]) { _ = try DecoderModel.load(dir, on: cpu) }
        }
    }

    @Test("NaN and infinite weights are refused at load, naming the tensor")
    func nonFiniteWeights() throws {
        for (model, tensor) in [("digits-mlp", "1.weight"), ("induction-2l", "transformer.ln_f.weight")] {
            let dir = try Self.copy(model)
            let file = try SafeTensorsFile(path: dir + "/model.safetensors")
            var all: [(String, [Int], [Double], SafeTensorsDType)] = []
            for e in file.entryList {
                var v = try file.doubles(e.name)
                if e.name == tensor || e.name == tensor.replacingOccurrences(of: "transformer.", with: "") { v[0] = .nan }
                all.append((e.name, e.shape, v, e.dtype))
            }
            try SafeTensorsWriter.write(all, to: dir + "/model.safetensors")
            expectAttribError([dir + "/model.safetensors", "element 0 is nan", "must be finite"]) {
                if model == "digits-mlp" { _ = try Sequential.load(dir, on: cpu) } else { _ = try DecoderModel.load(dir, on: cpu) }
            }
        }
    }

    @Test("sample files: exact per-sample shapes, finite values, a zero-element (2^58, 0) array refused without overflow (crash 6)")
    func sampleFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-samples-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A .npy header claiming (2^58, 0): no data, and a product that overflows once multiplied.
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(1 << 58), 0), }"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let padded = header + String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        bytes += [UInt8(padded.utf8.count & 0xff), UInt8(padded.utf8.count >> 8)] + Array(padded.utf8)
        let empty = dir + "/empty.npy"
        try Data(bytes).write(to: URL(fileURLWithPath: empty))
        expectAttribError([empty, "baselines have shape [\(1 << 58), 0]", "[N] + [1, 8, 8]"]) {
            _ = try NPY.samples(empty, sampleShape: [1, 8, 8], what: "baselines")
        }
        let transposed = dir + "/hwc.npy"
        try NPY.write([Double](repeating: 0.5, count: 6 * 8 * 8 * 3), shape: [6, 8, 8, 3], to: transposed)
        expectAttribError([transposed, "[6, 8, 8, 3]", "[N] + [3, 8, 8]"]) { _ = try NPY.samples(transposed, sampleShape: [3, 8, 8], what: "inputs") }
        let withNaN = dir + "/nan.npy"
        var v = [Double](repeating: 0.5, count: 3 * 64)
        v[64 + 5] = .nan
        try NPY.write(v, shape: [3, 1, 8, 8], to: withNaN)
        expectAttribError([withNaN, "input 1 has a non-finite value (nan) at element 5"]) { _ = try NPY.samples(withNaN, sampleShape: [1, 8, 8], what: "inputs") }
        // The flat form stays accepted.
        let flat = dir + "/flat.npy"
        try NPY.write([Double](repeating: 0.25, count: 2 * 64), shape: [2, 64], to: flat)
        #expect(try NPY.samples(flat, sampleShape: [1, 8, 8], what: "inputs").rows == 2)
    }

    @Test("table numbers: an infinite or huge score prints instead of trapping in Int conversion (crash 7)")
    func tableNumbers() {
        #expect(fixed(1e20, 3) == "1.00e+20")
        #expect(fixed(-3.5e19, 1) == "-3.50e+19")
        #expect(fixed(.infinity, 2) == "inf")
        #expect(fixed(12.345, 2) == "12.35")
    }

    @Test(".npy header errors quote the header on one line, shortened")
    func npyHeaderQuoting() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-npyq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let header = "{'descr': '<f4',\n 'fortran_order': False,\n 'shape': (2,), 'extra': '" + String(repeating: "z", count: 300) + "'}"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let padded = header + String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        bytes += [UInt8(padded.utf8.count & 0xff), UInt8(padded.utf8.count >> 8)] + Array(padded.utf8) + [UInt8](repeating: 0, count: 8)
        let p = dir + "/multi.npy"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        do { _ = try NPY.read(p); Issue.record("no error") } catch {
            let m = "\(error)"
            #expect(!m.contains("\n") && m.contains("\\n") && m.contains("…") && m.count < 400, "\(m)")
        }
    }
}
