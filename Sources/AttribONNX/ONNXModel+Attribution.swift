import AttribCore
import AttribModels
import FoundationEssentials

extension ONNXModel {
    /// Whether `path` names an ONNX model: a .onnx file, or a directory holding model.onnx.
    public static func isONNX(_ path: String) -> Bool {
        if path.hasSuffix(".onnx") { return true }
        return FileManager.default.fileExists(atPath: path + "/model.onnx")
    }

    /// An ONNX classifier as a model the attribution methods run: `path` is a .onnx file, or a
    /// directory with model.onnx and optional class names (labels.json, a JSON list of strings,
    /// or labels.txt, one per line; beside a .onnx file, FILE.labels.json or FILE.labels.txt).
    public static func attributionModel(at path: String, on device: any Device, dtype: DType = .float32) throws -> GraphModel {
        try attributionModel(load(file(at: path), on: device, dtype: dtype), at: path, on: device, dtype: dtype)
    }

    /// The same from the model already loaded from `path` (on `device`, in `dtype`): a command
    /// that must look at a model's inputs first loads it once.
    public static func attributionModel(_ m: ONNXModel, at path: String, on device: any Device, dtype: DType = .float32) throws -> GraphModel {
        try GraphModel(m.graph, labels: try attributionLabels(at: path), device: device, dtype: dtype, source: file(at: path))
    }

    /// The .onnx file a `--model` path names: itself, or the directory's model.onnx.
    public static func file(at path: String) -> String { path.hasSuffix(".onnx") ? path : path + "/model.onnx" }

    /// The directory that holds the model's side files (labels, tokenizer): the directory given,
    /// or the one the .onnx file is in.
    public static func directory(at path: String) -> String {
        guard path.hasSuffix(".onnx") else { return path }
        return path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    }

    /// The class names beside an ONNX model (as attributionModel reads them), nil for none.
    public static func attributionLabels(at path: String) throws -> [String]? {
        let stem = path.hasSuffix(".onnx") ? String(path.dropLast(5)) + "." : path + "/"
        return try readLabels(json: stem + "labels.json", text: stem + "labels.txt")
    }

    static func readLabels(json: String, text: String) throws -> [String]? {
        if let data = readFileData(json) {
            do { return try JSONDecoder().decode([String].self, from: data) } catch {
                throw AttribError.io(path: json, detail: "not a JSON list of class names: \(error)")
            }
        }
        if let data = readFileData(text) {
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            return Array(lines.reversed().drop { $0.isEmpty }.reversed())
        }
        return nil
    }
}
