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
        let file = path.hasSuffix(".onnx") ? path : path + "/model.onnx"
        let m = try load(file, on: device, dtype: dtype)
        let stem = path.hasSuffix(".onnx") ? String(path.dropLast(5)) + "." : path + "/"
        let labels = try readLabels(json: stem + "labels.json", text: stem + "labels.txt")
        return try GraphModel(m.graph, labels: labels, device: device, dtype: dtype, source: file)
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
