/// The BPE model of Hugging Face's tokenizers (tokenizer.json `"model": {"type": "BPE"}`):
/// a vocabulary, merges ranked by their order, and the options byte-level and
/// sentencepiece-style vocabularies use (byte_fallback, unk_token with fuse_unk,
/// ignore_merges, continuing_subword_prefix, end_of_word_suffix).
///
/// A word's symbols start as its characters (Unicode scalars); a character missing from the
/// vocabulary becomes its UTF-8 bytes as `<0xXX>` tokens (byte_fallback), else the unknown
/// token, else is dropped, as the library does. Merges then apply lowest rank first, leftmost
/// first among equal ranks, one pair at a time (a heap over the pairs, as the library's
/// `Word::merge_all`), which is what makes `aaa` with the merge `a a` become `aa a`.
struct BPEModel: Sendable {
    /// token → id
    let vocab: [String: Int32]
    /// id → token (nil where no token has that id)
    let tokens: [String?]
    /// (left id << 32 | right id) → (rank << 32 | merged id)
    let merges: [UInt64: UInt64]
    let unkID: Int32?
    let fuseUnk: Bool
    let ignoreMerges: Bool
    let prefix: String?
    let suffix: String?
    /// byte → the id of its `<0xXX>` token, or −1; empty without byte_fallback
    let byteTokens: [Int32]
    /// one-scalar tokens: scalar value → id (the common lookup, without building a String)
    let scalarIDs: [UInt32: Int32]

    typealias Failure = TokenModelFailure

    /// `merges` as (left, right) token pairs in rank order, or with `ranks` (one per merge)
    /// ranks of their own, which may repeat: equal ranks merge leftmost first, which is how a
    /// SentencePiece-score tokenizer orders the splits of one piece (HFTokenizerSPM.swift).
    /// Errors say which merge names which token missing from the vocabulary.
    init(vocab: [String: Int32], merges: [(String, String)], ranks: [Int]? = nil, unkToken: String?, fuseUnk: Bool, byteFallback: Bool,
         ignoreMerges: Bool, prefix: String?, suffix: String?) throws(Failure) {
        precondition(ranks == nil || ranks!.count == merges.count, "one rank per merge")
        let tokens = try tokensByID(vocab)
        var scalarIDs: [UInt32: Int32] = [:]
        for (token, id) in vocab {
            var it = token.unicodeScalars.makeIterator()
            if let u = it.next(), it.next() == nil { scalarIDs[u.value] = id }
        }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (k, (a, b)) in merges.enumerated() {
            let rank = ranks?[k] ?? k
            guard let ia = vocab[a] else {
                throw Failure(message: "model.merges[\(k)] (\(jsonQuoted(a + " " + b))): \(jsonQuoted(a)) is not in model.vocab")
            }
            guard let ib = vocab[b] else {
                throw Failure(message: "model.merges[\(k)] (\(jsonQuoted(a + " " + b))): \(jsonQuoted(b)) is not in model.vocab")
            }
            var right = Substring(b)
            if let p = prefix, !p.isEmpty, right.hasPrefix(p) { right = right.dropFirst(p.count) }
            let merged = a + right
            guard let im = vocab[merged] else {
                throw Failure(message: "model.merges[\(k)] (\(jsonQuoted(a + " " + b))): the merged token \(jsonQuoted(merged)) is not in model.vocab")
            }
            // A repeated pair takes its last rank, as the library's map of merges does.
            table[UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))] = UInt64(rank) << 32 | UInt64(UInt32(im))
        }
        var unkID: Int32? = nil
        if let unk = unkToken {
            guard let id = vocab[unk] else { throw Failure(message: "model.unk_token \(jsonQuoted(unk)) is not in model.vocab") }
            unkID = id
        }
        self.vocab = vocab
        self.tokens = tokens
        self.merges = table
        self.unkID = unkID
        self.fuseUnk = fuseUnk
        self.ignoreMerges = ignoreMerges
        self.prefix = prefix.flatMap { $0.isEmpty ? nil : $0 }
        self.suffix = suffix.flatMap { $0.isEmpty ? nil : $0 }
        self.byteTokens = byteFallback ? (0..<256).map { b in
            let hex = String(b, radix: 16, uppercase: true)
            return vocab["<0x" + (hex.count == 1 ? "0" : "") + hex + ">"] ?? -1
        } : []
        self.scalarIDs = scalarIDs
    }

    /// The ids of one pre-tokenized piece, appended to `out`.
    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        guard !word.isEmpty else { return }
        if ignoreMerges {
            var s = String.UnicodeScalarView(); s.append(contentsOf: word)
            if let id = vocab[String(s)] { out.append(id); return }
        }
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnk = false  // an unknown token not yet appended (fused with the next unknown)
        for (k, u) in word.enumerated() {
            let id: Int32?
            if prefix == nil && suffix == nil {
                id = scalarIDs[u.value]
            } else {
                var s = k > 0 ? (prefix ?? "") : ""
                s.unicodeScalars.append(u)
                if k == word.count - 1 { s += suffix ?? "" }
                id = vocab[s]
            }
            if let id {
                if pendingUnk, let unk = unkID { symbols.append(unk); pendingUnk = false }
                symbols.append(id)
                continue
            }
            if !byteTokens.isEmpty {
                // The library looks up the bytes of the character with its prefix and suffix;
                // those are unset in every byte-fallback vocabulary, so the character's own.
                let bytes = Array(String(u).utf8)
                if bytes.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
                    // As the library does, a pending unknown token is not flushed first.
                    for b in bytes { symbols.append(byteTokens[Int(b)]) }
                    continue
                }
            }
            if let unk = unkID {
                if pendingUnk && !fuseUnk { symbols.append(unk) }
                pendingUnk = true
            }
        }
        if pendingUnk, let unk = unkID { symbols.append(unk) }
        mergeAll(&symbols)
        out.append(contentsOf: symbols)
    }

    /// Applies the merges to `symbols` in place: lowest rank first, then leftmost.
    private func mergeAll(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        var next = [Int32](0..<Int32(n)).map { $0 + 1 }
        next[n - 1] = -1
        var prev = [Int32](0..<Int32(n)).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        // Heap entries: rank << 32 | position (smaller first), and the merged id.
        var heap = MinHeap()
        func pair(_ a: Int32, _ b: Int32) -> UInt64? { merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] }
        for i in 0..<(n - 1) {
            if let m = pair(symbols[i], symbols[i + 1]) {
                heap.push(key: (m >> 32) << 32 | UInt64(i), value: Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
            }
        }
        while let (key, newID) = heap.pop() {
            let pos = Int(key & 0xFFFF_FFFF)
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = Int(next[pos])
            // The pair at pos may have changed since it was queued.
            guard let m = pair(symbols[pos], symbols[right]), Int32(truncatingIfNeeded: m & 0xFFFF_FFFF) == newID else { continue }
            symbols[pos] = newID
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
            if prev[pos] >= 0, let m = pair(symbols[Int(prev[pos])], newID) {
                heap.push(key: (m >> 32) << 32 | UInt64(prev[pos]), value: Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
            }
            if next[pos] >= 0, let m = pair(newID, symbols[Int(next[pos])]) {
                heap.push(key: (m >> 32) << 32 | UInt64(pos), value: Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 { out.append(symbols[i]); i = Int(next[i]) }
        symbols = out
    }
}

/// A binary min-heap of (key, value) on the key.
private struct MinHeap {
    private var keys: [UInt64] = []
    private var values: [Int32] = []

    mutating func push(key: UInt64, value: Int32) {
        keys.append(key); values.append(value)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard keys[i] < keys[p] else { break }
            keys.swapAt(i, p); values.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> (UInt64, Int32)? {
        guard let top = keys.first else { return nil }
        let value = values[0]
        let last = keys.count - 1
        keys.swapAt(0, last); values.swapAt(0, last)
        keys.removeLast(); values.removeLast()
        var i = 0
        let n = keys.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, keys[l] < keys[m] { m = l }
            if r < n, keys[r] < keys[m] { m = r }
            guard m != i else { break }
            keys.swapAt(i, m); values.swapAt(i, m)
            i = m
        }
        return (top, value)
    }
}
