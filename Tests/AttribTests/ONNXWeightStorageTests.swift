import Attrib
import AttribONNX
import SwiftProtobuf
import Foundation
import Testing

/// Float32 weights are kept as the file's bytes or its typed field, never widened, until they
/// reach the device (ONNXConstant.Storage): the same numbers whichever way a file stores them,
/// transposed and scaled for MatMul and Gemm exactly as the rule says, and a non-finite entry
/// refused with the tensor and the element named either way.
@Suite struct ONNXWeightStorageTests {
    /// x [N, 3] → MatMul(W [3, 2]) → Gemm(B [4, 2], transB = 1, alpha = 2, beta = 0.5, C [4])
    /// → "logits" [N, 4]. `raw`: initializers as little-endian raw_data (as exporters write
    /// them), else in float_data.
    static func model(w: [Float], b: [Float], c: [Float], raw: Bool, cDims: [Int64] = [4]) throws -> Data {
        func tensor(_ name: String, _ dims: [Int64], _ v: [Float]) -> Onnx_TensorProto {
            var t = Onnx_TensorProto()
            t.name = name; t.dims = dims; t.dataType = 1
            if raw { t.rawData = v.withUnsafeBytes { Data($0) } } else { t.floatData = v }
            return t
        }
        func value(_ name: String, _ dims: [Int64?]) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            v.type.tensorType.elemType = 1
            v.type.tensorType.shape.dim = dims.map { d in
                var x = Onnx_TensorShapeProto.Dimension()
                if let d { x.dimValue = d } else { x.dimParam = "N" }
                return x
            }
            return v
        }
        func attr(_ name: String, f: Float? = nil, i: Int64? = nil) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            if let f { a.f = f; a.type = .float }
            if let i { a.i = i; a.type = .int }
            return a
        }
        var mm = Onnx_NodeProto(), gemm = Onnx_NodeProto()
        mm.name = "mm"; mm.opType = "MatMul"; mm.input = ["x", "W"]; mm.output = ["h"]
        gemm.name = "gemm"; gemm.opType = "Gemm"; gemm.input = ["h", "B", "C"]; gemm.output = ["logits"]
        gemm.attribute = [attr("alpha", f: 2), attr("beta", f: 0.5), attr("transB", i: 1)]
        var g = Onnx_GraphProto()
        g.name = "g"; g.node = [mm, gemm]
        g.initializer = [tensor("W", [3, 2], w), tensor("B", [4, 2], b), tensor("C", cDims, c)]
        g.input = [value("x", [nil, 3])]; g.output = [value("logits", [nil, 4])]
        var m = Onnx_ModelProto()
        m.irVersion = 8; m.graph = g
        var o = Onnx_OperatorSetIdProto(); o.version = 17
        m.opsetImport = [o]
        return try m.serializedBytes()
    }

    static func load(_ bytes: Data, dtype: DType) throws -> ONNXModel {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-w-\(UUID().uuidString).onnx").path
        _ = FileManager.default.createFile(atPath: p, contents: bytes)
        defer { try? FileManager.default.removeItem(atPath: p) }
        return try ONNXModel.load(p, on: CPUDevice.shared, dtype: dtype)
    }

    @Test("Float32 weights in raw_data and in float_data give the same logits, equal to the rule computed by hand", arguments: [true, false])
    func sameNumbers(raw: Bool) throws {
        let w: [Float] = [0.5, -1, 2, 0.25, -0.75, 1.5], b: [Float] = [1, 2, -1, 0.5, 0.25, -2, 3, 1], c: [Float] = [0.1, -0.2, 0.3, 1]
        let x: [Double] = [1, 2, 3, -1, 0.5, 4]                 // [2, 3]
        var expect = [Double](repeating: 0, count: 8)
        for r in 0..<2 {
            let h = (0..<2).map { j in (0..<3).reduce(0.0) { $0 + x[r * 3 + $1] * Double(w[$1 * 2 + j]) } }
            for o in 0..<4 { expect[r * 4 + o] = 2 * (h[0] * Double(b[o * 2]) + h[1] * Double(b[o * 2 + 1])) + 0.5 * Double(c[o]) }
        }
        // Float64: every entry of the file is exact in Double and the sums above are the graph's
        // own (a few terms, all exactly representable here but for 0.1/0.3 in c): 1e-12.
        // Float32: two products of ≤ 3 terms rounded to u₃₂ ≈ 6e-8: 1e-6 relative.
        for (dtype, tol) in [(DType.float64, 1e-12), (.float32, 1e-6)] {
            let m = try Self.load(try Self.model(w: w, b: b, c: c, raw: raw), dtype: dtype)
            let out = try GraphExecutor(m.graph).forward(["x": Tensor(x, shape: [2, 3], dtype: dtype, on: CPUDevice.shared)])["logits"]!.doubles()
            for (a, e) in zip(out, expect) { #expect(abs(a - e) <= tol * max(1, abs(e)), "\(dtype) raw=\(raw): \(out) against \(expect)") }
        }
    }

    @Test("a non-finite Float32 weight is refused naming the tensor and the element, in raw_data and in float_data", arguments: [true, false])
    func nonFinite(raw: Bool) throws {
        var b: [Float] = [1, 2, -1, 0.5, 0.25, -2, 3, 1]
        b[5] = raw ? .nan : .infinity
        let bytes = try Self.model(w: [1, 0, 0, 1, 1, 1], b: b, c: [0, 0, 0, 0], raw: raw)
        expectAttribError(["tensor 'B'", "non-finite value", "at element 5"]) { _ = try Self.load(bytes, dtype: .float32) }
    }

    /// A lone ±∞ is a fill value (GPT-2's attention mask writes −∞ as a scalar Constant): it
    /// loads; NaN never does, nor an infinity among several values (a weight).
    @Test("a scalar ±∞ loads as a fill value; a scalar NaN and an infinity in a weight are refused")
    func scalarInfinity() throws {
        let w: [Float] = [1, 0, 0, 1, 1, 1], b: [Float] = [1, 2, -1, 0.5, 0.25, -2, 3, 1]
        // C of one value broadcast over the 4 outputs by Gemm: −∞ there gives −∞ logits, as the file says.
        let m = try Self.load(try Self.model(w: w, b: b, c: [-.infinity], raw: true, cDims: [1]), dtype: .float32)
        let out = try GraphExecutor(m.graph).forward(["x": Tensor([1, 2, 3], shape: [1, 3], dtype: .float32, on: CPUDevice.shared)])["logits"]!.doubles()
        #expect(out.allSatisfy { $0 == -.infinity })
        expectAttribError(["tensor 'C'", "non-finite value (nan)"]) { _ = try Self.load(try Self.model(w: w, b: b, c: [.nan], raw: true, cDims: [1]), dtype: .float32) }
        expectAttribError(["tensor 'C'", "non-finite value (inf)", "at element 2"]) {
            _ = try Self.load(try Self.model(w: w, b: b, c: [0, 0, .infinity, 0], raw: false), dtype: .float32)
        }
    }
}
