import AttribCore
import FoundationEssentials

/// config.json of a sequential model directory (docs/model-format.md):
/// the per-sample input shape and the layers in nn.Sequential order.
public struct SequentialConfig: Codable, Sendable {
    public var format: String
    public var version: Int
    public var inputShape: [Int]
    public var layers: [LayerSpec]
    public var labels: [String]?

    enum CodingKeys: String, CodingKey {
        case format, version, layers, labels
        case inputShape = "input_shape"
    }

    /// One layer's entry: its type and the settings that type takes.
    public struct LayerSpec: Codable, Sendable {
        public var type: String
        public var inFeatures: Int?, outFeatures: Int?
        public var inChannels: Int?, outChannels: Int?
        public var kernelSize: [Int]?, stride: [Int]?, padding: [Int]?
        public var bias: Bool?
        public var normalizedShape: [Int]?
        public var eps: Double?
        public var elementwiseAffine: Bool?
        public var approximate: String?
        public var numEmbeddings: Int?, embeddingDim: Int?
        public var dim: Int?
        public var dilation: [Int]?, groups: Int?
        public var countIncludePad: Bool?
        public var ceilMode: Bool?

        enum CodingKeys: String, CodingKey {
            case type, bias, eps, approximate, dim, stride, padding, dilation, groups
            case countIncludePad = "count_include_pad", ceilMode = "ceil_mode"
            case inFeatures = "in_features", outFeatures = "out_features"
            case inChannels = "in_channels", outChannels = "out_channels"
            case kernelSize = "kernel_size"
            case normalizedShape = "normalized_shape", elementwiseAffine = "elementwise_affine"
            case numEmbeddings = "num_embeddings", embeddingDim = "embedding_dim"
        }

        public init(type: String) { self.type = type }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            inFeatures = try c.decodeIfPresent(Int.self, forKey: .inFeatures)
            outFeatures = try c.decodeIfPresent(Int.self, forKey: .outFeatures)
            inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels)
            outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels)
            kernelSize = try Self.pair(c, .kernelSize)
            stride = try Self.pair(c, .stride)
            padding = try Self.pair(c, .padding)
            bias = try c.decodeIfPresent(Bool.self, forKey: .bias)
            normalizedShape = try Self.pairOrList(c, .normalizedShape)
            eps = try c.decodeIfPresent(Double.self, forKey: .eps)
            elementwiseAffine = try c.decodeIfPresent(Bool.self, forKey: .elementwiseAffine)
            approximate = try c.decodeIfPresent(String.self, forKey: .approximate)
            numEmbeddings = try c.decodeIfPresent(Int.self, forKey: .numEmbeddings)
            embeddingDim = try c.decodeIfPresent(Int.self, forKey: .embeddingDim)
            dim = try c.decodeIfPresent(Int.self, forKey: .dim)
            dilation = try Self.pair(c, .dilation)
            groups = try c.decodeIfPresent(Int.self, forKey: .groups)
            countIncludePad = try c.decodeIfPresent(Bool.self, forKey: .countIncludePad)
            ceilMode = try c.decodeIfPresent(Bool.self, forKey: .ceilMode)
        }

        /// PyTorch writes kernel_size/stride/padding as an int or a pair: an int k means [k, k].
        static func pair(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Int]? {
            if let v = try? c.decodeIfPresent(Int.self, forKey: key) { return [v, v] }
            return try c.decodeIfPresent([Int].self, forKey: key)
        }

        static func pairOrList(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Int]? {
            if let v = try? c.decodeIfPresent(Int.self, forKey: key) { return [v] }
            return try c.decodeIfPresent([Int].self, forKey: key)
        }
    }

    /// Reads and checks config.json.
    public static func read(_ path: String) throws -> SequentialConfig {
        guard let data = readFileData(path) else {
            throw AttribError.io(path: path, detail: "cannot read the model config (missing or unreadable)")
        }
        let config: SequentialConfig
        do {
            config = try JSONDecoder().decode(SequentialConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw AttribError.io(path: path, detail: "missing \"\(key.stringValue)\" at \(Self.where(ctx.codingPath))")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw AttribError.io(path: path, detail: "wrong type at \(Self.where(ctx.codingPath)): \(ctx.debugDescription)")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw AttribError.io(path: path, detail: "null at \(Self.where(ctx.codingPath))")
        } catch {
            throw AttribError.io(path: path, detail: "not a valid model config: \(error)")
        }
        // Every field understood or refused (SequentialFields): the decoder alone skips unknown keys.
        let parsed: JSONValue
        do { parsed = try data.withUnsafeBytes { try JSONParser.parse($0) } } catch {
            throw AttribError.io(path: path, detail: "not valid JSON: \(error)")
        }
        try SequentialFields.check(parsed, path: path)
        guard config.format == "attrib-sequential" else {
            throw AttribError.io(path: path, detail: "format is \"\(config.format)\", expected \"attrib-sequential\"")
        }
        guard config.version == 1 else { throw AttribError.io(path: path, detail: "version \(config.version) is not supported (1 is)") }
        guard !config.inputShape.isEmpty, SizeLimits.product(config.inputShape) != nil else {
            throw AttribError.io(path: path, detail: "input_shape \(config.inputShape) must be non-empty with every dimension ≥ 1 and at most \(SizeLimits.maxSampleElements) values in all (the 32-bit index limit of one sample)")
        }
        guard !config.layers.isEmpty else { throw AttribError.io(path: path, detail: "no layers") }
        return config
    }

    private static func `where`(_ path: [CodingKey]) -> String {
        path.isEmpty ? "the top level" : path.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
    }
}
