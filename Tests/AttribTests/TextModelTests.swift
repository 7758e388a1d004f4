import Attrib
import AttribONNX
import Foundation
import Synchronization
import Testing

/// A Hugging Face text classifier exported to ONNX (Tests/Fixtures/onnx/tinybert, made by
/// make_text_fixtures.py): token-id inputs, embeddings looked up by Gather, the exporter's
/// position and token-type ids and attention mask folded at load; logits against PyTorch and
/// layer IG on the embeddings' output against Captum's LayerIntegratedGradients.
@Suite struct TextModelTests {
    static func array(_ file: String) throws -> NPYArray { try NPY.read(fixturePath("onnx/tinybert/\(file).npy")) }
    static var layer: String { get throws { try layer(of: "model.onnx") } }
    /// The embeddings' output in each export (meta.json): the TorchScript exporter's, dynamo's.
    static func layer(of file: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/tinybert/meta.json")))
        return (try JSONSerialization.jsonObject(with: data) as! [String: Any])[file == "model.onnx" ? "layer" : "dynamo_layer"] as! String
    }
    /// The TorchScript exporter's file and torch.onnx.export(dynamo=True)'s.
    static let files = ["model.onnx", "dynamo/model.onnx"]

    @Test("logits against PyTorch (Float64 1e-6: the exporter folded constants in float32; Float32 1e-5), on every device", arguments: files)
    func logits(_ file: String) throws {
        let ids = try Self.array("ids").int32s(), logits = try Self.array("logits").doubles()
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(fixturePath("onnx/tinybert/\(file)"), on: device, dtype: dtype)
            #expect(m.graph.inputs.count == 1 && m.graph.inputs[0].type.dtype == .int32, "the ids are the one input; the rest folded")
            // Rewrites: the exact GELU's five nodes are one GELU; MatMul + Add is a biased Linear.
            #expect(!m.graph.nodes.contains { ($0.op as? LayerOp).map { ($0.layer as? ActivationLayer)?.kind == .erf } ?? false })
            #expect(m.graph.nodes.filter { ($0.op as? LayerOp).map { ($0.layer as? ActivationLayer)?.kind == .geluErf } ?? false }.count == 2)
            // (The dynamo exporter drops the pooler's all-zero bias: a Linear without one, and no Add after it.)
            let biasless = Set(m.graph.nodes.filter { (($0.op as? LayerOp)?.layer as? Linear)?.bias == nil && ($0.op as? LayerOp)?.layer is Linear }.map(\.output))
            #expect(!m.graph.nodes.contains { ($0.op as? ConstantBinaryGraphOp)?.op == .add && $0.inputs.contains(where: biasless.contains) })
            let out = try GraphExecutor(m.graph).forward(["input_ids": Tensor(indices: ids, shape: [4, 16], on: device)])["logits"]!.doubles()
            let tol = dtype == .float64 ? 1e-6 : 1e-5
            #expect(GradientMethodTests.rel(out, logits) <= tol, "\(file) on \(device.id) \(dtype): \(GradientMethodTests.rel(out, logits))")
        }
    }

    @Test("layer IG on the embeddings' output against Captum's LayerIntegratedGradients (Float64 1e-6, Float32 1e-4: GradientMethodTests' bounds), on every device", arguments: files)
    func layerIG(_ file: String) throws {
        let ids = try Self.array("ids").int32s(), targets = try Self.array("targets").int32s().map(Int.init)
        let lig = try Self.array("lig").doubles(), delta = try Self.array("lig_delta").doubles()
        let layer = try Self.layer(of: file)
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(fixturePath("onnx/tinybert/\(file)"), on: device, dtype: dtype)
            let r = try LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, batchRows: 24)
                .attribute(GraphExecutor(m.graph), input: "input_ids", layer: layer, output: "logits", ids: ids,
                           baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: targets, device: device)
            let tol = GradientMethodTests.tolerance(dtype)
            #expect(r.shape == [4, 16, 32] && r.tokenShape == [4, 16])
            #expect(GradientMethodTests.rel(r.attributions, lig) <= tol, "\(device.id) \(dtype): \(GradientMethodTests.rel(r.attributions, lig))")
            for i in 0..<4 { #expect(abs(r.deltas[i] - delta[i]) <= tol * 10, "delta \(i) on \(device.id) \(dtype): \(r.deltas[i]) vs \(delta[i])") }
            // A token's score is its row summed over the hidden dimension.
            #expect(abs(r.tokenScores[5] - lig[(5 * 32)..<(6 * 32)].reduce(0, +)) <= tol * 10)
            #expect(r.targets == targets)
            // No targets: each input's top logit, and the attributions for those targets.
            let exec = GraphExecutor(m.graph)
            let logits = try exec.forward(["input_ids": Tensor(indices: ids, shape: [4, 16], on: device)], outputs: ["logits"])["logits"]!.doubles()
            let classes = logits.count / 4
            let top = (0..<4).map { i in (0..<classes).max { logits[i * classes + $0] < logits[i * classes + $1] }! }
            let p = try LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, batchRows: 24)
                .attribute(exec, input: "input_ids", layer: layer, output: "logits", ids: ids,
                           baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: nil, device: device)
            #expect(p.targets == top, "\(device.id) \(dtype)")
            let q = try LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, batchRows: 24)
                .attribute(exec, input: "input_ids", layer: layer, output: "logits", ids: ids,
                           baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: top, device: device)
            #expect(p.attributions == q.attributions)
        }
    }

    /// Without a cap the batches come from the memory plan: a budget of three rows' activations
    /// gives batches of three (the 64 path rows in 22 batches), and
    /// the same attributions as Captum's.
    @Test("layer IG sizes its batches from the memory plan: a budget of three rows runs three at a time, with Captum's attributions")
    func layerIGPlanned() throws {
        let ids = try Self.array("ids").int32s(), targets = try Self.array("targets").int32s().map(Int.init)
        let lig = try Self.array("lig").doubles()
        let m = try ONNXModel.load(fixturePath("onnx/tinybert/model.onnx"), on: cpu, dtype: .float64)
        let free = LayerIntegratedGradients(rule: .gaussLegendre, steps: 16)
        let perRow = free.plans(for: m.graph, input: "input_ids", dtype: .float64, on: cpu).path.bytesPerRow
        #expect(perRow > 0)
        let lig3 = LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, memoryBudget: 3 * perRow + perRow / 2)
        let r = try lig3.attribute(GraphExecutor(m.graph), input: "input_ids", layer: try Self.layer, output: "logits", ids: ids,
                                   baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: targets, device: cpu)
        #expect(r.plan.rows == 3 && r.rowsEvaluated == 64)
        #expect(lig3.plans(for: m.graph, input: "input_ids", dtype: .float64, on: cpu).forward.rows >= 3)
        #expect(GradientMethodTests.rel(r.attributions, lig) <= GradientMethodTests.tolerance(.float64), "\(GradientMethodTests.rel(r.attributions, lig))")
        // A cap below the plan wins.
        #expect(LayerIntegratedGradients(steps: 16, batchRows: 2).plans(for: m.graph, input: "input_ids", dtype: .float64, on: cpu).path.rows == 2)
        // Stopped after 7 batches of 3 (21 rows: input 0's 16 steps and 5 of input 1's), the
        // result holds input 0 alone, as the whole run has it.
        let batches = Mutex(0)
        let control = SweepControl(progress: { _, _ in batches.withLock { $0 += 1 } }, shouldStop: { batches.withLock { $0 >= 7 } })
        let part = try lig3.attribute(GraphExecutor(m.graph), input: "input_ids", layer: try Self.layer, output: "logits", ids: ids,
                                      baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: targets, device: cpu, control: control)
        #expect(part.interrupted && part.completedInputs == 1 && part.rowsEvaluated == 21)
        #expect(part.shape == [1, 16, 32] && part.attributions == Array(r.attributions.prefix(16 * 32)) && part.deltas == [r.deltas[0]])
        #expect(!r.interrupted && r.completedInputs == 4)
    }

    @Test("layer IG refuses a value the graph does not have, an input that is not one, and bad targets")
    func badArguments() throws {
        let m = try ONNXModel.load(fixturePath("onnx/tinybert/model.onnx"), on: cpu, dtype: .float64)
        let e = GraphExecutor(m.graph), lig = LayerIntegratedGradients(steps: 4)
        let ids = [Int32](repeating: 1, count: 16), zero = [Int32](repeating: 0, count: 16)
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "input_ids", layer: "nope", output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [0], device: cpu) }
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "logits", layer: try Self.layer, output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [0], device: cpu) }
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "input_ids", layer: try Self.layer, output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [3], device: cpu) }
    }

    @Test("attrib layer-ig: the default layer is the embeddings' output, token scores equal Captum's sums, tokens shown from vocab.txt, --tokens works, a float-input model is refused")
    func cli() throws {
        let d = try cliTempDir("layerig")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let r = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"), "--inputs", fixturePath("onnx/tinybert/ids.npy"),
                               "--steps", "16", "--out", d + "/a", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try r.json()
        #expect(s["layer"] as? String == (try Self.layer))
        #expect((s["rowsPerBatch"] as? Int ?? 0) >= 1 && (s["bytesPerRow"] as? Int ?? 0) > 0, "the memory plan is reported")
        let scores = try NPY.read(d + "/a/token_scores.npy").doubles(), lig = try Self.array("lig").doubles()
        let captum = (0..<64).map { t in lig[(t * 32)..<((t + 1) * 32)].reduce(0, +) }
        // Float32 through the model: GradientMethodTests' 1e-4 of the largest score.
        #expect(GradientMethodTests.rel(scores, captum) <= 1e-4, "\(GradientMethodTests.rel(scores, captum))")
        let first = ((s["perInput"] as! [[String: Any]])[0]["tokens"] as! [[String: Any]])
        #expect(first[0]["token"] as? String == "[CLS]" && first.count == 16)
        let ids = try Self.array("ids").int32s()
        let one = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"), "--tokens", ids.prefix(16).map(String.init).joined(separator: ","),
                                 "--steps", "16", "--out", d + "/b"])
        #expect(one.status == 0 && one.stdout.contains("[CLS]"), "\(one.stderr)")
        let tokScores = try NPY.read(d + "/b/token_scores.npy").doubles()
        #expect(GradientMethodTests.rel(tokScores, Array(captum.prefix(16))) <= 1e-4)
        let image = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinyvit"), "--tokens", "1", "--out", d + "/c"])
        #expect(image.status != 0 && image.stderr.contains("token-id"), "\(image.stderr)")
        let short = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"), "--tokens", "1,2,3", "--out", d + "/e"])
        #expect(short.status != 0 && short.stderr.contains("takes 16"), "\(short.stderr)")
    }

    /// layer-ig runs as the other sweeps do (ShardedSweep): units of inputs that processes share
    /// and that --resume completes. Units of one input, so each shard and the partial run hold some.
    @Test("attrib layer-ig is a sweep: two shards, and a partial run then --resume, give one process's files bitwise; --limit takes the first inputs")
    func sweep() throws {
        let d = try cliTempDir("layerig-sweep")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let args = ["layer-ig", "--model", fixturePath("onnx/tinybert"), "--inputs", fixturePath("onnx/tinybert/ids.npy"), "--steps", "8",
                    "--chunk", "1", "--quiet", "--device", "cpu"]
        func bytes(_ p: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: p)) }
        let one = try runAttrib(args + ["--out", d + "/one"])
        #expect(one.status == 0, "\(one.stderr)")
        for k in 0..<2 {
            let r = try runAttrib(args + ["--out", d + "/two", "--shard", "\(k)/2"])
            #expect(r.status == 0, "shard \(k): \(r.stderr)")
        }
        // A partial run (the first shard's units), then the rest by --resume in one process.
        let part = try runAttrib(args + ["--out", d + "/resumed", "--shard", "0/2"])
        #expect(part.status == 0 && !FileManager.default.fileExists(atPath: d + "/resumed/attributions.npy"), "\(part.stderr)")
        let resumed = try runAttrib(args + ["--out", d + "/resumed", "--resume", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let s = try resumed.json()
        #expect(s["attempts"] as? Int == 2 && (s["ranks"] as? [[String: Any]])?.last?["units"] as? Int == 2, "the resume ran the 2 missing units: \(s["ranks"] ?? "")")
        for f in ["attributions.npy", "token_scores.npy"] {
            #expect(try bytes(d + "/one/" + f) == bytes(d + "/two/" + f), "two shards: \(f)")
            #expect(try bytes(d + "/one/" + f) == bytes(d + "/resumed/" + f), "resumed: \(f)")
        }
        let changed = try runAttrib(args.map { $0 == "8" ? "4" : $0 } + ["--out", d + "/resumed2", "--shard", "0/2"])
        #expect(changed.status == 0)
        let refused = try runAttrib(args + ["--out", d + "/resumed2", "--resume"])
        #expect(refused.status != 0 && refused.stderr.contains("--steps"), "a resume with other steps is refused, naming them: \(refused.stderr)")
        let two = try runAttrib(args + ["--out", d + "/limit", "--limit", "2"])
        #expect(two.status == 0, "\(two.stderr)")
        let whole = try NPY.read(d + "/one/attributions.npy"), first = try NPY.read(d + "/limit/attributions.npy")
        #expect(first.shape == [2, 16, 32] && (try first.doubles()) == Array(try whole.doubles().prefix(2 * 16 * 32)))
    }

    @Test("attrib layer-ig --text: tokenized with the directory's vocab.txt as BERT's ([CLS] text [SEP], lowercased), padded with [PAD]: the same scores as those ids given with --tokens; too long a text is an error naming the lengths")
    func text() throws {
        let d = try cliTempDir("layerig-text")
        defer { try? FileManager.default.removeItem(atPath: d) }
        // vocab.txt: [PAD] [UNK] [CLS] [SEP] [MASK] w5 … w99 (ids by line); "W5" lowercases to w5, "zz" is unknown.
        let r = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"), "--text", "W5 w6, w7 zz", "--text", "w99",
                               "--steps", "8", "--out", d + "/t"])
        #expect(r.status == 0, "\(r.stderr)")
        let want: [Int32] = [2, 5, 6, 1, 7, 1, 3] + [Int32](repeating: 0, count: 9) + [2, 99, 3] + [Int32](repeating: 0, count: 13)
        #expect(try HFTokenizer.forTextModel(directory: fixturePath("onnx/tinybert"))!.encode("W5 w6, w7 zz") == Array(want.prefix(7)))
        let ids = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"),
                                 "--tokens", want.prefix(16).map(String.init).joined(separator: ",") + ";" + want.suffix(16).map(String.init).joined(separator: ","),
                                 "--steps", "8", "--out", d + "/i"])
        #expect(ids.status == 0, "\(ids.stderr)")
        expectEqual(try NPY.read(d + "/t/token_scores.npy").doubles(), try NPY.read(d + "/i/token_scores.npy").doubles(), "--text and --tokens")
        let long = try runAttrib(["layer-ig", "--model", fixturePath("onnx/tinybert"), "--text", String(repeating: "w5 ", count: 20), "--out", d + "/l"])
        #expect(long.status != 0 && long.stderr.contains("22 tokens") && long.stderr.contains("takes 16"), "\(long.stderr)")
    }

    @Test("attrib predict on a token-id model: softmax of PyTorch's logits (Float32 through the model: 1e-5)")
    func predict() throws {
        let r = try runAttrib(["predict", "--model", fixturePath("onnx/tinybert"), "--inputs", fixturePath("onnx/tinybert/ids.npy"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        let logits = try Self.array("logits").doubles()
        #expect(rows.count == 4)
        for (i, row) in rows.enumerated() {
            let l = Array(logits[(i * 3)..<((i + 1) * 3)]), m = l.max()!
            let e = l.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
            let p = row["probabilities"] as! [Double]
            #expect(zip(p, e.map { $0 / sum }).allSatisfy { abs($0 - $1) < 1e-5 }, "input \(i): \(p)")
        }
    }
}
