import AttribCore
import Synchronization

/// A GPT-2 language model (pre-LayerNorm blocks, causal multi-head attention scaled by
/// 1/√d_h, tanh-GELU MLP, tied unembedding logits = ln_f(h)·wteᵀ) on one device, with
/// hooks for attribution: cache any activation (`forward(_:cache:)`), patch activations
/// row by row (`forward(_:patches:)`), and back-propagate a metric to any activation with
/// chosen blocks' residual contributions cut (`backward(_:upstream:nodes:gradDrop:)`).
/// Inference only: backward computes activation gradients, not weight gradients.
///
/// The model is a graph (GPT2Model+Graph.swift) run by the graph executor: the forward with
/// caches and patches is in GPT2Forward.swift, the backward in GPT2Backward.swift.
public final class GPT2Model: @unchecked Sendable {
    public let config: GPT2Config
    public let device: any Device
    public let dtype: DType

    /// One block as the layers its graph runs: LayerNorms, and the Conv1D projections as
    /// Linear layers (weight [out, in], each keeping its transpose for the forward product),
    /// c_attn split into its q, k, v thirds.
    struct Block {
        let ln1: LayerNormLayer
        let q: Linear, k: Linear, v: Linear, o: Linear      // D → D
        let ln2: LayerNormLayer
        let fc: Linear, proj: Linear                        // D → F, F → D
    }

    let blocks: [Block]
    /// Token embeddings [V, D] as the embedding layer, and the tied unembedding (ln_f(h)·wteᵀ).
    let embedding: Embedding, unembedding: Linear
    /// Position embeddings [n_positions, D].
    let wpe: Tensor
    let lnf: LayerNormLayer
    /// The graphs of the prompt lengths used so far, by (T, last position only): each shares
    /// the layers above, so a new length costs no weight copy.
    let graphs = Mutex<[GraphKey: GraphExecutor]>([:])
    struct GraphKey: Hashable { let tokens: Int, last: Bool }

    init(config: GPT2Config, device: any Device, dtype: DType, blocks: [Block], wte: Tensor, wpe: Tensor,
         lnf: LayerNormLayer) throws {
        self.config = config; self.device = device; self.dtype = dtype
        self.blocks = blocks; self.wpe = wpe; self.lnf = lnf
        embedding = try Embedding(weight: wte)
        unembedding = try Linear(weight: wte, bias: nil)
    }

    /// Loads a Hugging Face GPT-2 directory as saved: config.json and model.safetensors with
    /// HF names (wte.weight, wpe.weight, h.N.ln_1.*, h.N.attn.c_attn.*, h.N.attn.c_proj.*,
    /// h.N.ln_2.*, h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.*), optionally prefixed
    /// "transformer." (GPT2LMHeadModel). The attn.bias / attn.masked_bias buffers are
    /// ignored, and lm_head.weight when it equals wte (tied). Every tensor is checked against
    /// the shape the config implies (an error names the tensor and both shapes); a tensor
    /// the model does not use is an error (a config that does not match the weights).
    public static func load(_ directory: String, on device: any Device, dtype: DType = .float32) throws -> GPT2Model {
        let configPath = directory + "/config.json", weightsPath = directory + "/model.safetensors"
        let c = try GPT2Config.read(configPath)
        let file = try SafeTensorsFile(path: weightsPath)
        guard dtype.isFloatingPoint, device.supports(dtype) else {
            throw AttribError.unsupportedDType(op: "GPT2Model.load", dtype: dtype, device: device.info.summary)
        }
        let prefix = file.names.contains { $0.hasPrefix("transformer.") } ? "transformer." : ""
        var used = Set<String>()
        let (d, f, v) = (c.nEmbd, c.nInner, c.vocabSize)

        func name(_ n: String) throws -> String {
            let full = prefix + n
            guard file.contains(full) else {
                throw AttribError.io(path: weightsPath, detail: "tensor '\(full)' is missing (the config \(configPath) has n_layer = \(c.nLayer))")
            }
            used.insert(full)
            return full
        }
        func tensor(_ n: String, _ shape: [Int]) throws -> Tensor {
            try file.tensor(name(n), shape: shape, dtype: dtype, on: device, weight: true)
        }
        func host(_ n: String, _ shape: [Int]) throws -> [Double] {
            let full = try name(n)
            let e = try file.entry(full)
            guard e.shape == shape else {
                throw AttribError.io(path: weightsPath, detail: "tensor '\(full)': shape \(e.shape) (\(e.dtype)), expected \(shape)")
            }
            return try file.weightDoubles(full)
        }
        func upload(_ values: [Double], _ shape: [Int]) throws -> Tensor {
            try Tensor(values, shape: shape, dtype: dtype, on: device)
        }

        var blocks: [Block] = []
        for l in 0..<c.nLayer {
            let p = "h.\(l)."
            // c_attn [D, 3D] → the q, k, v column thirds, each [D, D].
            let w = try host(p + "attn.c_attn.weight", [d, 3 * d]), b = try host(p + "attn.c_attn.bias", [3 * d])
            func third(_ k: Int) throws -> (Tensor, Tensor) {
                var m = [Double](repeating: 0, count: d * d)
                for i in 0..<d { for j in 0..<d { m[i * d + j] = w[i * 3 * d + k * d + j] } }
                return (try upload(m, [d, d]), try upload(Array(b[(k * d)..<((k + 1) * d)]), [d]))
            }
            let (wq, bq) = try third(0), (wk, bk) = try third(1), (wv, bv) = try third(2)
            // Conv1D weights are [in, out] (x·W): Linear takes W's transpose, [out, in].
            func linear(_ w: Tensor, _ b: Tensor) throws -> Linear { try Linear(weight: w.transposed01(), bias: b) }
            func layerNorm(_ n: String) throws -> LayerNormLayer {
                try LayerNormLayer(normalizedShape: [d], eps: c.layerNormEpsilon, weight: tensor(n + ".weight", [d]),
                                   bias: tensor(n + ".bias", [d]), device: device, dtype: dtype)
            }
            blocks.append(Block(
                ln1: try layerNorm(p + "ln_1"),
                q: try linear(wq, bq), k: try linear(wk, bk), v: try linear(wv, bv),
                o: try linear(tensor(p + "attn.c_proj.weight", [d, d]), tensor(p + "attn.c_proj.bias", [d])),
                ln2: try layerNorm(p + "ln_2"),
                fc: try linear(tensor(p + "mlp.c_fc.weight", [d, f]), tensor(p + "mlp.c_fc.bias", [f])),
                proj: try linear(tensor(p + "mlp.c_proj.weight", [f, d]), tensor(p + "mlp.c_proj.bias", [d]))))
        }
        let wte = try tensor("wte.weight", [v, d])
        let wpe = try tensor("wpe.weight", [c.nPositions, d])
        let lnf = try LayerNormLayer(normalizedShape: [d], eps: c.layerNormEpsilon, weight: tensor("ln_f.weight", [d]),
                                     bias: tensor("ln_f.bias", [d]), device: device, dtype: dtype)

        // Tied lm_head: accepted only when it is wte.
        for head in ["lm_head.weight", prefix + "lm_head.weight"] where file.contains(head) && !used.contains(head) {
            let e = try file.entry(head)
            guard e.shape == [v, d], try file.doubles(head) == file.doubles(prefix + "wte.weight") else {
                throw AttribError.io(path: weightsPath, detail: "tensor '\(head)' (shape \(e.shape)) differs from wte.weight: untied unembeddings are not supported")
            }
            used.insert(head)
        }
        let unused = file.names.filter { n in
            !used.contains(n) && !n.hasSuffix(".attn.bias") && !n.hasSuffix(".attn.masked_bias")
        }
        guard unused.isEmpty else {
            throw AttribError.io(path: weightsPath, detail: "tensors \(unused.prefix(8)) are not used by a GPT-2 with the config in \(configPath) (n_layer = \(c.nLayer)): the config does not match the weights")
        }
        return try GPT2Model(config: c, device: device, dtype: dtype, blocks: blocks, wte: wte, wpe: wpe, lnf: lnf)
    }

    /// Checks a batch of prompts (equal lengths, 1…n_positions tokens, ids in the vocabulary)
    /// and returns (B, T, the ids flattened row by row).
    public func checkTokens(_ tokens: [[Int32]]) throws -> (batch: Int, length: Int, ids: [Int32]) {
        let op = "GPT2Model"
        guard let first = tokens.first else {
            throw AttribError.invalidArgument(op: op, detail: "no prompts: the batch is empty")
        }
        let t = first.count
        guard t >= 1 else { throw AttribError.invalidArgument(op: op, detail: "prompt 0 has no tokens") }
        if let bad = tokens.firstIndex(where: { $0.count != t }) {
            throw AttribError.shapeMismatch(op: op, detail: "prompt \(bad) has \(tokens[bad].count) tokens, prompt 0 has \(t): the prompts of a batch must have equal lengths")
        }
        guard t <= config.nPositions else {
            throw AttribError.invalidArgument(op: op, detail: "prompts of \(t) tokens are longer than the model's n_positions = \(config.nPositions)")
        }
        for (r, row) in tokens.enumerated() {
            if let p = row.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw AttribError.indexOutOfRange(op: op, detail: "token id \(row[p]) at prompt \(r), position \(p) is outside the vocabulary 0..<\(config.vocabSize)")
            }
        }
        return (tokens.count, t, tokens.flatMap { $0 })
    }
}
