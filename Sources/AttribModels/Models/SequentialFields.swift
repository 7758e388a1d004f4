import AttribCore

/// Every field a Sequential config.json may hold, in one place: the ones the loader reads,
/// the ones it ignores on purpose because they change no arithmetic of a forward pass or of
/// gradients with respect to activations, and the PyTorch settings it accepts only at the
/// value the engine computes. Anything else (an unknown field, or a known one at another
/// value) is an error naming the file, the layer, the field and the value: a model that is
/// not the one the user trained must not load.
enum SequentialFields {
    enum Rule {
        /// Read by the loader (SequentialConfig.LayerSpec).
        case read
        /// Accepted and ignored: no effect on any number the engine computes.
        case ignored(why: String)
        /// Accepted only at these values (the engine's arithmetic); others are refused.
        case only([JSONValue], because: String)
    }

    /// Top-level fields.
    static let topLevel: [String: Rule] = [
        "format": .read, "version": .read, "input_shape": .read, "layers": .read, "labels": .read,
        "name": .ignored(why: "a name"), "description": .ignored(why: "a comment"), "comment": .ignored(why: "a comment"),
    ]

    static let pair1: [JSONValue] = [.int(1), .array([.int(1), .int(1)])]
    static let pair0: [JSONValue] = [.int(0), .array([.int(0), .int(0)])]
    static let inplace = Rule.ignored(why: "in-place evaluation only changes memory use")

    /// Fields of each layer type (besides "type").
    static let layers: [String: [String: Rule]] = [
        "Linear": ["in_features": .read, "out_features": .read, "bias": .read],
        "Conv2d": ["in_channels": .read, "out_channels": .read, "kernel_size": .read, "stride": .read, "padding": .read, "bias": .read,
                   "dilation": .read, "groups": .read,
                   "padding_mode": .only([.string("zeros")], because: "only zero padding is implemented")],
        "MaxPool2d": ["kernel_size": .read, "stride": .read, "padding": .read,
                      "dilation": .only(pair1, because: "dilated pooling is not implemented"),
                      "ceil_mode": .read,
                      "return_indices": .only([.bool(false)], because: "the layer returns its values only")],
        "AvgPool2d": ["kernel_size": .read, "stride": .read, "padding": .read, "count_include_pad": .read, "ceil_mode": .read,
                      "divisor_override": .only([.null], because: "the divisor is the window's size")],
        "LayerNorm": ["normalized_shape": .read, "eps": .read, "elementwise_affine": .read,
                      "bias": .only([.bool(true)], because: "an affine LayerNorm without bias is not implemented")],
        "Embedding": ["num_embeddings": .read, "embedding_dim": .read,
                      "padding_idx": .ignored(why: "it only changes the weight's gradient"),
                      "scale_grad_by_freq": .ignored(why: "it only changes the weight's gradient"),
                      "sparse": .ignored(why: "it only changes how the weight's gradient is stored"),
                      "max_norm": .only([.null], because: "renormalised lookups are not implemented")],
        "Flatten": ["start_dim": .only([.int(1)], because: "each sample is flattened whole"),
                    "end_dim": .only([.int(-1)], because: "each sample is flattened whole")],
        "ReLU": ["inplace": inplace], "ReLU6": ["inplace": inplace], "Tanh": [:], "Sigmoid": [:],
        "Softplus": ["beta": .only([.int(1), .double(1)], because: "softplus with beta ≠ 1 is not implemented"),
                     "threshold": .only([.int(20), .double(20)], because: "PyTorch's linear region above 20 is what the engine's exact form gives to 2e-9")],
        "GELU": ["approximate": .read],
        "Softmax": ["dim": .read], "LogSoftmax": ["dim": .read],
    ]

    /// Names ignored on every layer.
    static let anyLayer: [String: Rule] = ["name": .ignored(why: "a name"), "comment": .ignored(why: "a comment")]

    /// Checks a parsed config.json against the rules; an error names the file, the layer,
    /// the field and the value.
    static func check(_ json: JSONValue, path: String) throws {
        guard case let .object(top) = json else { return }     // the decoder reports the shape
        for (key, value) in top { try apply(topLevel[key], key, value, path: path, place: "top-level field") }
        guard case let .array(layerList)? = top.first(where: { $0.key == "layers" })?.value else { return }
        for (i, l) in layerList.enumerated() {
            guard case let .object(fields) = l, case let .string(type)? = fields.first(where: { $0.key == "type" })?.value,
                  let rules = layers[type] else { continue }   // the loader names an unknown type
            for (key, value) in fields where key != "type" {
                try apply(rules[key] ?? anyLayer[key], key, value, path: path, place: "layer \(i) (\(type)): field")
            }
        }
    }

    static func apply(_ rule: Rule?, _ key: String, _ value: JSONValue, path: String, place: String) throws {
        switch rule {
        case nil:
            throw AttribError.io(path: path, detail: "\(place) \"\(key)\" (= \(value.summary)) is not one the engine knows; it would be ignored and the model would compute something else")
        case .read?, .ignored?:
            return
        case let .only(values, because)?:
            guard values.contains(value) else {
                throw AttribError.io(path: path, detail: "\(place) \"\(key)\" = \(value.summary) is not supported (\(because); accepted: \(values.map(\.summary).joined(separator: " or ")))")
            }
        }
    }
}
