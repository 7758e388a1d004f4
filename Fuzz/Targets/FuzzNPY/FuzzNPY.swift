import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as a .npy file, through NPY.read and NPY.samples.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let path = FuzzFiles.write(data, size, "input.npy")
    if let a = try? NPY.read(path) {
        _ = a.doubles()
        _ = try? a.int32s()
        _ = try? NPY.samples(path, sampleShape: [1, 8, 8], what: "inputs")
        _ = try? NPY.samples(path, sampleShape: [4], what: "inputs", limit: 2)
    }
    return 0
}

runFuzzer(fuzzNPY)
