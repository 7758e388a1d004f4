import AttribCore

/// The SentencePiece-score tokenizer of a GGUF file (`tokenizer.ggml.model` = "llama": Llama 2,
/// Mistral, TinyLlama and most sentencepiece models llama.cpp converts). The file has no merges;
/// it has each piece's score, and SentencePiece's BPE merges, among adjacent symbols whose
/// concatenation is a piece, the one whose piece scores highest, leftmost first on ties.
///
/// That is a BPE model whose merges are every split (left, right) of a normal piece into two
/// pieces, ranked by the piece's score: higher score, lower rank, and every split of one piece
/// the same rank, so ties go leftmost as SentencePiece's do. Around it the pipeline of Llama 2's
/// tokenizer.json: "▁" prepended (`tokenizer.ggml.add_space_prefix`, default true) and spaces
/// spelled "▁"; characters outside the vocabulary as their `<0xXX>` byte tokens (or `<unk>`
/// where the file has none); decoding the reverse.
extension HFTokenizer {
    /// - Parameters:
    ///   - tokens, scores, tokenTypes: `tokenizer.ggml.tokens`, `.scores`, `.token_type` (1
    ///     normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; empty: all normal).
    ///   - unk: `tokenizer.ggml.unknown_token_id` (else the token of type 2, if any).
    ///   - addSpacePrefix: `tokenizer.ggml.add_space_prefix`.
    ///   - bos, eos, addBOS, addEOS, source: as for the byte-level GGUF tokenizer.
    public init(ggufSentencePiece tokens: [String], scores: [Float], tokenTypes: [Int32], unk: Int32? = nil,
                addSpacePrefix: Bool = true, bos: Int32? = nil, eos: Int32? = nil, addBOS: Bool = true, addEOS: Bool = false,
                source: String = "GGUF") throws {
        func fail(_ key: String, _ detail: String) -> AttribError { AttribError.io(path: source, detail: "\(key): \(detail)") }
        guard scores.count == tokens.count else {
            throw fail("tokenizer.ggml.scores", "\(scores.count) scores for \(tokens.count) tokens (a SentencePiece tokenizer ranks its merges by them)")
        }
        if let bad = scores.firstIndex(where: { !$0.isFinite }) { throw fail("tokenizer.ggml.scores", "score \(bad) is \(scores[bad])") }
        try Self.checkGGUFArrays(tokens: tokens, tokenTypes: tokenTypes,
                                 ids: [("bos_token_id", bos), ("eos_token_id", eos), ("unknown_token_id", unk)],
                                 bos: bos, eos: eos, addBOS: addBOS, addEOS: addEOS, source: source)
        func type(_ id: Int) -> Int32 { tokenTypes.isEmpty ? 1 : tokenTypes[id] }

        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        for (id, t) in tokens.enumerated() {
            if let other = vocab[t] { throw fail("tokenizer.ggml.tokens", "token \(jsonQuoted(t)) appears twice (ids \(other) and \(id))") }
            vocab[t] = Int32(id)
        }
        // Ranks: normal pieces by descending score (ties by id, as a stable order).
        let normal = tokens.indices.filter { type($0) == 1 }
        let byScore = normal.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        var merges: [(String, String)] = [], ranks: [Int] = []
        for (rank, id) in byScore.enumerated() {
            let piece = Array(tokens[id].unicodeScalars)
            guard piece.count >= 2 else { continue }
            for cut in 1..<piece.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: piece[..<cut]); r.append(contentsOf: piece[cut...])
                let (ls, rs) = (String(l), String(r))
                // Only pieces the text can reach: control, unused and byte tokens are never
                // symbols of a split text.
                guard let li = vocab[ls], let ri = vocab[rs], [1, 4].contains(type(Int(li))), [1, 4].contains(type(Int(ri))) else { continue }
                merges.append((ls, rs)); ranks.append(rank)
            }
        }
        let unkID = unk ?? tokenTypes.firstIndex(of: 2).map(Int32.init)
        let hasBytes = vocab["<0x00>"] != nil
        let bpe: BPEModel
        do throws(BPEModel.Failure) {
            bpe = try BPEModel(vocab: vocab, merges: merges, ranks: ranks, unkToken: unkID.map { tokens[Int($0)] }, fuseUnk: true,
                               byteFallback: hasBytes, ignoreMerges: false, prefix: nil, suffix: nil)
        } catch {
            throw fail("tokenizer.ggml", error.message.replacing("model.merges", with: "merges").replacing("model.vocab", with: "tokens"))
        }
        // Control tokens (<s>, </s>, <unk>) are special, user-defined ones plain; both are
        // matched whole in the text, as transformers' tokenizer for these files does.
        var added: [AddedToken] = []
        for id in tokens.indices where [2, 3, 4].contains(type(id)) {
            added.append(AddedToken(id: Int32(id), content: tokens[id], special: type(id) != 4))
        }
        let space: HFNormalizer = .replace(" ", "▁")
        let decode: [HFDecoder] = [.replace("▁", " "), .byteFallback, .fuse] + (addSpacePrefix ? [.strip(content: " ", start: 1, stop: 0)] : [])
        self.init(source: source, normalizer: addSpacePrefix ? .sequence([.prepend("▁"), space]) : space, preTokenizer: nil,
                  model: .bpe(bpe), decoder: .sequence(decode), added: added,
                  prefixIDs: addBOS ? [bos!] : [], suffixIDs: addEOS ? [eos!] : [])
    }
}
