import AttribCore
import FoundationEssentials

/// A node's attributes, read by name; every attribute the node carries must be read (known
/// to the op) or listed as ignored, so an attribute that changes the maths is never dropped
/// silently. Errors name the file, the node, its op type and the attribute.
struct ONNXAttributes {
    let node: Onnx_NodeProto
    let file: String
    private var byName: [String: Onnx_AttributeProto] = [:]
    private(set) var read: Set<String> = []

    init(_ node: Onnx_NodeProto, file: String) {
        self.node = node; self.file = file
        for a in node.attribute { byName[a.name] = a }
    }

    var what: String { "node '\(node.name)' (\(node.opType))" }

    func error(_ detail: String) -> AttribError { .io(path: file, detail: "\(what): \(detail)") }

    mutating func int(_ name: String, default d: Int? = nil) throws -> Int {
        read.insert(name)
        guard let a = byName[name] else {
            if let d { return d }
            throw error("has no attribute \(name)")
        }
        guard a.type == .int else { throw error("attribute \(name) is \(a.type), not an int") }
        return Int(a.i)
    }

    mutating func ints(_ name: String, default d: [Int]? = nil) throws -> [Int] {
        read.insert(name)
        guard let a = byName[name] else {
            if let d { return d }
            throw error("has no attribute \(name)")
        }
        guard a.type == .ints else { throw error("attribute \(name) is \(a.type), not a list of ints") }
        return a.ints.map { Int($0) }
    }

    mutating func float(_ name: String, default d: Double) throws -> Double {
        read.insert(name)
        guard let a = byName[name] else { return d }
        guard a.type == .float else { throw error("attribute \(name) is \(a.type), not a float") }
        return Double(a.f)
    }

    mutating func string(_ name: String, default d: String) throws -> String {
        read.insert(name)
        guard let a = byName[name] else { return d }
        guard a.type == .string else { throw error("attribute \(name) is \(a.type), not a string") }
        return String(decoding: a.s, as: UTF8.self)
    }

    mutating func tensor(_ name: String) throws -> Onnx_TensorProto? {
        read.insert(name)
        guard let a = byName[name] else { return nil }
        guard a.type == .tensor else { throw error("attribute \(name) is \(a.type), not a tensor") }
        return a.t
    }
    /// Fails on any attribute the op did not read: one it does not implement.
    func checkAllRead() throws {
        for a in node.attribute where !read.contains(a.name) {
            throw error("attribute \(a.name) is not supported (the engine would ignore it and compute something else)")
        }
    }
}
