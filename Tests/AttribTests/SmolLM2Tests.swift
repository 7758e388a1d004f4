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

    /// The GGUF's own tokenizer arrays (tokenizer.ggml.*) against the tokenizer.json that
    /// transformers rebuilds from the same file (Tests/Fixtures/hf-tokenizer/smollm2, held to the
    /// tokenizers library) on the whole tokenizer corpus: scripts, whitespace runs, digits, emoji,
    /// special tokens. The one difference is deliberate: the GGUF names its pre-tokenizer
    /// "smollm", which llama.cpp runs as digits split one by one, then GPT-2's regex (SmolLM2's
    /// training tokenizer); transformers' rebuild keeps GPT-2's regex alone. They differ only
    /// where a non-ASCII numeral (½, ², ٣) touches text the vocabulary merges with it, so those
    /// lines are held to the rebuilt tokenizer.json with the digit split put in front.
    @Test("the GGUF's tokenizer gives the ids of SmolLM2's tokenizer.json on the corpus")
    func ggufTokenizer() throws {
        guard FileManager.default.fileExists(atPath: Self.path) else { _ = try Self.model(cpu); return }
        let fromGGUF = try #require(try HFTokenizer(gguf: GGUFFile(path: Self.path)))
        let jsonPath = fixturePath("hf-tokenizer/smollm2/tokenizer.json")
        let fromJSON = try HFTokenizer(path: jsonPath)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonPath))) as! [String: Any]
        json["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], json["pre_tokenizer"]!]]
        let split = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-smollm2-digits-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: json).write(to: split)
        let withDigits = try HFTokenizer(path: split.path)
        #expect(fromGGUF.vocabSize == 49152 && fromGGUF.beginningOfSequenceID == nil)
        let corpus = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("hf-tokenizer/corpus.json")))) as! [String: Any]
        let lines = (corpus["lines"] as! [String]) + (corpus["random_lines"] as! [String])
        var numeralLines = 0
        for line in lines {
            let ids = fromGGUF.encode(line, addSpecialTokens: true)
            let numeral = line.unicodeScalars.contains { !$0.isASCII && $0.properties.numericType != nil }
            numeralLines += numeral ? 1 : 0
            #expect(ids == (numeral ? withDigits : fromJSON).encode(line, addSpecialTokens: true), "\(line.debugDescription)")
            #expect(try fromGGUF.decode(ids) == line, "\(line.debugDescription)")
        }
        #expect(lines.count > 100 && numeralLines > 0 && numeralLines < lines.count, "\(numeralLines) of \(lines.count) lines have non-ASCII numerals")
    }
}
