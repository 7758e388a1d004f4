import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as a GPT-2 config.json beside the tiny fixture's weights (copied
/// once), through DecoderModel.load and, when it loads, logits for a short prompt.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoderModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    Weights.once
    FuzzFiles.write(data, size, "config.json")
    guard let m = try? DecoderModel.load(FuzzFiles.directory(), on: CPUDevice.shared) else { return 0 }
    _ = try? m.logits([[1, 2, 3]])
    return 0
}

enum Weights {
    static let once: Void = FuzzFiles.copy("Tests/Fixtures/gpt2/tiny/model.safetensors", as: "model.safetensors")
}

runFuzzer(fuzzDecoderModel)
