import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as a .safetensors file; every tensor read as a weight would be.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let path = FuzzFiles.write(data, size, "model.safetensors")
    guard let f = try? SafeTensorsFile(path: path) else { return 0 }
    for name in f.names {
        _ = try? f.tensor(name, on: CPUDevice.shared, weight: true)
        _ = try? f.doubles(name)
    }
    return 0
}

runFuzzer(fuzzSafeTensors)
