import Attrib
import Foundation
import Testing

/// Issue 22: every field of a model config is understood or refused. For each front-end, a
/// table of edits to a bundled model's config.json: an unknown field and an unsupported value
/// are errors naming the file, the layer, the field and the value; fields ignored on purpose
/// load, and give the same numbers.
@Suite struct ModelFieldTests {
    typealias M = MalformedModelTests

    struct Edit: Sendable, CustomTestStringConvertible {
        var name: String
        var layer: Int?
        var field: String
        var value: @Sendable () -> Any
        /// Fragments of the expected error; nil: the model loads and computes as before.
        var error: [String]?
        /// The file the error names.
        var file = "config.json"
        var testDescription: String { name }
    }

    static let sequentialEdits: [Edit] = [
        Edit(name: "unknown top-level field", layer: nil, field: "preprocessing", value: { ["mean": 0.5] }, error: ["top-level field \"preprocessing\"", "not one the engine knows"]),
        Edit(name: "unknown layer field", layer: 0, field: "kernel", value: { 3 }, error: ["layer 0 (Conv2d): field \"kernel\"", "not one the engine knows"]),
        Edit(name: "a Conv2d field on a pooling layer", layer: 2, field: "in_channels", value: { 16 }, error: ["layer 2 (AvgPool2d): field \"in_channels\""]),
        // Implemented values that no longer fit this model's weights or shapes are refused for that,
        // naming the tensor or layer; their numbers against PyTorch are UnlikeModelTests' fields-* models.
        Edit(name: "Conv2d groups 2 against ungrouped weights", layer: 3, field: "groups", value: { 2 }, error: ["tensor '3.weight'", "expected [32, 8, 3, 3]"], file: "model.safetensors"),
        Edit(name: "Conv2d groups 3 (does not divide 16 channels)", layer: 3, field: "groups", value: { 3 }, error: ["layer 3 (Conv2d)", "groups = 3 does not divide"]),
        Edit(name: "Conv2d dilation [0, 1]", layer: 0, field: "dilation", value: { [0, 1] }, error: ["layer 0 (Conv2d)", "dilation = [0, 1]"]),
        Edit(name: "AvgPool2d padding past half the kernel", layer: 2, field: "padding", value: { [2, 2] }, error: ["layer 2 (AvgPool2d)", "padding [2, 2]", "half the kernel"]),
        Edit(name: "AvgPool2d dilation (not a field of AvgPool2d)", layer: 2, field: "dilation", value: { [1, 1] }, error: ["layer 2 (AvgPool2d): field \"dilation\"", "not one the engine knows"]),
        Edit(name: "Conv2d padding_mode reflect", layer: 0, field: "padding_mode", value: { "reflect" }, error: ["\"padding_mode\" = \"reflect\""]),
        Edit(name: "AvgPool2d ceil_mode not a bool", layer: 2, field: "ceil_mode", value: { 2 }, error: ["ceil_mode"]),
        Edit(name: "AvgPool2d divisor_override", layer: 2, field: "divisor_override", value: { 3 }, error: ["\"divisor_override\" = 3"]),
        Edit(name: "Flatten start_dim 0", layer: 6, field: "start_dim", value: { 0 }, error: ["layer 6 (Flatten): field \"start_dim\" = 0"]),
        Edit(name: "GELU approximate sigmoid", layer: 1, field: "approximate", value: { "sigmoid" }, error: ["layer 1 (GELU)", "approximate \"sigmoid\""]),
        Edit(name: "ignored: a layer's name", layer: 0, field: "name", value: { "stem" }, error: nil),
        Edit(name: "count_include_pad without padding changes nothing", layer: 2, field: "count_include_pad", value: { false }, error: nil),
        Edit(name: "accepted: dilation at 1", layer: 0, field: "dilation", value: { [1, 1] }, error: nil),
        Edit(name: "ignored: a model description", layer: nil, field: "description", value: { "digits" }, error: nil),
    ]

    @Test("Sequential config.json: unknown fields and unsupported values refused, ignored ones load the same model", arguments: sequentialEdits)
    func sequential(_ e: Edit) throws {
        let dir = try M.copy("digits-cnn") { json in
            if let l = e.layer { M.layer(&json, l, e.field, e.value()) } else { json[e.field] = e.value() }
        }
        if let fragments = e.error {
            expectAttribError([dir + "/" + e.file] + fragments) { _ = try Sequential.load(dir, on: cpu) }
            return
        }
        let x = try NPY.tensor(fixturePath("../../Models/digits-data/test_inputs.npy"), on: cpu).rows(0..<4)
        let want = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu).forward(x).doubles()
        expectEqual(try Sequential.load(dir, on: cpu).forward(x).doubles(), want, "\(e.name): the same outputs")
    }

    static let gpt2Edits: [Edit] = [
        Edit(name: "rope_scaling (another architecture's field)", layer: nil, field: "rope_scaling", value: { ["type": "linear", "factor": 2] }, error: ["field \"rope_scaling\"", "not one the engine knows"]),
        Edit(name: "attention_bias", layer: nil, field: "attention_bias", value: { true }, error: ["field \"attention_bias\""]),
        Edit(name: "sliding_window", layer: nil, field: "sliding_window", value: { 16 }, error: ["field \"sliding_window\""]),
        Edit(name: "untied embeddings", layer: nil, field: "tie_word_embeddings", value: { false }, error: ["\"tie_word_embeddings\" = false", "the unembedding is wte"]),
        Edit(name: "cross-attention", layer: nil, field: "add_cross_attention", value: { true }, error: ["\"add_cross_attention\" = true"]),
        Edit(name: "activation relu", layer: nil, field: "activation_function", value: { "relu" }, error: ["activation_function \"relu\""]),
        Edit(name: "ignored: dropout probabilities", layer: nil, field: "attn_pdrop", value: { 0.5 }, error: nil),
        Edit(name: "ignored: torch_dtype", layer: nil, field: "torch_dtype", value: { "bfloat16" }, error: nil),
    ]

    @Test("Hugging Face GPT-2 config.json: unknown fields and unsupported values refused, ignored ones load the same model", arguments: gpt2Edits)
    func gpt2(_ e: Edit) throws {
        let dir = try M.copy("induction-2l") { $0[e.field] = e.value() }
        if let fragments = e.error {
            expectAttribError([dir + "/config.json"] + fragments) { _ = try DecoderModel.load(dir, on: cpu) }
            return
        }
        let tokens: [[Int32]] = [[0, 5, 9, 12, 5, 9]]
        let want = try DecoderModel.load(fixturePath("../../Models/induction-2l"), on: cpu).logits(tokens).doubles()
        expectEqual(try DecoderModel.load(dir, on: cpu).logits(tokens).doubles(), want, "\(e.name): the same logits")
    }
}
