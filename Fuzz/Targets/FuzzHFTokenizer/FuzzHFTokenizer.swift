import Attrib
import FuzzSupport

/// libFuzzer target: the bytes up to the first 0 as a tokenizer.json, through HFTokenizer(path:),
/// then encoding a fixed text and the input's own tail (with and without special tokens) and
/// decoding what came out.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHFTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    FuzzFiles.write(data, cut, "tokenizer.json")
    guard let t = try? HFTokenizer(path: FuzzFiles.directory() + "/tokenizer.json") else { return 0 }
    for text in ["<s>Hello, world! 123 ½ ٣ 🏳️‍🌈  \n\t x", String(decoding: bytes[(cut < size ? cut + 1 : size)...], as: UTF8.self)] {
        for special in [true, false] { _ = try? t.decode(t.encode(text, addSpecialTokens: special)) }
    }
    return 0
}

runFuzzer(fuzzHFTokenizer)
