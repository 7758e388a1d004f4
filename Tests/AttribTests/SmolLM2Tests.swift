import Attrib
import Foundation
import Testing

/// A real trained model: SmolLM2-135M-Instruct (Llama architecture, 30 layers, 9 query heads
/// sharing 3 key/value heads, tied embeddings) from the Q4_1 GGUF that scripts/fetch_smollm2.sh
/// fetches (scripts/test.sh runs it first). The reference is transformers' own load of the same
/// GGUF (Tests/Fixtures/smollm2/make_smollm2_fixture.py): its dequantisation, its un-permuting
/// of q and k, its Llama forward in float32.
@Suite struct SmolLM2Tests {
    static var path: String {
        ProcessInfo.processInfo.environment["ATTRIB_SMOLLM2_GGUF"]
            ?? fixturePath("../../.models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    static func model(_ device: any Device) throws -> DecoderModel {
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("\(path) is missing: run scripts/fetch_smollm2.sh (scripts/test.sh does)")
            throw AttribError.io(path: path, detail: "missing")
        }
        return try DecoderModel.loadGGUF(path, on: device)
    }

    @Test("the config comes from the GGUF metadata")
    func config() throws {
        let c = try Self.model(cpu).config
        #expect(c.family == .llama && c.nLayer == 30 && c.nHead == 9 && c.nKVHead == 3 && c.headDim == 64)
        #expect(c.nEmbd == 576 && c.nInner == 1536 && c.vocabSize == 49152 && c.tiedEmbeddings)
    }

    /// Float32 on both sides, 30 blocks: transformers and the engine sum the same products in
    /// other orders (BLAS blocking, attention), each rounding 6e-8; through 30 blocks of RMSNorm
    /// and softmax that compounds to ~1e-5 of the logits' scale. Bound 1e-4 normwise per prompt,
    /// with the argmax equal where transformers' top two differ by more than that.
    @Test("logits equal transformers' on the CPU backend and every OpenCL device")
    func logits() throws {
        let ref = try SafeTensorsFile(path: fixturePath("smollm2/reference.safetensors"))
        let ids = try ref.int32s("tokens"), shape = try ref.entry("tokens").shape
        let prompts = (0..<shape[0]).map { Array(ids[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
        let vocab = try ref.int32s("vocab_ids").map(Int.init), want = try ref.doubles("logits")
        for device in [cpu as any Device] + openCLDevices.map { $0 as any Device } {
            let logits = try Self.model(device).logits(prompts).doubles()                  // [P, T, V]
            let v = 49152, k = vocab.count
            var got = [Double](repeating: 0, count: want.count)
            for r in 0..<(shape[0] * shape[1]) { for j in 0..<k { got[r * k + j] = logits[r * v + vocab[j]] } }
            let e = TransformerTests.relativeError(got, want)
            #expect(e <= 1e-4, "\(device.info.id): \(e)")
        }
    }
}
