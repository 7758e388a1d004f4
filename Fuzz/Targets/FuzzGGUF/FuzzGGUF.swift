import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as a .gguf file; every metadata value's accessors, every
/// tensor dequantised, whole and as its first row, as a model loader would read them, and the
/// file's tokenizer (byte-level BPE or SentencePiece scores) built and run on a fixed text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let path = FuzzFiles.write(data, size, "model.gguf")
    guard let f = try? GGUFFile(path: path) else { return 0 }
    for key in f.metadataKeys {
        let v = f.metadata[key]
        _ = (v?.int, v?.double, v?.strings, v?.ints, v?.floats, v?.description)
    }
    for t in f.tensors {
        _ = try? f.floats(t.name)
        _ = try? f.floats(t.name, rows: 0..<min(1, t.rowCount))
    }
    if let tok = try? HFTokenizer(gguf: f) {
        _ = try? tok.decode(tok.encode("<s>Hello, world! 123 ½ ٣ 🏳️‍🌈  \n\t x"))
    }
    return 0
}

runFuzzer(fuzzGGUF)
