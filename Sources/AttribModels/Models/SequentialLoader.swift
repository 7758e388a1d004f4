import AttribCore

extension Sequential {
    /// Loads a model directory: config.json (docs/model-format.md) and
    /// model.safetensors with nn.Sequential's state_dict names ("0.weight", …).
    /// Every weight is checked against the shape its layer needs; tensors the
    /// config does not use are an error too (a config that does not match the weights).
    public static func load(_ directory: String, on device: any Device, dtype: DType = .float32) throws -> Sequential {
        let configPath = directory + "/config.json", weightsPath = directory + "/model.safetensors"
        let config = try SequentialConfig.read(configPath)
        let file = try SafeTensorsFile(path: weightsPath)
        var used = Set<String>()
        func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
            used.insert(name)
            return try file.tensor(name, shape: shape, dtype: dtype, on: device, weight: true)
        }
        var layers: [any Layer] = []
        var shape = config.inputShape
        for (i, spec) in config.layers.enumerated() {
            func fail(_ detail: String) -> AttribError { .io(path: configPath, detail: "layer \(i) (\(spec.type)): \(detail)") }
            func need<T>(_ v: T?, _ field: String) throws -> T {
                guard let v else { throw AttribError.io(path: configPath, detail: "layer \(i) (\(spec.type)) has no \"\(field)\"") }
                return v
            }
            // Sizes are checked before anything is computed or allocated from them.
            func size(_ v: Int?, _ field: String) throws -> Int {
                let n = try need(v, field)
                guard n >= 1, n <= SizeLimits.maxSampleElements else { throw fail("\(field) = \(n); must be 1 to \(SizeLimits.maxSampleElements)") }
                return n
            }
            func sizes(_ v: [Int]?, _ field: String, minimum: Int = 1) throws -> [Int]? {
                guard let v else { return nil }
                guard v.count == 2, v.allSatisfy({ $0 >= minimum && $0 <= SizeLimits.maxSampleElements }) else {
                    throw fail("\(field) = \(v); must be a pair of values from \(minimum) to \(SizeLimits.maxSampleElements)")
                }
                return v
            }
            let layer: any Layer
            do {
            switch spec.type {
            case "Linear":
                let (fin, fout) = (try size(spec.inFeatures, "in_features"), try size(spec.outFeatures, "out_features"))
                layer = try Linear(weight: weight("\(i).weight", [fout, fin]), bias: spec.bias ?? true ? weight("\(i).bias", [fout]) : nil)
            case "Conv2d":
                let (cin, cout) = (try size(spec.inChannels, "in_channels"), try size(spec.outChannels, "out_channels"))
                let k = try need(sizes(spec.kernelSize, "kernel_size"), "kernel_size")
                let groups = try size(spec.groups ?? 1, "groups"), dilation = try sizes(spec.dilation, "dilation") ?? [1, 1]
                guard cin % groups == 0, cout % groups == 0 else {
                    throw fail("groups = \(groups) does not divide in_channels = \(cin) and out_channels = \(cout)")
                }
                var w = try weight("\(i).weight", [cout, cin / groups] + k)
                if dilation != [1, 1] {
                    // The dilated kernel as the dense kernel it equals (zeros between the taps).
                    let (v, shape) = Conv2d.dilatedWeight(try w.doubles(), shape: w.shape, dilation: dilation)
                    _ = try SizeLimits.checkedProduct(shape, "dilated kernel", op: "Conv2d")
                    w = try Tensor(v, shape: shape, dtype: dtype, on: device)
                }
                let b = spec.bias ?? true ? try weight("\(i).bias", [cout]) : nil
                let stride = try sizes(spec.stride, "stride") ?? [1, 1], padding = try sizes(spec.padding, "padding", minimum: 0) ?? [0, 0]
                layer = groups == 1 ? try Conv2d(weight: w, bias: b, stride: stride, padding: padding)
                                    : try GroupedConv2d(weight: w, bias: b, groups: groups, stride: stride, padding: padding)
            case "MaxPool2d", "AvgPool2d":
                let k = try need(sizes(spec.kernelSize, "kernel_size"), "kernel_size")
                let stride = try sizes(spec.stride, "stride") ?? k, padding = try sizes(spec.padding, "padding", minimum: 0) ?? [0, 0]
                let ceil = spec.ceilMode ?? false
                layer = padding == [0, 0] && !ceil ? try Pool2d(max: spec.type == "MaxPool2d", kernel: k, stride: stride)
                    : try PaddedPool2d(max: spec.type == "MaxPool2d", kernel: k, stride: stride, padding: padding,
                                       countIncludePad: spec.countIncludePad ?? true, ceilMode: ceil)
            case "LayerNorm":
                let ns = try need(spec.normalizedShape, "normalized_shape")
                // Against the input before anything is allocated for it.
                guard !ns.isEmpty, ns.count <= shape.count, Array(shape.suffix(ns.count)) == ns else {
                    throw fail("normalized_shape \(ns) is not the trailing dimensions of its input \(shape)")
                }
                let affine = spec.elementwiseAffine ?? true
                layer = try LayerNormLayer(normalizedShape: ns, eps: spec.eps ?? 1e-5,
                                           weight: affine ? weight("\(i).weight", ns) : nil, bias: affine ? weight("\(i).bias", ns) : nil,
                                           device: device, dtype: dtype)
            case "Embedding":
                layer = try Embedding(weight: weight("\(i).weight", [try size(spec.numEmbeddings, "num_embeddings"), try size(spec.embeddingDim, "embedding_dim")]))
            case "Flatten": layer = Flatten()
            case "ReLU": layer = ActivationLayer(.relu)
            case "ReLU6": layer = ActivationLayer(.relu6)
            case "Tanh": layer = ActivationLayer(.tanh)
            case "Sigmoid": layer = ActivationLayer(.sigmoid)
            case "Softplus": layer = ActivationLayer(.softplus)
            case "GELU":
                switch spec.approximate ?? "none" {
                case "none": layer = ActivationLayer(.geluErf)
                case "tanh": layer = ActivationLayer(.geluTanh)
                case let a: throw AttribError.io(path: configPath, detail: "layer \(i) (GELU) has approximate \"\(a)\"; expected \"none\" or \"tanh\"")
                }
            case "Softmax", "LogSoftmax":
                let d = spec.dim ?? -1
                guard d == -1 || d == shape.count else {
                    throw AttribError.io(path: configPath, detail: "layer \(i) (\(spec.type)) over dim \(d): only the last dimension is supported")
                }
                layer = SoftmaxLayer(log: spec.type == "LogSoftmax")
            default:
                throw AttribError.io(path: configPath, detail: "layer \(i) has unsupported type \"\(spec.type)\"")
            }
            } catch let e as AttribError {
                // A layer's own error (its kernel, stride, eps) gets the file and the layer's place.
                if case .io = e { throw e }
                throw fail("\(e)")
            }
            do { shape = try layer.outputShape(shape) } catch {
                throw AttribError.io(path: configPath, detail: "layer \(i) (\(layer.description)) does not fit its input of shape \(shape): \(error)")
            }
            layers.append(layer)
        }
        if let labels = config.labels {
            let outputs = shape.reduce(1, *)
            guard labels.count == outputs else {
                throw AttribError.io(path: configPath, detail: "labels has \(labels.count) entries for the model's \(outputs) outputs; give one label per output (or none)")
            }
        }
        let unused = file.names.filter { !used.contains($0) }
        guard unused.isEmpty else {
            throw AttribError.io(path: weightsPath, detail: "tensors \(unused) are not used by the layers in \(configPath): the config does not match the weights")
        }
        return try Sequential(layers: layers, inputShape: config.inputShape, labels: config.labels, device: device, dtype: dtype)
    }
}
