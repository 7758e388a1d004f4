import Attrib
import FoundationEssentials
import Glibc
import Testing

/// Tests/Fixtures/hf-tokenizer (made by make_tokenizer_fixtures.py there): small tokenizers
/// trained with Hugging Face's `tokenizers` (Llama 3, GPT-2, Qwen2 byte-level styles, a
/// Llama 2 sentencepiece-style one with byte fallback, a Metaspace one), SmolLM2's real
/// tokenizer as transformers rebuilds it from the GGUF file, a corpus, and the library's ids
/// and decoded text for every line.
private struct HFCorpus: Decodable {
    let lines: [String]
    let special_lines: [String: [String]]
    let random_lines: [String]
}

private struct HFExpected: Decodable {
    struct GGUF: Decodable { let model: String; let pre: String; let bos: Int32; let eos: Int32; let add_bos: Bool; let control: [Int] }
    struct Cases: Decodable {
        let ids: [[Int32]]
        let ids_plain: [[Int32]]
        let decoded: [String]
        let decoded_plain: [String]
        let gguf: GGUF?
    }
    let tokenizers: [String: Cases]
}

private let hfDir = fixturePath("hf-tokenizer")

private func load<T: Decodable>(_ type: T.Type, _ file: String) throws -> T {
    try JSONDecoder().decode(T.self, from: FileManager.default.contents(atPath: hfDir + "/" + file) ?? Data())
}

/// Corpus lines, the tokenizer's lines with its special tokens inside text, and the random lines.
private func lines(for name: String) throws -> [String] {
    let c = try load(HFCorpus.self, "corpus.json")
    return c.lines + (c.special_lines[name == "smollm2-gguf" ? "smollm2" : name] ?? []) + c.random_lines
}

private func expectMatches(_ tok: HFTokenizer, _ name: String) throws {
    let e = try #require(try load(HFExpected.self, "expected.json").tokenizers[name], "\(name) in expected.json")
    let texts = try lines(for: name)
    #expect(texts.count == e.ids.count && texts.count >= 180)
    for (k, text) in texts.enumerated() {
        #expect(tok.encode(text, addSpecialTokens: true) == e.ids[k], "\(name): encode(\(text.debugDescription))")
        #expect(tok.encode(text, addSpecialTokens: false) == e.ids_plain[k], "\(name): encode(\(text.debugDescription), addSpecialTokens: false)")
        #expect(try tok.decode(e.ids[k]) == e.decoded[k], "\(name): decode of \(text.debugDescription)")
        #expect(try tok.decode(e.ids_plain[k]) == e.decoded_plain[k], "\(name): decode of \(text.debugDescription) without specials")
    }
}

/// A fresh directory for the files these tests write.
private let hfTempDir: String = {
    var template = Array("/tmp/attrib-hftokenizer-tests-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}()

private func writeTemp(_ name: String, _ text: String) -> String {
    let path = hfTempDir + "/" + name
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}

/// The error `body` throws, as text ("" if none).
private func errorText(_ body: () throws -> Void) -> String {
    do { try body(); return "" } catch { return "\(error)" }
}

/// A minimal valid tokenizer.json with the model (and pre-tokenizer) given.
private func tinyJSON(model: String, preTokenizer: String = "null") -> String {
    #"{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":\#(preTokenizer),"post_processor":null,"decoder":null,"model":\#(model)}"#
}

private let tinyBPE = #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}"#

@Suite struct HFTokenizerTests {
    @Test(arguments: ["llama3", "gpt2", "qwen2", "llama2", "metaspace", "smollm2"])
    func matchesTokenizersLibrary(_ name: String) throws {
        let tok = try HFTokenizer(path: hfDir + "/" + name + "/tokenizer.json")
        try expectMatches(tok, name)
    }

    @Test func readsDirectory() throws {
        let tok = try HFTokenizer(path: hfDir + "/llama2")
        #expect(tok.vocabSize <= 1000)
        #expect(tok.prefixIDs == [1] && tok.suffixIDs.isEmpty)
        #expect(tok.token(for: 1) == "<s>" && tok.id(for: "<0x41>") == 68 && tok.isSpecial(1))
    }

    /// SmolLM2 from its GGUF arrays (rebuilt here from the committed tokenizer.json, which the
    /// fixture script checked equal to the GGUF file's tokenizer.ggml.tokens/merges/token_type).
    @Test func ggufArraysMatchLlamaCpp() throws {
        struct File: Decodable {
            struct Model: Decodable { let vocab: [String: Int]; let merges: [String] }
            struct Added: Decodable { let id: Int; let special: Bool }
            let model: Model
            let added_tokens: [Added]
        }
        let f = try load(File.self, "smollm2/tokenizer.json")
        var tokens = [String](repeating: "", count: f.model.vocab.count)
        for (t, id) in f.model.vocab { tokens[id] = t }
        var types = [Int32](repeating: 1, count: tokens.count)
        for a in f.added_tokens where a.special { types[a.id] = 3 }
        let meta = try #require(try load(HFExpected.self, "expected.json").tokenizers["smollm2"]?.gguf)
        #expect(types.indices.filter { types[$0] == 3 } == meta.control)
        let tok = try HFTokenizer(ggufTokens: tokens, merges: f.model.merges, tokenTypes: types, preTokenizer: meta.pre,
                                  model: meta.model, bos: meta.bos, eos: meta.eos, addBOS: meta.add_bos, source: "SmolLM2 arrays")
        try expectMatches(tok, "smollm2-gguf")
        #expect(tok.isSpecial(meta.eos))
    }

    @Test func ggufErrors() {
        let e1 = errorText { _ = try HFTokenizer(ggufTokens: ["a", "b"], merges: [], tokenTypes: [], preTokenizer: "tekken", source: "m.gguf") }
        #expect(e1.contains("m.gguf") && e1.contains("tokenizer.ggml.pre") && e1.contains("tekken"), "\(e1)")
        let e2 = errorText { _ = try HFTokenizer(ggufTokens: ["a", "b"], merges: ["a c"], tokenTypes: [], preTokenizer: "gpt2", source: "m.gguf") }
        #expect(e2.contains("m.gguf") && e2.contains("merges[0]") && e2.contains("\"c\""), "\(e2)")
        let e3 = errorText { _ = try HFTokenizer(ggufTokens: ["a"], merges: [], tokenTypes: [], preTokenizer: "gpt2", model: "llama") }
        #expect(e3.contains("tokenizer.ggml.model") && e3.contains("llama"), "\(e3)")
    }

    @Test func missingFile() {
        let path = hfTempDir + "/no-such/tokenizer.json"
        let e = errorText { _ = try HFTokenizer(path: path) }
        #expect(e.contains(path) && e.contains("no such file"), "\(e)")
        let dir = hfTempDir
        let e2 = errorText { _ = try HFTokenizer(path: dir) }
        #expect(e2.contains(dir + "/tokenizer.json") && e2.contains("missing"), "\(e2)")
    }

    @Test func invalidJSON() {
        let path = writeTemp("invalid.json", #"{"model": {"type": "BPE",}"#)
        let e = errorText { _ = try HFTokenizer(path: path) }
        #expect(e.contains(path) && e.contains("not valid JSON"), "\(e)")
    }

    @Test func unsupportedModelNamesComponent() {
        let path = writeTemp("unigram.json", tinyJSON(model: #"{"type":"Unigram","vocab":[["a",0.0]]}"#))
        let e = errorText { _ = try HFTokenizer(path: path) }
        #expect(e.contains(path) && e.contains("model") && e.contains("Unigram") && e.contains("not supported") && e.contains("BPE, WordPiece"), "\(e)")
        let path2 = writeTemp("wordlevel.json", tinyJSON(model: #"{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0}}"#))
        let e2 = errorText { _ = try HFTokenizer(path: path2) }
        #expect(e2.contains("WordLevel"), "\(e2)")
    }

    @Test func unsupportedPreTokenizerNamesComponent() {
        let path = writeTemp("whitespace.json", tinyJSON(model: tinyBPE, preTokenizer:
            #"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"Whitespace"}]}"#))
        let e = errorText { _ = try HFTokenizer(path: path) }
        #expect(e.contains(path) && e.contains("pre_tokenizer.pretokenizers[1]") && e.contains("Whitespace"), "\(e)")
        let path2 = writeTemp("regex.json", tinyJSON(model: tinyBPE, preTokenizer:
            #"{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false}"#))
        let e2 = errorText { _ = try HFTokenizer(path: path2) }
        #expect(e2.contains("Split") && e2.contains(#"\\w+"#), "\(e2)")
    }

    @Test func mergeNamingMissingTokenIsNamed() {
        let path = writeTemp("badmerge.json", tinyJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b",["a","zz"]]}"#))
        let e = errorText { _ = try HFTokenizer(path: path) }
        #expect(e.contains(path) && e.contains("model.merges[1]") && e.contains("\"zz\"") && e.contains("not in model.vocab"), "\(e)")
        let path2 = writeTemp("badresult.json", tinyJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}"#))
        let e2 = errorText { _ = try HFTokenizer(path: path2) }
        #expect(e2.contains("merged token \"ab\""), "\(e2)")
    }

    @Test func tinyTokenizerWithoutDecoder() throws {
        // No decoder: the library joins the tokens with spaces.
        let tok = try HFTokenizer(path: writeTemp("tiny.json", tinyJSON(model: tinyBPE)))
        #expect(tok.encode("abba") == [2, 1, 0])
        #expect(try tok.decode([2, 1, 0]) == "ab b a")
        let e = errorText { _ = try tok.decode([0, 7]) }
        #expect(e.contains("token id 7 at position 1"), "\(e)")
    }
}

/// A SentencePiece-score tokenizer from a GGUF file (tokenizer.ggml.model = "llama", as llama.cpp
/// stores Llama 2's and Mistral's) against the `sentencepiece` library that trained it
/// (hf-tokenizer/make_spm_gguf_fixture.py): 161 corpus lines, 1400 of their 3596 ids byte
/// fallbacks.
@Suite struct SentencePieceGGUFTests {
    struct Expected: Decodable { let lines: [String]; let ids: [[Int32]]; let decoded: [String]; let bos: Int32; let eos: Int32; let tool: Int32 }

    @Test("ids and decoded text equal sentencepiece's on every corpus line; BOS prepended as llama.cpp does; control and user-defined tokens matched whole")
    func matchesSentencePiece() throws {
        let path = hfDir + "/spm/tokenizer.gguf"
        let tok = try #require(try HFTokenizer(gguf: GGUFFile(path: path)))
        let e = try load(Expected.self, "spm/expected.json")
        #expect(e.lines.count >= 150)
        var mismatches = 0
        for (k, line) in e.lines.enumerated() {
            let ids = tok.encode(line, addSpecialTokens: false)
            if ids != e.ids[k] {
                mismatches += 1
                if mismatches <= 3 { Issue.record("encode(\(line.debugDescription)): \(ids), sentencepiece \(e.ids[k])") }
            }
            #expect(try tok.decode(e.ids[k]) == e.decoded[k], "decode of \(line.debugDescription)")
            #expect(tok.encode(line) == [e.bos] + e.ids[k], "BOS first")
        }
        #expect(mismatches == 0, "\(mismatches) of \(e.lines.count) lines differ")
        // As transformers' tokenizer for these files: <s> and </s> in text are the special tokens,
        // and the user-defined <tool> is one token.
        let ab = tok.encode("a", addSpecialTokens: false)
        #expect(tok.encode("a</s>", addSpecialTokens: false) == ab + [e.eos])
        #expect(tok.encode("<tool>", addSpecialTokens: false).contains(e.tool))
        #expect(tok.isSpecial(e.bos) && !tok.isSpecial(e.tool))
    }

    @Test("a malformed SentencePiece GGUF tokenizer is an error naming the key")
    func errors() {
        let e1 = errorText { _ = try HFTokenizer(ggufSentencePiece: ["a", "b"], scores: [0], tokenTypes: [], source: "m.gguf") }
        #expect(e1.contains("m.gguf") && e1.contains("tokenizer.ggml.scores") && e1.contains("1 scores for 2 tokens"), "\(e1)")
        let e2 = errorText { _ = try HFTokenizer(ggufSentencePiece: ["a", "b"], scores: [0, .nan], tokenTypes: [], bos: 0, source: "m.gguf") }
        #expect(e2.contains("score 1 is nan"), "\(e2)")
        let e3 = errorText { _ = try HFTokenizer(ggufSentencePiece: ["a", "b"], scores: [0, 0], tokenTypes: [], source: "m.gguf") }
        #expect(e3.contains("add_bos_token") && e3.contains("bos_token_id"), "\(e3)")
        let e4 = errorText { _ = try HFTokenizer(ggufSentencePiece: ["a", "a"], scores: [0, 0], tokenTypes: [], bos: 0, source: "m.gguf") }
        #expect(e4.contains("appears twice"), "\(e4)")
    }
}

/// BERT-style WordPiece tokenizer.json files (hf-tokenizer/make_wordpiece_fixtures.py), trained
/// with `tokenizers`: an uncased one (lowercase, accents stripped through NFD, CJK spaced,
/// TemplateProcessing) and a cased one (BertProcessing, 12 characters a word at most), against
/// the library's ids and decoded text on the corpus, its random lines, and lines with special
/// tokens, accents and ideographs.
@Suite struct WordPieceTests {
    struct Expected: Decodable {
        struct Cases: Decodable { let ids: [[Int32]]; let ids_plain: [[Int32]]; let decoded: [String]; let decoded_plain: [String] }
        let lines: [String]
        let tokenizers: [String: Cases]
    }

    @Test("ids and decoded text equal the tokenizers library's, uncased and cased", arguments: ["uncased", "cased"])
    func matchesTokenizersLibrary(_ name: String) throws {
        let tok = try HFTokenizer(path: hfDir + "/wordpiece/" + name + "/tokenizer.json")
        let e = try load(Expected.self, "wordpiece/expected.json")
        let c = try #require(e.tokenizers[name])
        #expect(e.lines.count >= 180)
        var bad = 0
        for (k, text) in e.lines.enumerated() {
            let ids = tok.encode(text), plain = tok.encode(text, addSpecialTokens: false)
            let decoded = try tok.decode(c.ids[k]), decodedPlain = try tok.decode(c.ids_plain[k])
            if ids != c.ids[k] || plain != c.ids_plain[k] || decoded != c.decoded[k] || decodedPlain != c.decoded_plain[k] {
                bad += 1
                if bad <= 3 { Issue.record("\(name) \(text.debugDescription): ids \(plain) want \(c.ids_plain[k]); decoded \(decoded.debugDescription) want \(c.decoded[k].debugDescription)") }
            }
        }
        #expect(bad == 0, "\(name): \(bad) of \(e.lines.count) lines differ")
    }

    @Test("a directory with BERT's vocab.txt and no tokenizer.json tokenizes as transformers' BertTokenizerFast from it")
    func vocabTxt() throws {
        struct VocabExpected: Decodable { let lines: [String]; let vocab_txt: [[Int32]] }
        let tok = try #require(try HFTokenizer.forTextModel(directory: hfDir + "/wordpiece/vocab"))
        let e = try load(VocabExpected.self, "wordpiece/expected.json")
        let bad = e.lines.indices.filter { tok.encode(e.lines[$0]) != e.vocab_txt[$0] }
        #expect(bad.isEmpty, "\(bad.count) of \(e.lines.count) lines differ, first \(bad.first.map { e.lines[$0].debugDescription } ?? "")")
    }

    @Test("a WordPiece model without its unknown token, or with max_input_chars_per_word 0, is an error naming the field")
    func errors() {
        let noUnk = #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}"#
        let e1 = errorText { _ = try HFTokenizer(path: writeTemp("wp-unk.json", noUnk)) }
        #expect(e1.contains("wp-unk.json") && e1.contains("unk_token") && e1.contains("[UNK]"), "\(e1)")
        let zero = #"{"model": {"type": "WordPiece", "unk_token": "a", "max_input_chars_per_word": 0, "vocab": {"a": 0}}}"#
        let e2 = errorText { _ = try HFTokenizer(path: writeTemp("wp-zero.json", zero)) }
        #expect(e2.contains("max_input_chars_per_word"), "\(e2)")
        // "é" and "e" + U+0301 are one String key in Swift and two tokens to the library: the
        // JSON reader refuses the file (a duplicate key) rather than lose one of them.
        let equivalent = #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "\u00e9": 1, "e\u0301": 2}}}"#
        let e3 = errorText { _ = try HFTokenizer(path: writeTemp("wp-nfd.json", equivalent)) }
        #expect(e3.contains("wp-nfd.json") && e3.contains("duplicate key"), "\(e3)")
    }
}
