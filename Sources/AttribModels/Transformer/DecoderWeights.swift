import AttribCore
import FoundationEssentials

/// Where a decoder's weights come from, by Hugging Face tensor name: a model.safetensors, the
/// shards a model.safetensors.index.json names, or a GGUF file under its HF names. Shapes are
/// PyTorch's ([out, in] for a Linear weight).
protocol DecoderWeightSource: AnyObject {
    /// The file or directory, for messages.
    var path: String { get }
    var names: [String] { get }
    func contains(_ name: String) -> Bool
    func shape(_ name: String) throws -> [Int]
    /// The tensor as `dtype` on `device` (finite values checked).
    func tensor(_ name: String, dtype: DType, on device: any Device) throws -> Tensor
    /// The values on the host (finite values checked), for weights that need rearranging.
    func values(_ name: String) throws -> [Double]
    /// The builder states each tensor's expected shape before asking for it: a source that makes
    /// tensors (RandomDecoderWeights) takes its shapes from this; a file ignores it.
    func declare(_ name: String, _ shape: [Int])
}

extension DecoderWeightSource {
    func declare(_ name: String, _ shape: [Int]) {}
}

/// A Hugging Face directory's safetensors weights: model.safetensors, or the shards listed in
/// model.safetensors.index.json ("weight_map": tensor name → shard file). Every shard is
/// opened (and so checked: header, sizes, truncation) before any tensor is read; a tensor the
/// index places in a shard that lacks it is an error naming both.
final class SafeTensorsWeights: DecoderWeightSource {
    let path: String
    let names: [String]
    private let fileOf: [String: SafeTensorsFile]

    init(directory: String) throws {
        let single = directory + "/model.safetensors", index = directory + "/model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: single) {
            let f = try SafeTensorsFile(path: single)
            path = single; names = f.names
            fileOf = Dictionary(uniqueKeysWithValues: f.names.map { ($0, f) })
            return
        }
        guard FileManager.default.fileExists(atPath: index) else {
            throw AttribError.io(path: directory, detail: "no model.safetensors and no model.safetensors.index.json (sharded weights)")
        }
        path = index
        let top = try DecoderConfig.jsonObject(index)
        guard case let .object(map)? = top["weight_map"] else {
            throw AttribError.io(path: index, detail: "no \"weight_map\" object (tensor name → shard file)")
        }
        var shards: [String: SafeTensorsFile] = [:], fileOf: [String: SafeTensorsFile] = [:]
        for (name, value) in map {
            guard case let .string(shard) = value, !shard.contains("/"), !shard.isEmpty else {
                throw AttribError.io(path: index, detail: "weight_map[\"\(name)\"] = \(value.summary); expected a shard file name in the same directory")
            }
            let file: SafeTensorsFile
            if let f = shards[shard] { file = f } else {
                file = try SafeTensorsFile(path: directory + "/" + shard)
                shards[shard] = file
            }
            guard file.contains(name) else {
                throw AttribError.io(path: file.path, detail: "tensor '\(name)' is not in this shard, though \(index) places it there")
            }
            fileOf[name] = file
        }
        // A shard's tensor the index does not list would be silently dropped.
        for (shard, f) in shards {
            if let stray = f.names.first(where: { fileOf[$0] == nil }) {
                throw AttribError.io(path: f.path, detail: "tensor '\(stray)' is in shard \(shard) but missing from the index \(index)")
            }
        }
        names = map.map(\.key)
        self.fileOf = fileOf
    }

    func contains(_ name: String) -> Bool { fileOf[name] != nil }

    private func file(_ name: String) throws -> SafeTensorsFile {
        guard let f = fileOf[name] else { throw AttribError.io(path: path, detail: "tensor '\(name)' is missing") }
        return f
    }
    func shape(_ name: String) throws -> [Int] { try file(name).entry(name).shape }
    func tensor(_ name: String, dtype: DType, on device: any Device) throws -> Tensor {
        try file(name).tensor(name, dtype: dtype, on: device, weight: true)
    }
    func values(_ name: String) throws -> [Double] { try file(name).weightDoubles(name) }
}
