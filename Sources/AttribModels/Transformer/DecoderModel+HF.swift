import AttribCore
import FoundationEssentials

extension DecoderModel {
    /// Loads a Hugging Face model directory: config.json (model_type gpt2, llama, qwen2,
    /// mistral, gemma or gpt_neox) and model.safetensors or sharded weights with
    /// model.safetensors.index.json. Every tensor is checked against the shape the config
    /// implies (an error names the tensor and both shapes); a tensor the model does not use is
    /// an error (a config that does not match the weights), except buffers transformers keeps
    /// beside the weights (rotary inv_freq, attention masks).
    ///
    /// `weights` stores the weight matrices and embeddings as BFloat16 or Float16 (nil: as
    /// `dtype`), with Float32 arithmetic. A BF16 (F16) file loaded as BFloat16 (Float16) keeps
    /// its bits; wider values are rounded once, to nearest even.
    public static func load(_ directory: String, on device: any Device, dtype: DType = .float32, weights: DType? = nil) throws -> DecoderModel {
        let configPath = directory + "/config.json"
        let c = try DecoderConfig.read(configPath)
        let w = try weightStorage(weights, dtype: dtype, device: device, op: "DecoderModel.load")
        if c.family == .gpt2 { return try loadGPT2(directory, config: c, on: device, dtype: dtype, weights: w) }
        return try build(c, from: SafeTensorsWeights(directory: directory), configPath: configPath, on: device, dtype: dtype, weights: w)
    }

    /// Builds the blocks of a Llama-style or GPT-NeoX model from weights under Hugging Face names.
    /// Matrices (Linear weights, embeddings, head) are stored as `weights`, the rest as `dtype`.
    static func build(_ c: DecoderConfig, from w: any DecoderWeightSource, configPath: String,
                      on device: any Device, dtype: DType, weights: DType) throws -> DecoderModel {
        let (d, f, v, h, hkv, dh) = (c.nEmbd, c.nInner, c.vocabSize, c.nHead, c.nKVHead, c.headDim)
        var used = Set<String>()
        func checked(_ name: String, _ shape: [Int]) throws -> String {
            w.declare(name, shape)
            guard w.contains(name) else {
                throw AttribError.io(path: w.path, detail: "tensor '\(name)' is missing (the config \(configPath) describes a \(c.family.rawValue) model with \(c.nLayer) layers)")
            }
            let s = try w.shape(name)
            guard s == shape else {
                throw AttribError.io(path: w.path, detail: "tensor '\(name)': shape \(s), expected \(shape) from \(configPath)")
            }
            used.insert(name)
            return name
        }
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor { try w.tensor(checked(name, shape), dtype: dtype, on: device) }
        func matrix(_ name: String, _ shape: [Int]) throws -> Tensor { try w.tensor(checked(name, shape), dtype: weights, on: device) }
        func optional(_ name: String, _ shape: [Int], _ present: Bool) throws -> Tensor? { present ? try tensor(name, shape) : nil }
        func linear(_ p: String, out: Int, in k: Int, bias: Bool) throws -> Linear {
            try Linear(weight: matrix(p + ".weight", [out, k]), bias: optional(p + ".bias", [out], bias))
        }
        func norm(_ p: String) throws -> any GraphOp {
            switch c.norm {
            case .layerNorm:
                return LayerOp(try LayerNormLayer(normalizedShape: [d], eps: c.layerNormEpsilon, weight: tensor(p + ".weight", [d]),
                                                  bias: tensor(p + ".bias", [d]), device: device, dtype: dtype))
            case .rmsNorm:
                // Gemma stores w and scales by 1 + w.
                let gamma = c.family == .gemma
                    ? try Tensor(w.values(checked(p + ".weight", [d])).map { 1 + $0 }, shape: [d], dtype: dtype, on: device)
                    : try tensor(p + ".weight", [d])
                return RMSNormGraphOp(gamma: gamma, eps: c.layerNormEpsilon)
            }
        }
        var blocks: [Block] = []
        let embedName: String, finalName: String, headName: String
        if c.family == .gptNeoX {
            embedName = "gpt_neox.embed_in.weight"; finalName = "gpt_neox.final_layer_norm"; headName = "embed_out.weight"
            for l in 0..<c.nLayer {
                let p = "gpt_neox.layers.\(l)."
                // query_key_value's rows are [H, 3, d_h] (each head's q, k, v together): split into q, k, v [H·d_h, D].
                let wqkv = try w.values(checked(p + "attention.query_key_value.weight", [3 * h * dh, d]))
                let bqkv = try w.values(checked(p + "attention.query_key_value.bias", [3 * h * dh]))
                func part(_ j: Int) throws -> Linear {
                    var wm = [Double](repeating: 0, count: h * dh * d), bm = [Double](repeating: 0, count: h * dh)
                    for hd in 0..<h {
                        for i in 0..<dh {
                            let src = (hd * 3 + j) * dh + i, dst = hd * dh + i
                            for k in 0..<d { wm[dst * d + k] = wqkv[src * d + k] }
                            bm[dst] = bqkv[src]
                        }
                    }
                    return try Linear(weight: Tensor(wm, shape: [h * dh, d], dtype: weights, on: device),
                                      bias: Tensor(bm, shape: [h * dh], dtype: dtype, on: device))
                }
                blocks.append(Block(norm1: try norm(p + "input_layernorm"), norm2: try norm(p + "post_attention_layernorm"),
                                    q: try part(0), k: try part(1), v: try part(2),
                                    o: try linear(p + "attention.dense", out: d, in: h * dh, bias: true),
                                    gate: nil,
                                    fc: try linear(p + "mlp.dense_h_to_4h", out: f, in: d, bias: true),
                                    proj: try linear(p + "mlp.dense_4h_to_h", out: d, in: f, bias: true)))
            }
        } else {
            embedName = "model.embed_tokens.weight"; finalName = "model.norm"; headName = "lm_head.weight"
            for l in 0..<c.nLayer {
                let p = "model.layers.\(l)."
                blocks.append(Block(norm1: try norm(p + "input_layernorm"), norm2: try norm(p + "post_attention_layernorm"),
                                    q: try linear(p + "self_attn.q_proj", out: h * dh, in: d, bias: c.qkvBias),
                                    k: try linear(p + "self_attn.k_proj", out: hkv * dh, in: d, bias: c.qkvBias),
                                    v: try linear(p + "self_attn.v_proj", out: hkv * dh, in: d, bias: c.qkvBias),
                                    o: try linear(p + "self_attn.o_proj", out: d, in: h * dh, bias: c.outputBias),
                                    gate: try linear(p + "mlp.gate_proj", out: f, in: d, bias: c.mlpBias),
                                    fc: try linear(p + "mlp.up_proj", out: f, in: d, bias: c.mlpBias),
                                    proj: try linear(p + "mlp.down_proj", out: d, in: f, bias: c.mlpBias)))
            }
        }
        let wte = try matrix(embedName, [v, d])
        let finalNorm = try norm(finalName)
        var head: Tensor? = nil
        if !c.tiedEmbeddings {
            head = try matrix(headName, [v, d])
        } else if w.contains(headName) {
            // A tied checkpoint may still store the head; accepted only when it is the embedding.
            guard try w.shape(headName) == [v, d], try w.values(headName) == w.values(embedName) else {
                throw AttribError.io(path: w.path, detail: "tensor '\(headName)' differs from '\(embedName)' but \(configPath) says tie_word_embeddings")
            }
            used.insert(headName)
        }
        let buffers = [".rotary_emb.inv_freq", ".attention.bias", ".attention.masked_bias"]
        let unused = w.names.filter { n in !used.contains(n) && !buffers.contains { n.hasSuffix($0) } }.sorted()
        guard unused.isEmpty else {
            throw AttribError.io(path: w.path, detail: "tensors \(unused.prefix(8)) are not used by a \(c.family.rawValue) model with the config in \(configPath) (\(c.nLayer) layers): the config does not match the weights")
        }
        return try DecoderModel(config: c, device: device, dtype: dtype, blocks: blocks, wte: wte, wpe: nil,
                                finalNorm: finalNorm, unembedding: head)
    }
}
