import AttribCore

extension DecoderModel {
    /// Loads a Hugging Face GPT-2 directory as saved: config.json and model.safetensors with
    /// HF names (wte.weight, wpe.weight, h.N.ln_1.*, h.N.attn.c_attn.*, h.N.attn.c_proj.*,
    /// h.N.ln_2.*, h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.*), optionally prefixed
    /// "transformer." (GPT2LMHeadModel). The attn.bias / attn.masked_bias buffers are
    /// ignored, and lm_head.weight when it equals wte (tied). Every tensor is checked against
    /// the shape the config implies (an error names the tensor and both shapes); a tensor
    /// the model does not use is an error (a config that does not match the weights).
    static func loadGPT2(_ directory: String, config c: DecoderConfig, on device: any Device, dtype: DType, weights: DType) throws -> DecoderModel {
        let configPath = directory + "/config.json", weightsPath = directory + "/model.safetensors"
        let file = try SafeTensorsFile(path: weightsPath)
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
        func stored(_ t: Tensor) throws -> Tensor {
            weights == dtype ? t : try Tensor(t.floats(), shape: t.shape, storedAs: weights, on: device)
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
            // Conv1D weights are [in, out] (x·W): Linear takes W's transpose, [out, in], stored as `weights`.
            func linear(_ w: Tensor, _ b: Tensor) throws -> Linear { try Linear(weight: stored(w.transposed01()), bias: b) }
            func layerNorm(_ n: String) throws -> LayerNormLayer {
                try LayerNormLayer(normalizedShape: [d], eps: c.layerNormEpsilon, weight: tensor(n + ".weight", [d]),
                                   bias: tensor(n + ".bias", [d]), device: device, dtype: dtype)
            }
            blocks.append(Block(
                norm1: LayerOp(try layerNorm(p + "ln_1")), norm2: LayerOp(try layerNorm(p + "ln_2")),
                q: try linear(wq, bq), k: try linear(wk, bk), v: try linear(wv, bv),
                o: try linear(tensor(p + "attn.c_proj.weight", [d, d]), tensor(p + "attn.c_proj.bias", [d])),
                gate: nil,
                fc: try linear(tensor(p + "mlp.c_fc.weight", [d, f]), tensor(p + "mlp.c_fc.bias", [f])),
                proj: try linear(tensor(p + "mlp.c_proj.weight", [f, d]), tensor(p + "mlp.c_proj.bias", [d]))))
        }
        let wte = try stored(tensor("wte.weight", [v, d]))
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
        return try DecoderModel(config: c, device: device, dtype: dtype, blocks: blocks, wte: wte, wpe: wpe, finalNorm: LayerOp(lnf))
    }
}
