import Attrib
import FoundationEssentials
import Glibc
import Testing

/// Tests/Fixtures/tokenizer (made by make_fixtures.py there): a 500-token
/// byte-level BPE vocabulary and the ids Hugging Face's GPT2Tokenizer gives.
private struct TokenizerCases: Decodable {
    struct Case: Decodable { let text: String; let ids: [Int32]; let tokens: [String]; let decoded: String; let pieces: [String] }
    let vocab_size: Int
    let cases: [Case]
    let whitespace: [UInt32]
}

private let tokenizerDir = fixturePath("tokenizer")

private func loadCases() throws -> TokenizerCases {
    let data = FileManager.default.contents(atPath: tokenizerDir + "/cases.json") ?? Data()
    return try JSONDecoder().decode(TokenizerCases.self, from: data)
}

/// A fresh directory for the model directories these tests write.
private let tokTempDir: String = {
    var template = Array("/tmp/attrib-tokenizer-tests-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}()

private func scratchDir(_ name: String) throws -> String {
    let d = tokTempDir + "/" + name
    FileHelpers.remove(d)
    try FileHelpers.makeDirectory(d)
    return d
}

@Suite struct TokenizerTests {
    @Test func matchesHuggingFace() throws {
        let fixture = try loadCases()
        let tok = try GPT2Tokenizer(directory: tokenizerDir)
        #expect(tok.vocabSize == fixture.vocab_size)
        #expect(tok.hasVocabulary)
        #expect(tok.endOfTextID == 0)
        #expect(fixture.cases.count >= 50)
        for c in fixture.cases {
            let ids = try tok.encode(c.text)
            #expect(ids == c.ids, "encode(\(c.text.debugDescription))")
            #expect(ids.map { tok.token(for: $0) } == c.tokens.map { Optional($0) }, "tokens of \(c.text.debugDescription)")
            #expect(try tok.decode(c.ids) == c.decoded, "decode of \(c.text.debugDescription)")
            #expect(try tok.decode(ids) == c.text, "round trip of \(c.text.debugDescription)")
        }
    }

    @Test func preTokenizerMatchesHuggingFace() throws {
        for c in try loadCases().cases {
            let pieces = GPT2PreTokenizer.split(c.text)
            #expect(pieces == c.pieces, "pieces of \(c.text.debugDescription)")
            #expect(pieces.joined() == c.text)
        }
    }

    @Test func preTokenizerOffsets() {
        let text = "héllo wörld 🙂 it's"
        var scalars = 0, bytes = 0
        for p in GPT2PreTokenizer.pieces(text) {
            #expect(p.scalarOffset == scalars && p.byteOffset == bytes, "offsets of \(p.text.debugDescription)")
            scalars += p.text.unicodeScalars.count
            bytes += p.text.utf8.count
        }
        #expect(GPT2PreTokenizer.split("a  b   c\n\nd \n") == ["a", " ", " b", "  ", " c", "\n", "\n", "d", " \n"])
        #expect(GPT2PreTokenizer.split("I'm'll 'S''s") == ["I", "'m", "'ll", " '", "S", "''", "s"])
    }

    /// \s of the pre-tokenizer is Unicode's White_Space: the fixture lists what
    /// Hugging Face's pre-tokenizer treats as whitespace, probed over all code points.
    @Test func whitespaceClassMatchesHuggingFace() throws {
        let expected = Set(try loadCases().whitespace)
        var mine = Set<UInt32>()
        for v in UInt32(0)..<0x110000 {
            if let u = Unicode.Scalar(v), u.properties.isWhitespace { mine.insert(v) }
        }
        #expect(mine == expected)
    }

    @Test func byteTable() {
        let table = GPT2ByteLevel.byteToScalar
        #expect(Set(table).count == 256)
        #expect(table[0x20] == "Ġ" && table[0x0A] == "Ċ" && table[Int(UInt8(ascii: "a"))] == "a")
        for b in 0..<256 { #expect(GPT2ByteLevel.byte(for: table[b]) == UInt8(b)) }
        #expect(GPT2ByteLevel.byte(for: " ") == nil)
        let text = "naïve 🙂\n"
        #expect(GPT2ByteLevel.decode(GPT2ByteLevel.encode(Array(text.utf8))) == Array(text.utf8))
    }

    @Test func decodeIsByteLevel() throws {
        let tok = try GPT2Tokenizer(directory: tokenizerDir)
        // Half of a two-byte character decodes to U+FFFD, as HF's errors="replace".
        let leadByte = try #require(tok.id(for: "Ã"))  // 0xC3, the first byte of é
        #expect(try tok.decode([leadByte]) == "\u{FFFD}")
        #expect(try tok.decode([leadByte, try #require(tok.id(for: "©"))]) == "é")
        #expect(try tok.decode([]) == "")
        #expect(try tok.encode("") == [])
        #expect(tok.token(for: -1) == nil && tok.token(for: Int32(tok.vocabSize)) == nil)
        #expect(tok.id(for: "<|endoftext|>") == 0)
    }

    // MARK: errors

    @Test func decodeOutOfRange() throws {
        let tok = try GPT2Tokenizer(directory: tokenizerDir)
        expectAttribError(["GPT2Tokenizer.decode", "token id 500", "position 2", "0..<500"]) { _ = try tok.decode([1, 2, 500]) }
        expectAttribError(["token id -1", "position 0"]) { _ = try tok.decode([-1]) }
    }

    @Test func missingAndInvalidFiles() throws {
        expectAttribError(["/nonexistent/model", "no such model directory"]) { _ = try GPT2Tokenizer(directory: "/nonexistent/model") }

        let onlyVocab = try scratchDir("only-vocab")
        try FileHelpers.copy(tokenizerDir + "/vocab.json", onlyVocab + "/vocab.json")
        expectAttribError([onlyVocab + "/merges.txt", "missing"]) { _ = try GPT2Tokenizer(directory: onlyVocab) }

        let onlyMerges = try scratchDir("only-merges")
        try FileHelpers.copy(tokenizerDir + "/merges.txt", onlyMerges + "/merges.txt")
        expectAttribError([onlyMerges + "/vocab.json", "missing"]) { _ = try GPT2Tokenizer(directory: onlyMerges) }

        let badJSON = try scratchDir("bad-json")
        try FileHelpers.copy(tokenizerDir + "/merges.txt", badJSON + "/merges.txt")
        try FileHelpers.write("{\"a\": 0, \"b\": ", badJSON + "/vocab.json")
        expectAttribError([badJSON + "/vocab.json", "not valid JSON"]) { _ = try GPT2Tokenizer(directory: badJSON) }

        try FileHelpers.write("[\"a\", \"b\"]", badJSON + "/vocab.json")
        expectAttribError([badJSON + "/vocab.json", "JSON object"]) { _ = try GPT2Tokenizer(directory: badJSON) }

        try FileHelpers.write("{\"a\": 0, \"b\": \"1\"}", badJSON + "/vocab.json")
        expectAttribError([badJSON + "/vocab.json", "\"b\"", "has id"]) { _ = try GPT2Tokenizer(directory: badJSON) }

        try FileHelpers.write("{\"a\": 0, \"b\": 0}", badJSON + "/vocab.json")
        expectAttribError([badJSON + "/vocab.json", "same id 0"]) { _ = try GPT2Tokenizer(directory: badJSON) }

        let badMerges = try scratchDir("bad-merges")
        try FileHelpers.copy(tokenizerDir + "/vocab.json", badMerges + "/vocab.json")
        try FileHelpers.write("#version: 0.2\nt h\nthree parts here\n", badMerges + "/merges.txt")
        expectAttribError([badMerges + "/merges.txt", "line 3", "three parts here"]) { _ = try GPT2Tokenizer(directory: badMerges) }
    }

    @Test func tokenIDsOnly() throws {
        let dir = try scratchDir("ids-only")
        let tok = try GPT2Tokenizer(directory: dir)
        #expect(!tok.hasVocabulary && tok.vocabSize == 0)
        #expect(tok.token(for: 0) == nil)
        expectAttribError(["GPT2Tokenizer.encode", dir, "takes token ids only", "vocab.json"]) { _ = try tok.encode("hello") }
        expectAttribError(["GPT2Tokenizer.decode", "takes token ids only"]) { _ = try tok.decode([1]) }
    }

    /// A reduced vocabulary (only some bytes) cannot encode every text: the error
    /// names the character, its position and the piece.
    @Test func unencodableCharacter() throws {
        let dir = try scratchDir("reduced")
        try FileHelpers.write("{\"a\": 0, \"b\": 1, \"c\": 2, \"Ġ\": 3, \"ab\": 4, \"Ġc\": 5}", dir + "/vocab.json")
        try FileHelpers.write("#version: 0.2\na b\nĠ c\n", dir + "/merges.txt")
        let tok = try GPT2Tokenizer(directory: dir)
        #expect(try tok.encode("ab c abba") == [4, 5, 3, 4, 1, 0])
        #expect(try tok.decode([4, 5, 3, 4, 1, 0]) == "ab c abba")
        expectAttribError(["GPT2Tokenizer.encode", "\"d\"", "U+0064", "character 4", "piece \" cd\""]) { _ = try tok.encode("ab cd") }
        expectAttribError(["\"é\"", "U+00E9", "character 2", "piece \"abé\""]) { _ = try tok.encode("abé") }
        // A merge whose result vocab.json lacks.
        try FileHelpers.write("#version: 0.2\na b\nb c\n", dir + "/merges.txt")
        let inconsistent = try GPT2Tokenizer(directory: dir)
        expectAttribError(["cannot encode \"bc\"", "merge result \"bc\"", "not in vocab.json", "character 1", "piece \"cbca\""]) { _ = try inconsistent.encode("cbca") }
    }
}

/// Models/induction-2l (scripts/train_induction.py): one id per character, and
/// the prompts' ids are what the tokenizer makes of their text.
@Suite struct InductionModelTokenizerTests {
    struct Prompts: Decodable {
        struct Pair: Decodable {
            let clean_text: String, corrupt_text: String
            let clean_ids: [Int32], corrupt_ids: [Int32]
            let clean_answer: String, clean_answer_id: Int32
            let corrupt_answer: String, corrupt_answer_id: Int32
            let changed_position: Int
        }
        let pairs: [Pair]
    }

    let dir = fixturePath("../../Models/induction-2l")

    @Test func encodesOneIDPerCharacter() throws {
        let tok = try GPT2Tokenizer(directory: dir)
        #expect(tok.vocabSize == 63)
        #expect(try tok.encode("<|endoftext|>abcdabcd") == [0, 1, 2, 3, 4, 1, 2, 3, 4])
        #expect(try tok.encode("aZ09") == [1, 52, 53, 62])
        expectAttribError(["\" \"", "U+0020", "character 2"]) { _ = try tok.encode("ab cd") }
    }

    @Test func promptsMatchTheTokenizer() throws {
        let tok = try GPT2Tokenizer(directory: dir)
        let data = FileManager.default.contents(atPath: dir + "/prompts.json") ?? Data()
        let prompts = try JSONDecoder().decode(Prompts.self, from: data)
        #expect(prompts.pairs.count >= 20)
        for p in prompts.pairs {
            #expect(try tok.encode(p.clean_text) == p.clean_ids)
            #expect(try tok.encode(p.corrupt_text) == p.corrupt_ids)
            #expect(try tok.decode(p.clean_ids) == p.clean_text)
            #expect(p.clean_ids.count == p.corrupt_ids.count)
            let differ = zip(p.clean_ids, p.corrupt_ids).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            #expect(differ == [p.changed_position])
            #expect(tok.token(for: p.clean_answer_id) == p.clean_answer && tok.token(for: p.corrupt_answer_id) == p.corrupt_answer)
            #expect(p.corrupt_ids[p.changed_position] == p.corrupt_answer_id && p.clean_ids[p.changed_position] == p.clean_answer_id)
        }
    }
}
