import Attrib
import FuzzSupport

/// libFuzzer target: the bytes up to the first 0 as vocab.json, the rest as merges.txt, through
/// GPT2Tokenizer(directory:), then encoding and decoding a fixed text and the input's own tail.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    FuzzFiles.write(data, cut, "vocab.json")
    FuzzFiles.write(cut < size ? data + cut + 1 : nil, cut < size ? size - cut - 1 : 0, "merges.txt")
    guard let t = try? GPT2Tokenizer(directory: FuzzFiles.directory()), t.hasVocabulary else { return 0 }
    for text in ["<|endoftext|>Hello, world! 123 ", String(decoding: bytes[(cut < size ? cut + 1 : size)...], as: UTF8.self)] {
        if let ids = try? t.encode(text) { _ = try? t.decode(ids) }
    }
    return 0
}

runFuzzer(fuzzTokenizer)
