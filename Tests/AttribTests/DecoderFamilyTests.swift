import Attrib
import Foundation
import Testing

/// Decoder families against transformers: Llama (llama3 RoPE scaling, grouped KV, tied),
/// Qwen2 (qkv bias), Mistral (multi-query, sliding window shorter than the prompt), Gemma
/// (head_dim ≠ D/H, GeGLU, √D embeddings, 1 + w RMSNorm), GPT-NeoX (parallel residual, partial
/// rotary, fused qkv). Fixtures: Tests/Fixtures/llm/make_llm_fixtures.py (tiny random models
/// saved by transformers, references in float64).
@Suite struct DecoderFamilyTests {
    static let families = ["llama", "qwen2", "mistral", "gemma", "gpt_neox"]
    static var root: String { ProcessInfo.processInfo.environment["ATTRIB_LLM_FIXTURES"] ?? fixturePath("llm") }

    /// Float32: two blocks of products of K ≤ 256 terms, softmax and RMSNorm on random weights:
    /// 1e-4 normwise, as GPT-2's. Float64: the reference is not float64 throughout, because
    /// transformers computes RMSNorm (x.to(float32)) and RoPE's cos and sin in float32 whatever
    /// the model's dtype; each rounding is 6e-8 relative, and two blocks of them measured
    /// 0.4–4e-7, so 1e-6 (GPT-NeoX, LayerNorm in float64, measured 4e-8).
    static func bound(_ dtype: DType) -> Double { dtype == .float64 ? 1e-6 : 1e-4 }

    static func check(_ family: String, _ device: any Device, _ dtype: DType) throws {
        let dir = root + "/" + family
        let ref = try SafeTensorsFile(path: dir + "/reference.safetensors")
        let model = try DecoderModel.load(dir, on: device, dtype: dtype)
        let ids = try ref.int32s("tokens_clean"), t = try ref.entry("tokens_clean").shape[1]
        let tokens = stride(from: 0, to: ids.count, by: t).map { Array(ids[$0..<($0 + t)]) }
        let logits = try model.logits(tokens).doubles()
        let err = TransformerTests.relativeError(logits, try ref.doubles("logits_clean"))
        #expect(err <= bound(dtype), "\(family) \(device.info.id) \(dtype) logits: \(err)")
    }

    @Test("logits equal transformers' on the CPU backend (Float64 1e-9, Float32 1e-4)", arguments: families)
    func cpuLogits(_ family: String) throws {
        try Self.check(family, cpu, .float64)
        try Self.check(family, cpu, .float32)
    }

    @Test("logits equal transformers' on every OpenCL device (Float32 1e-4)", arguments: families)
    func openCLLogits(_ family: String) throws {
        for d in openCLDevices { try Self.check(family, d, .float32) }
    }
}
