import AttribCore
import FoundationEssentials

/// A whole file as Data, read straight into the Data's own bytes (readWholeFile: POSIX reads, no
/// FileManager leak on empty files), nil when it cannot be opened or read. Why not
/// `Data(readFileBytes(path))`: that held the file twice and copied it once, for a ViT-B/16's
/// 346 MB ONNX file a second of page faults and copying at every load.
public func readFileData(_ path: String) -> Data? {
    readWholeFile(path, sized: { Data(count: $0) }, fill: { data, read in data.withUnsafeMutableBytes(read) })
}
