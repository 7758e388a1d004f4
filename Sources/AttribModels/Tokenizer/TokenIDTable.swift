/// A tokenizer model's vocabulary could not be built; the message names the field.
struct TokenModelFailure: Error { let message: String }

/// id → token for a vocabulary (nil where no token has that id), shared by the BPE and WordPiece
/// models. Ids index the table: real vocabularies are dense (at most a few holes), so a far larger
/// id is a broken file, not a reason to allocate millions of entries; two tokens with one id are
/// an error naming both.
func tokensByID(_ vocab: [String: Int32]) throws(TokenModelFailure) -> [String?] {
    var maxID: Int32 = -1
    for (_, id) in vocab { maxID = max(maxID, id) }
    guard Int(maxID) < vocab.count + 65536 else {
        throw TokenModelFailure(message: "model.vocab: id \(maxID) for \(vocab.count) tokens; the ids must be about 0 to \(vocab.count - 1)")
    }
    var tokens = [String?](repeating: nil, count: Int(maxID) + 1)
    for (token, id) in vocab {
        if let other = tokens[Int(id)] {
            // Keep the report stable whatever the dictionary's order.
            let (a, b) = other < token ? (other, token) : (token, other)
            throw TokenModelFailure(message: "model.vocab: tokens \(jsonQuoted(a)) and \(jsonQuoted(b)) have the same id \(id)")
        }
        tokens[Int(id)] = token
    }
    return tokens
}
