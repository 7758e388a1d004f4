import Attrib
import FuzzSupport
import FoundationEssentials

/// libFuzzer target: any bytes as a prompt-pairs file (PromptPairFile.entries).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPairs(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    _ = try? PromptPairFile.entries(Data(bytes: data, count: size), path: "pairs.json")
    return 0
}

runFuzzer(fuzzPairs)
