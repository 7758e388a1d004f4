import AttribCore
import Synchronization

/// A decoder-only language model (GPT-2, Llama, Qwen2, Mistral, Gemma, GPT-NeoX; see
/// `DecoderConfig`) on one device, with hooks for attribution: cache any activation
/// (`forward(_:cache:)`), patch activations row by row (`forward(_:patches:)`), and
/// back-propagate a metric to any activation with chosen blocks' residual contributions cut
/// (`backward(_:upstream:nodes:gradDrop:)`). Inference only: backward computes activation
/// gradients, not weight gradients.
///
/// Every family is one graph (DecoderModel+Graph.swift) run by the graph executor: the forward
/// with caches and patches is in DecoderForward.swift, the backward in DecoderBackward.swift.
/// The loaders turn each family's weights into the blocks below (DecoderModel+GPT2.swift,
/// DecoderModel+HF.swift, DecoderModel+GGUF.swift).
public final class DecoderModel: @unchecked Sendable {
    public let config: DecoderConfig
    public let device: any Device
    /// The arithmetic's type (Float32, or Float64 for reference runs).
    public let dtype: DType
    /// The weight matrices' and embedding tables' storage type: `dtype`, or BFloat16/Float16
    /// with Float32 arithmetic (Linear+HalfWeight.swift). Norms, biases and positions stay `dtype`.
    public let weightDType: DType

    /// One block as the ops its graph runs. Linear weights are [out, in].
    struct Block {
        /// The norms before attention and before the MLP (LayerNorm or RMSNorm graph ops).
        let norm1: any GraphOp, norm2: any GraphOp
        /// q: D → H·d_h, k and v: D → H_kv·d_h, o: H·d_h → D.
        let q: Linear, k: Linear, v: Linear, o: Linear
        /// A gated MLP's gate (D → F); nil for a plain MLP.
        let gate: Linear?
        /// The MLP's input projection (c_fc, up_proj, dense_h_to_4h: D → F) and output (F → D).
        let fc: Linear, proj: Linear
    }

    let blocks: [Block]
    /// Token embeddings [V, D] as the embedding layer, and the unembedding (logits = norm(h)·Wᵀ,
    /// W the token embeddings when tied).
    let embedding: Embedding, unembedding: Linear
    /// Learned position embeddings [n_positions, D] (GPT-2); nil for RoPE models.
    let wpe: Tensor?
    let finalNorm: any GraphOp
    /// The graphs of the prompt lengths used so far, by (T, last position only): each shares
    /// the layers above, so a new length costs no weight copy.
    let graphs = Mutex<[GraphKey: GraphExecutor]>([:])
    struct GraphKey: Hashable { let tokens: Int, last: Bool, keeping: Set<String>?, prefix: Int }

    convenience init(config: DecoderConfig, device: any Device, dtype: DType, blocks: [Block], wte: Tensor, wpe: Tensor?,
                     finalNorm: any GraphOp, unembedding: Tensor? = nil) throws {
        self.init(config: config, device: device, dtype: dtype, blocks: blocks, embedding: try Embedding(weight: wte), wpe: wpe,
                  finalNorm: finalNorm, unembedding: try Linear(weight: unembedding ?? wte, bias: nil))
    }

    /// From layers already made (another model's, shared: `ungrouped()`).
    init(config: DecoderConfig, device: any Device, dtype: DType, blocks: [Block], embedding: Embedding, wpe: Tensor?,
         finalNorm: any GraphOp, unembedding: Linear) {
        self.config = config; self.device = device; self.dtype = dtype; weightDType = embedding.weight.dtype
        self.blocks = blocks; self.wpe = wpe; self.finalNorm = finalNorm
        self.embedding = embedding; self.unembedding = unembedding
    }

    /// Checks a batch of prompts (equal lengths, 1…n_positions tokens, ids in the vocabulary)
    /// and returns (B, T, the ids flattened row by row).
    /// The storage type for a model's weight matrices: nil or `dtype` keeps them in `dtype`;
    /// BFloat16 and Float16 need Float32 arithmetic (they widen into Float32 products).
    static func weightStorage(_ weights: DType?, dtype: DType, device: any Device, op: String) throws -> DType {
        guard dtype.isFloatingPoint, device.supports(dtype) else {
            throw AttribError.unsupportedDType(op: op, dtype: dtype, device: device.info.summary)
        }
        guard let w = weights, w != dtype else { return dtype }
        guard w.isStorageOnly else {
            throw AttribError.invalidArgument(op: op, detail: "weights stored as \(w) with \(dtype) arithmetic; the weight dtype is the arithmetic's, bfloat16 or float16")
        }
        guard dtype == .float32 else {
            throw AttribError.invalidArgument(op: op, detail: "\(w) weights compute in float32, not \(dtype): a float64 reference run needs float64 weights")
        }
        return w
    }

    public func checkTokens(_ tokens: [[Int32]]) throws -> (batch: Int, length: Int, ids: [Int32]) {
        let op = "DecoderModel"
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
