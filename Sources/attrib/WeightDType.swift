import ArgumentParser
import Attrib

/// `--dtype` of the LLM commands: the storage type of the weight matrices and embeddings.
extension DType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["float32", "bf16", "f16"] }
}
