import AttribCore
import AttribModels

/// The granularity of component nodes for activation patching, AtP and AtP*.
public enum ComponentGranularity: String, CaseIterable, Sendable {
    /// One node per attention head (layer, head): the head's output z over every position.
    case heads
    /// One node per (layer, head, position t): the head's query, key and value at token t
    /// (what token t feeds the head; see `ComponentNodeSet.slices`).
    case headPositions = "head-positions"
    /// One node per MLP neuron (layer, neuron): mlp_post over every position.
    case neurons
    /// One node per (layer, position, neuron): mlp_post at one token.
    case neuronPositions = "neuron-positions"

    /// Parses a granularity name (heads, head-positions, neurons, neuron-positions).
    public init(name: String) throws {
        guard let g = ComponentGranularity(rawValue: name) else {
            throw AttribError.invalidArgument(op: "ComponentGranularity", detail: "unknown node granularity \"\(name)\"; use one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = g
    }

    public var isAttention: Bool { self == .heads || self == .headPositions }
    public var isPerPosition: Bool { self == .headPositions || self == .neuronPositions }
}

/// One node: a head or a neuron of a layer, maybe at one position.
public struct ComponentNode: Hashable, Sendable, CustomStringConvertible {
    public let layer: Int
    public let head: Int?
    public let neuron: Int?
    public let position: Int?

    /// "L1H3", "L1H3@5", "L0N17", "L0N17@5".
    public var description: String {
        var s = "L\(layer)"
        if let head { s += "H\(head)" }
        if let neuron { s += "N\(neuron)" }
        if let position { s += "@\(position)" }
        return s
    }
}

/// Every node of one granularity for a model and a prompt length, in a fixed order:
/// heads [L, H], head-positions [L, H, T], neurons [L, F], neuron-positions [L, T, F]
/// (row-major; score arrays follow this order and `shape`).
public struct ComponentNodeSet: Sendable {
    public let granularity: ComponentGranularity
    public let config: DecoderConfig
    /// The prompt length T.
    public let tokens: Int

    public init(_ granularity: ComponentGranularity, config: DecoderConfig, tokens: Int) throws {
        guard tokens >= 1 else { throw AttribError.invalidArgument(op: "ComponentNodeSet", detail: "prompt length \(tokens); must be at least 1") }
        // With grouped keys and values one position's key feeds H/H_kv heads: a head's own key
        // at t is an activation only of the ungrouped model (DecoderModel.ungrouped(), which the
        // CLI uses for these nodes), so on the grouped one the node is undefined.
        if granularity == .headPositions, config.nKVHead < config.nHead {
            throw AttribError.invalidArgument(op: "ComponentNodeSet", detail: "head-position nodes need one key/value head per query head; this \(config.family.rawValue) model has \(config.nHead) query heads sharing \(config.nKVHead) key/value heads: run them on model.ungrouped() (each query head its own copy of its key and value, the same logits), or use heads, neurons or neuron-positions")
        }
        self.granularity = granularity; self.config = config; self.tokens = tokens
    }

    public var shape: [Int] {
        let c = config
        switch granularity {
        case .heads: return [c.nLayer, c.nHead]
        case .headPositions: return [c.nLayer, c.nHead, tokens]
        case .neurons: return [c.nLayer, c.nInner]
        case .neuronPositions: return [c.nLayer, tokens, c.nInner]
        }
    }
    public var count: Int { shape.reduce(1, *) }
    /// Nodes per layer.
    public var perLayer: Int { count / config.nLayer }
    public func layer(of i: Int) -> Int { i / perLayer }

    public subscript(i: Int) -> ComponentNode {
        let l = i / perLayer, r = i % perLayer
        switch granularity {
        case .heads: return ComponentNode(layer: l, head: r, neuron: nil, position: nil)
        case .headPositions: return ComponentNode(layer: l, head: r / tokens, neuron: nil, position: r % tokens)
        case .neurons: return ComponentNode(layer: l, head: nil, neuron: r, position: nil)
        case .neuronPositions: return ComponentNode(layer: l, head: nil, neuron: r % config.nInner, position: r / config.nInner)
        }
    }

    /// The hook points whose activations the nodes are made of (cache them in the corrupt run).
    public var hookPoints: Set<HookPoint> {
        let kinds: [HookKind]
        switch granularity {
        case .heads: kinds = [.attnZ]
        case .headPositions: kinds = [.attnQ, .attnK, .attnV]
        case .neurons, .neuronPositions: kinds = [.mlpPost]
        }
        return Set((0..<config.nLayer).flatMap { l in kinds.map { HookPoint($0, layer: l) } })
    }

    /// The activation slices node i stands for: what exact patching replaces.
    /// - heads: z of the head at every position (z of a head is a function of that head's q, k, v
    ///   at all positions only, so this equals patching all three).
    /// - head-positions: the head's q, k and v at token t. The paper's per-position attention node is
    ///   what token t feeds the head (its query, key and value), which is what the QK fix decomposes;
    ///   patching z_t instead would be an intervention AtP*'s q/k/v decomposition does not estimate.
    ///   Summing these nodes over t gives the head's q, v effects exactly and its k effect to first order.
    /// - neurons: mlp_post of the neuron at every position; neuron-positions: at token t.
    public func slices(_ i: Int) -> [NodeSlice] {
        let n = self[i]
        switch granularity {
        case .heads: return [NodeSlice(HookPoint(.attnZ, layer: n.layer), head: n.head)]
        case .headPositions:
            return [HookKind.attnQ, .attnK, .attnV].map { NodeSlice(HookPoint($0, layer: n.layer), head: n.head, position: n.position) }
        case .neurons: return [NodeSlice(HookPoint(.mlpPost, layer: n.layer), index: n.neuron)]
        case .neuronPositions: return [NodeSlice(HookPoint(.mlpPost, layer: n.layer), position: n.position, index: n.neuron)]
        }
    }
}

/// A clean and a corrupt prompt of equal length.
public struct PromptPair: Sendable, Equatable {
    public var clean: [Int32]
    public var corrupt: [Int32]
    public init(clean: [Int32], corrupt: [Int32]) { self.clean = clean; self.corrupt = corrupt }

    /// Checks equal lengths and the tokens against the model (vocabulary, n_positions).
    public func check(for model: DecoderModel, _ op: String) throws {
        guard clean.count == corrupt.count else {
            throw AttribError.shapeMismatch(op: op, detail: "the clean prompt has \(clean.count) tokens and the corrupt prompt \(corrupt.count): patching needs prompts of equal length")
        }
        _ = try model.checkTokens([clean, corrupt])
    }
}

/// Scores of every node of a set (estimated or exact), with how they were computed.
public struct ComponentScores: Sendable {
    public let method: String
    public let nodes: ComponentNodeSet
    /// One score per node, in the set's order.
    public let scores: [Double]
    /// The metric on the clean and on the corrupt prompt.
    public let cleanMetric: Double, corruptMetric: Double
    /// Forward and backward passes run (a batched forward of B rows counts B).
    public let forwardRows: Int, backwardPasses: Int
    public let seconds: Double
    /// The first tokens the corrupt (and patched) runs took from the clean run instead of
    /// computing them (`SharedPrefix`): 0 where they ran whole.
    public var sharedPrefix: Int = 0

    /// Node indices by decreasing |score| (ties by index).
    /// Nodes by |score| descending (ties: lower index first); nodes not scored (NaN: exact
    /// patching of only some layers) are left out.
    public func ranking() -> [Int] {
        scores.indices.filter { !scores[$0].isNaN }
            .sorted { abs(scores[$0]) != abs(scores[$1]) ? abs(scores[$0]) > abs(scores[$1]) : $0 < $1 }
    }
}

/// Wall-clock seconds since `start`.
func secondsSince(_ start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
