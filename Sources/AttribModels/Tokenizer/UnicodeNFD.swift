// Foundation rather than FoundationEssentials: canonical decomposition (NFD) is the one text
// operation the tokenizers need that neither the standard library nor FoundationEssentials
// offers publicly. The binary links Foundation already (SwiftProtobuf's runtime, for ONNX).
import Foundation

enum UnicodeNFD {
    /// `s` in Normalization Form D: every character canonically decomposed, marks in canonical
    /// order (what BERT's accent stripping runs before it drops the nonspacing marks).
    static func decompose(_ s: String) -> String { s.decomposedStringWithCanonicalMapping }
}
