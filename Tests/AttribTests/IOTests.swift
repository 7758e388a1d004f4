import Attrib
import Foundation
import Glibc
import Testing

/// A fresh directory for the files these tests write (one per test process).
private let ioTempDir: String = {
    var template = Array("/tmp/attrib-io-tests-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}()

private func tempPath(_ name: String) -> String { ioTempDir + "/" + name }

/// Writes raw bytes (for malformed files the library would never write).
private func writeBytes(_ bytes: [UInt8], to path: String) {
    guard let f = fopen(path, "wb") else { fatalError("cannot create \(path)") }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

private func readBytes(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { return out }
        out += chunk[..<n]
    }
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// A safetensors file from a header text and data bytes; `length` overrides the declared header length.
private func rawSafeTensors(_ name: String, header: String, data: [UInt8] = [], length: UInt64? = nil) -> String {
    let h = Array(header.utf8)
    let path = tempPath(name)
    writeBytes(le(length ?? UInt64(h.count)) + h + data, to: path)
    return path
}

/// A .npy file from a version, header text (padded as NumPy pads it unless `raw`) and data bytes.
private func rawNPY(_ name: String, version: (UInt8, UInt8) = (1, 0), header: String, data: [UInt8] = []) -> String {
    var h = Array(header.utf8)
    let pre = version.0 == 1 ? 10 : 12
    h += [UInt8](repeating: 0x20, count: (64 - (pre + h.count + 1) % 64) % 64) + [0x0A]
    let len: [UInt8] = version.0 == 1 ? le(UInt16(h.count)) : le(UInt32(h.count))
    let path = tempPath(name)
    writeBytes([0x93] + Array("NUMPY".utf8) + [version.0, version.1] + len + h + data, to: path)
    return path
}

private func f32Bytes(_ v: [Float]) -> [UInt8] { v.flatMap { le($0.bitPattern) } }

@Suite struct IOTests {
    /// The 16-bit patterns of a tensor's raw bytes.
    func bits16(_ f: SafeTensorsFile, _ name: String) throws -> [UInt16] {
        try f.withUnsafeBytes(name) { r in (0..<(r.count / 2)).map { UInt16(r[2 * $0]) | UInt16(r[2 * $0 + 1]) << 8 } }
    }

    // MARK: safetensors: round trips

    @Test("safetensors round trip of every writable dtype, exact values")
    func safeTensorsRoundTrip() throws {
        let exact: [Double] = [0, -0.0, 1, -2.5, 0.15625, 1024, -3, 0.5, 96]   // exact in F16, BF16, F32 and the ints (but -0.0)
        let ints: [Double] = [0, -1, 7, 2147483647, -2147483648, 42]
        let f64: [Double] = [0.1, -1e300, .pi, .leastNonzeroMagnitude, -0.0, .infinity]
        let path = tempPath("roundtrip.safetensors")
        try SafeTensorsWriter.write([
            ("z_f32", [3, 3], exact, .F32),
            ("a_f64", [2, 3], f64, .F64),
            ("m_f16", [9], exact, .F16),
            ("b_bf16", [3, 1, 3], exact, .BF16),
            ("i32", [2, 3], ints, .I32),
            ("i64", [6], ints.map { $0 * 1024 }, .I64),
            ("s", [], [7.5], .F32),
            ("empty", [0, 4], [], .F32),
        ], metadata: ["format": "pt", "quote\"d": "é\n"], to: path)

        let f = try SafeTensorsFile(path: path)
        #expect(f.names == ["a_f64", "b_bf16", "empty", "i32", "i64", "m_f16", "s", "z_f32"])
        #expect(f.metadata == ["format": "pt", "quote\"d": "é\n"])
        #expect(f.dataStart % 8 == 0, "header padded to a multiple of 8")
        #expect(try f.entry("b_bf16").dtype == .BF16)
        #expect(try f.entry("b_bf16").shape == [3, 1, 3])
        #expect(try f.entry("s").shape == [])
        #expect(try f.entry("empty").byteCount == 0)
        for name in ["z_f32", "m_f16", "b_bf16"] {
            #expect(try f.doubles(name) == exact, "\(name)")
            #expect(try f.floats(name).map(Double.init) == exact, "\(name) floats")
            #expect(try f.doubles(name)[1].sign == .minus, "\(name) keeps -0.0")
        }
        #expect(try f.doubles("a_f64") == f64)
        #expect(try f.doubles("i32") == ints)
        #expect(try f.doubles("i64") == ints.map { $0 * 1024 })
        #expect(try f.int32s("i32") == ints.map { Int32($0) })
        #expect(try f.doubles("s") == [7.5])
        #expect(try f.doubles("empty") == [])

        // Offsets ascend in name order, contiguously.
        var end = 0
        for e in f.entryList { #expect(e.dataOffsets.lowerBound == end, "\(e.name)"); end = e.dataOffsets.upperBound }

        // Uploads.
        let t = try f.tensor("b_bf16", shape: [3, 1, 3], on: cpu)
        #expect(t.shape == [3, 1, 3] && t.dtype == .float32)
        #expect(try t.doubles() == exact)
        let t64 = try f.tensor("a_f64", dtype: .float64, on: cpu)
        #expect(try t64.doubles() == f64)
        let t32 = try f.tensor("a_f64", on: cpu)
        #expect(try t32.floats() == f64.map { Float($0) })
        let idx = try f.tensor("i32", dtype: .int32, on: cpu)
        #expect(try idx.int32s() == ints.map { Int32($0) })
        let s = try f.tensor("s", on: cpu)
        #expect(s.shape == [1])
        #expect(try s.floats() == [7.5])
    }

    @Test("safetensors writer from tensors downloads them, in their own dtype or a given one")
    func safeTensorsFromTensors() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3], on: cpu)
        let b = try Tensor([0.1, 0.2], shape: [2], dtype: .float64, on: cpu)
        let c = try Tensor(indices: [3, 1, 4], shape: [3], on: cpu)
        let path = tempPath("tensors.safetensors")
        try SafeTensorsWriter.write(["a": a, "b": b, "c": c], metadata: ["k": "v"], to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(try f.entry("a").dtype == .F32)
        #expect(try f.entry("b").dtype == .F64)
        #expect(try f.entry("c").dtype == .I32)
        #expect(try f.floats("a") == [1, 2, 3, 4, 5, 6])
        #expect(try f.doubles("b") == [0.1, 0.2])
        #expect(try f.int32s("c") == [3, 1, 4])
        #expect(f.metadata == ["k": "v"])

        let half = tempPath("tensors-f16.safetensors")
        try SafeTensorsWriter.write(["a": a], dtype: .F16, to: half)
        let g = try SafeTensorsFile(path: half)
        #expect(try g.entry("a").dtype == .F16)
        #expect(try g.floats("a") == [1, 2, 3, 4, 5, 6])
    }

    @Test("F16 and BF16 round to nearest even, straight from the Double")
    func halfRounding() throws {
        let x: [Double] = [
            1 + 0x1p-11,            // F16 tie → even (1.0);        BF16 exact-ish below
            1 + 3 * 0x1p-11,        // F16 tie → even (1 + 2^-9)
            1 + 0x1p-11 + 0x1p-40,  // F16 just above the tie → up (through Float it would tie to 1.0)
            0.1, -0.0, 65519, 0x1p-25, 0x1p-25 + 0x1p-40, .infinity, -.infinity,
        ]
        let f16: [UInt16] = [0x3C00, 0x3C02, 0x3C01, 0x2E66, 0x8000, 0x7BFF, 0x0000, 0x0001, 0x7C00, 0xFC00]
        let y: [Double] = [
            1 + 0x1p-8,             // BF16 tie → even (1.0)
            1 + 3 * 0x1p-8,         // BF16 tie → even (1 + 2^-6)
            1 + 0x1p-8 + 0x1p-40,   // BF16 just above the tie → up (through Float it would tie to 1.0)
            0.1, -0.0, 3.39e38, 0x1p-134, 0x1p-134 + 0x1p-160, -1 - 0x1p-7 - 0x1p-8, .infinity,
        ]
        let bf16: [UInt16] = [0x3F80, 0x3F82, 0x3F81, 0x3DCD, 0x8000, 0x7F7F, 0x0000, 0x0001, 0xBF82, 0x7F80]
        let path = tempPath("rounding.safetensors")
        try SafeTensorsWriter.write([("h", [x.count], x, .F16), ("b", [y.count], y, .BF16),
                                     ("n", [2], [.nan, -.nan], .BF16), ("m", [1], [.nan], .F16)], to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(try bits16(f, "h") == f16)
        #expect(try bits16(f, "b") == bf16)
        for (name, expMask) in [("n", UInt16(0x7F80)), ("m", 0x7C00)] {
            for b in try bits16(f, name) { #expect(b & expMask == expMask && b & ~(expMask | 0x8000) != 0, "\(name): NaN bits \(b)") }
            #expect(try f.doubles(name).allSatisfy(\.isNaN))
        }
        // And back: each pattern widens exactly.
        #expect(try f.floats("h") == [1, 1 + 0x1p-9, 1 + 0x1p-10, Float(Float16(bitPattern: 0x2E66)), -0.0, 65504, 0, 0x1p-24, .infinity, -.infinity])
        #expect(try f.floats("b") == [1, 1 + 0x1p-6, 1 + 0x1p-7, Float(bitPattern: 0x3DCD_0000), -0.0, Float(bitPattern: 0x7F7F_0000),
                                      0, 0x1p-133, -1 - 0x1p-6, .infinity])
    }

    @Test("safetensors writer refuses what it cannot write faithfully")
    func safeTensorsWriterErrors() throws {
        let p = tempPath("bad-write.safetensors")
        expectAttribError([p, "'x'", "overflows F16", "65520", "65504"]) { try SafeTensorsWriter.write([("x", [2], [1, 65520], .F16)], to: p) }
        expectAttribError([p, "'x'", "overflows BF16"]) { try SafeTensorsWriter.write([("x", [1], [3.4e38], .BF16)], to: p) }
        expectAttribError([p, "'x'", "overflows F32"]) { try SafeTensorsWriter.write([("x", [1], [1e39], .F32)], to: p) }
        expectAttribError([p, "'x'", "0.5", "I32"]) { try SafeTensorsWriter.write([("x", [1], [0.5], .I32)], to: p) }
        expectAttribError([p, "'x'", "I32 range"]) { try SafeTensorsWriter.write([("x", [1], [3e9], .I32)], to: p) }
        expectAttribError([p, "'x'", "5 values", "[2, 3]", "6 elements"]) {
            try SafeTensorsWriter.write([("x", [2, 3], [1, 2, 3, 4, 5], .F32)], to: p)
        }
        expectAttribError([p, "'x'", "negative dimension -2"]) { try SafeTensorsWriter.write([("x", [-2], [], .F32)], to: p) }
        expectAttribError([p, "'x'", "given twice"]) { try SafeTensorsWriter.write([("x", [1], [1], .F32), ("x", [1], [2], .F64)], to: p) }
        expectAttribError([p, "'__metadata__'", "reserved"]) { try SafeTensorsWriter.write([("__metadata__", [1], [1], .F32)], to: p) }
        expectAttribError([p, "'x'", "cannot write dtype U8"]) { try SafeTensorsWriter.write([("x", [1], [1], .U8)], to: p) }
        let noDir = tempPath("no-such-dir/x.safetensors")
        expectAttribError([noDir, "cannot open for writing", "No such file"]) { try SafeTensorsWriter.write([("x", [1], [1], .F32)], to: noDir) }
    }

    // MARK: safetensors: files from the reference implementation

    @Test("reads files written by the Python safetensors package")
    func safeTensorsFromPython() throws {
        let f = try SafeTensorsFile(path: fixturePath("io/mixed.safetensors"))
        #expect(f.names == ["b_f64", "big_i64", "flags", "h_f16", "i16", "i8", "ids_i32", "scalar", "u8", "w_f32"])
        #expect(f.metadata == ["format": "np", "note": "tiny fixture"])
        #expect(try f.entry("w_f32").shape == [2, 3])
        #expect(try f.entry("w_f32").dtype == .F32)
        #expect(try f.floats("w_f32") == [-0.5, -0.25, 0, 0.25, 0.5, 0.75])
        #expect(try f.doubles("b_f64") == [0.1, 1e300, 0])
        #expect(try f.doubles("b_f64")[2].sign == .minus)
        #expect(try f.floats("b_f64") == [0.1, .infinity, -0.0])
        #expect(try f.entry("h_f16").dtype == .F16)
        #expect(try f.doubles("h_f16") == [0.5, -65504, 0x1p-24, Double(Float16(1.0 / 3.0))])
        #expect(try f.int32s("ids_i32") == [0, -1, 2147483647, 5])
        #expect(try f.doubles("big_i64") == [1, -2, 0x1p40])
        #expect(try f.doubles("u8") == [0, 7, 255])
        #expect(try f.doubles("i8") == [-128, 0, 127])
        #expect(try f.int32s("i16") == [-32768, 1, 32767])
        #expect(try f.doubles("flags") == [1, 0, 1])
        #expect(try f.entry("scalar").shape == [])
        #expect(try f.floats("scalar") == [2.5])
        let t = try f.tensor("ids_i32", shape: [2, 2], dtype: .int32, on: cpu)
        #expect(try t.int32s() == [0, -1, 2147483647, 5])

        let g = try SafeTensorsFile(path: fixturePath("io/bf16.safetensors"))
        #expect(g.names == ["x_bf16"] && g.metadata.isEmpty)
        #expect(try g.entry("x_bf16") == SafeTensorsEntry(name: "x_bf16", dtype: .BF16, shape: [2, 3], dataOffsets: 0..<12))
        #expect(try g.doubles("x_bf16") == [1, -2.5, 0.15625, Double(Float(bitPattern: 0x7F7F_0000)), 0x1p-133, -0.0])
        let bt = try g.tensor("x_bf16", shape: [2, 3], dtype: .float64, on: cpu)
        #expect(try bt.doubles() == (try g.doubles("x_bf16")))
    }

    @Test("a single-tensor file is byte-identical to the reference writer's")
    func safeTensorsBytesMatchReference() throws {
        let path = tempPath("bf16-mine.safetensors")
        let values: [Double] = [1, -2.5, 0.15625, Double(Float(bitPattern: 0x7F7F_0000)), 0x1p-133, -0.0]
        try SafeTensorsWriter.write([("x_bf16", [2, 3], values, .BF16)], to: path)
        #expect(readBytes(path) == readBytes(fixturePath("io/bf16.safetensors")))
    }

    // MARK: safetensors: malformed files

    @Test("malformed safetensors headers: each error names the file and the problem")
    func safeTensorsMalformed() throws {
        let ok = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let data8 = f32Bytes([1, 2])

        var p = tempPath("short.safetensors")
        writeBytes([1, 2, 3], to: p)
        expectAttribError([p, "3 bytes", "shorter than the 8-byte header length"]) { _ = try SafeTensorsFile(path: p) }
        p = tempPath("empty.safetensors")
        writeBytes([], to: p)
        expectAttribError([p, "0 bytes"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("long-header.safetensors", header: "{}", length: 500)
        expectAttribError([p, "header length 500", "larger than the 2 bytes"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("absurd-header.safetensors", header: "{}", length: 0x7FFF_FFFF_FFFF)
        expectAttribError([p, "header length 140737488355327", "limit of 100000000"]) { _ = try SafeTensorsFile(path: p) }
        p = tempPath("bad-utf8.safetensors")
        writeBytes(le(UInt64(4)) + [0x7B, 0xC3, 0x28, 0x7D], to: p)
        expectAttribError([p, "not valid UTF-8"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("not-json.safetensors", header: #"{"a": {"dtype": "F32",}"#)
        expectAttribError([p, "not valid JSON", "at byte"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("trailing.safetensors", header: #"{} x"#)
        expectAttribError([p, "not valid JSON", "after the value"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("array.safetensors", header: "[1, 2]")
        expectAttribError([p, "not a JSON object", "[1, 2]"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("dup.safetensors", header: #"{"a": \#(ok), "a": \#(ok)}"#, data: data8)
        expectAttribError([p, "duplicate key \"a\""]) { _ = try SafeTensorsFile(path: p) }

        func entryError(_ file: String, _ entry: String, data: [UInt8] = data8, _ fragments: [String]) {
            let p = rawSafeTensors(file, header: #"{"w": \#(entry)}"#, data: data)
            expectAttribError([p, "tensor 'w'"] + fragments) { _ = try SafeTensorsFile(path: p) }
        }
        entryError("entry-array.safetensors", "[1]", ["must be an object"])
        entryError("no-dtype.safetensors", #"{"shape":[2],"data_offsets":[0,8]}"#, [#"no "dtype""#])
        entryError("no-shape.safetensors", #"{"dtype":"F32","data_offsets":[0,8]}"#, [#"no "shape""#])
        entryError("no-offsets.safetensors", #"{"dtype":"F32","shape":[2]}"#, [#"no "data_offsets""#])
        entryError("dtype-int.safetensors", #"{"dtype":5,"shape":[2],"data_offsets":[0,8]}"#, [#""dtype" must be a string"#, "5"])
        entryError("dtype-unknown.safetensors", #"{"dtype":"F99","shape":[2],"data_offsets":[0,8]}"#, [#"unknown dtype "F99""#, "BF16"])
        entryError("shape-string.safetensors", #"{"dtype":"F32","shape":"2","data_offsets":[0,8]}"#, [#""shape" must be an array of integers"#, #""2""#])
        entryError("shape-float.safetensors", #"{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}"#, [#""shape" must be an array of integers"#])
        entryError("shape-neg.safetensors", #"{"dtype":"F32","shape":[-2, 3],"data_offsets":[0,8]}"#, ["negative dimension -2", "[-2, 3]"])
        entryError("offsets-one.safetensors", #"{"dtype":"F32","shape":[2],"data_offsets":[8]}"#, ["data_offsets", "two ascending", "[8]"])
        entryError("offsets-desc.safetensors", #"{"dtype":"F32","shape":[2],"data_offsets":[8,0]}"#, ["two ascending", "[8, 0]"])
        entryError("offsets-neg.safetensors", #"{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}"#, ["non-negative", "[-8, 0]"])
        entryError("offsets-huge.safetensors", #"{"dtype":"F32","shape":[2],"data_offsets":[0,1e30]}"#, ["two ascending", "1e+30"])
        entryError("offsets-outside.safetensors", #"{"dtype":"F32","shape":[2],"data_offsets":[4,12]}"#,
                   ["data_offsets [4, 12]", "outside the data section (8 bytes)"])
        entryError("nbytes.safetensors", #"{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#,
                   ["hold 8 bytes", "shape [3] of F32 needs 12"])
        entryError("nbytes-f16.safetensors", #"{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}"#,
                   ["hold 8 bytes", "shape [2, 3] of F16 needs 12"])
        entryError("overflow.safetensors", #"{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}"#,
                   ["[4294967296, 4294967296]", "overflows"])

        p = rawSafeTensors("meta.safetensors", header: #"{"__metadata__": {"n": 3}}"#)
        expectAttribError([p, "__metadata__", "'n'", "must be a string", "3"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("meta2.safetensors", header: #"{"__metadata__": "x"}"#)
        expectAttribError([p, "__metadata__", "object of strings"]) { _ = try SafeTensorsFile(path: p) }

        p = rawSafeTensors("overlap.safetensors",
                           header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                           data: f32Bytes([1, 2, 3]))
        expectAttribError([p, "'a'", "'b'", "0..<8", "4..<12", "overlap"]) { _ = try SafeTensorsFile(path: p) }

        let missing = tempPath("no-such-file.safetensors")
        expectAttribError([missing, "cannot open", "No such file"]) { _ = try SafeTensorsFile(path: missing) }
        expectAttribError([ioTempDir, "not a regular file"]) { _ = try SafeTensorsFile(path: ioTempDir) }
    }

    @Test("padding, escapes, unknown fields and zero-length tensors are accepted")
    func safeTensorsLenient() throws {
        // a zero-length tensor sits inside a, an unknown field is ignored, a name uses JSON
        // escapes, and the header ends in spaces.
        let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1]},"#
            + #""z":{"dtype":"I64","shape":[0,5],"data_offsets":[4,4]},"caf\u00e9 \"q\"":{"dtype":"U8","shape":[],"data_offsets":[12,13]}}      "#
        let p = rawSafeTensors("lenient.safetensors", header: header, data: f32Bytes([1, 2, 3]) + [200])
        let f = try SafeTensorsFile(path: p)
        #expect(f.names == ["a", "b", "café \"q\"", "z"])
        #expect(try f.floats("a") == [1, 2])
        #expect(try f.floats("b") == [3])
        #expect(try f.doubles("café \"q\"") == [200])
        #expect(try f.doubles("z") == [])
        expectAttribError([p, "'z'", "[0, 5]", "no elements"]) { _ = try f.tensor("z", on: cpu) }
    }

    @Test("the tensors must tile the data section, as the reference reader requires: holes, trailing bytes and a header length one byte short are refused")
    func safeTensorsTiling() throws {
        var p = rawSafeTensors("hole.safetensors",
                               header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#,
                               data: f32Bytes([1, 2, 99, 3]))
        expectAttribError([p, "bytes 8..<12", "belong to no tensor", "'b'"]) { _ = try SafeTensorsFile(path: p) }
        p = rawSafeTensors("trailing-data.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: f32Bytes([1, 2, 3]))
        expectAttribError([p, "12 bytes", "end at byte 8", "4 trailing bytes"]) { _ = try SafeTensorsFile(path: p) }
        // A real file whose header length is one byte short: the header ends inside its space
        // padding, so the data section starts a byte early. It was read as shifted floats.
        let good = tempPath("short-good.safetensors")
        try SafeTensorsWriter.write([("w", [2], [1, 2], .F32)], to: good)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let n = UInt64(bytes[0]) | UInt64(bytes[1]) << 8
        guard bytes[8 + Int(n) - 1] == 0x20 else { Issue.record("the writer pads no header; the case cannot be made"); return }
        bytes[0] = UInt8((n - 1) & 0xff); bytes[1] = UInt8((n - 1) >> 8)
        p = tempPath("short-by-one.safetensors")
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        expectAttribError([p, "1 trailing bytes"]) { _ = try SafeTensorsFile(path: p) }
    }

    @Test("weights: integer dtypes and non-finite values are refused where a model loads them, naming the tensor")
    func safeTensorsWeights() throws {
        let p = tempPath("weights.safetensors")
        try SafeTensorsWriter.write([("ok", [2], [1, 2], .F32), ("nan", [3], [1, .nan, 2], .F32), ("inf", [2], [.infinity, 1], .F64),
                                     ("ints", [2], [1, 2], .I32)], to: p)
        let f = try SafeTensorsFile(path: p)
        _ = try f.tensor("ok", on: cpu, weight: true)
        expectAttribError([p, "tensor 'nan'", "element 1 is nan", "must be finite"]) { _ = try f.tensor("nan", on: cpu, weight: true) }
        expectAttribError([p, "tensor 'inf'", "element 0 is inf"]) { _ = try f.tensor("inf", dtype: .float64, on: cpu, weight: true) }
        expectAttribError([p, "tensor 'ints'", "I32 is an integer type"]) { _ = try f.tensor("ints", on: cpu) }
        expectAttribError([p, "tensor 'nan'", "element 1 is nan"]) { _ = try f.weightDoubles("nan") }
        // Reading data that is not a weight keeps its values.
        #expect(try f.tensor("nan", on: cpu).doubles()[1].isNaN)
    }

    @Test("lookups: missing tensors, wrong shapes, dtypes that do not convert")
    func safeTensorsLookups() throws {
        let p = tempPath("lookup.safetensors")
        try SafeTensorsWriter.write([("w", [2, 3], [1, 2, 3, 4, 5, 6], .F32), ("big", [2], [1, 3e9], .I64),
                                     ("neg", [1], [-1], .I64)], to: p)
        let f = try SafeTensorsFile(path: p)
        expectAttribError([p, "no tensor named 'wq'", "'big', 'neg', 'w'"]) { _ = try f.entry("wq") }
        expectAttribError([p, "no tensor named 'x'"]) { _ = try f.doubles("x") }
        expectAttribError([p, "no tensor named 'x'"]) { _ = try f.tensor("x", on: cpu) }
        expectAttribError([p, "tensor 'w'", "shape [2, 3]", "expected [3, 2]"]) { _ = try f.tensor("w", shape: [3, 2], on: cpu) }
        expectAttribError([p, "tensor 'w'", "F32", "floating-point", "int32"]) { _ = try f.int32s("w") }
        expectAttribError([p, "tensor 'w'", "F32", "int32"]) { _ = try f.tensor("w", dtype: .int32, on: cpu) }
        expectAttribError([p, "tensor 'big'", "element 1", "3000000000", "does not fit in int32"]) { _ = try f.int32s("big") }
        #expect(try f.int32s("neg") == [-1])
        #expect(try f.floats("big") == [1, 3e9])

        // Many names: the message lists the first ten and counts the rest.
        let many = tempPath("many.safetensors")
        try SafeTensorsWriter.write((0..<15).map { ("t\($0 + 10)", [1], [Double($0)], SafeTensorsDType.F32) }, to: many)
        expectAttribError([many, "holds 15", "'t10'", "'t19'", "5 more"]) { _ = try SafeTensorsFile(path: many).entry("t99") }
    }

    @Test("multi-megabyte files are read through the mapping")
    func safeTensorsLarge() throws {
        let n = 1 << 20   // 1M elements: 4 MB of F32, 2 MB of BF16, 8 MB of F64
        let values = (0..<n).map { Double(($0 * 7919) % 65536) - 32768 }   // exact in F32 and F64
        let path = tempPath("large.safetensors")
        try SafeTensorsWriter.write([("big_f32", [1024, n / 1024], values, .F32), ("big_f64", [n], values, .F64),
                                     ("big_bf16", [n], values, .BF16)], to: path)
        defer { unlink(path) }
        let f = try SafeTensorsFile(path: path)
        #expect(try f.entry("big_f32").byteCount == 4 * n)
        let got = try f.floats("big_f32")
        #expect(got.count == n && got.elementsEqual(values.lazy.map { Float($0) }))
        #expect(try f.doubles("big_f64") == values)
        let bf = try f.floats("big_bf16")
        #expect(bf.count == n)
        // BF16 keeps 8 significant bits: rounding moves a value by at most 2^-8 of it.
        #expect(zip(bf, values).allSatisfy { abs(Double($0) - $1) <= abs($1) * 0x1p-8 })
        let t = try f.tensor("big_f32", shape: [1024, n / 1024], on: cpu)
        #expect(try t.floats() == got)
    }

    // MARK: NPY

    @Test("reads .npy files written by numpy")
    func npyFromNumpy() throws {
        var a = try NPY.read(fixturePath("io/f4_2x3.npy"))
        #expect(a.shape == [2, 3] && a.dtype == .float32)
        #expect(a.floats() == [-1, -0.5, 0, 0.5, 1, 1.5])
        a = try NPY.read(fixturePath("io/f8_3.npy"))
        #expect(a.shape == [3] && a.dtype == .float64 && a.doubles() == [0.1, -2, 1e300])
        a = try NPY.read(fixturePath("io/i4_2x2.npy"))
        #expect(a.shape == [2, 2])
        #expect(a.dtype == .int32)
        #expect(try a.int32s() == [1, -2, 3, 2147483647])
        a = try NPY.read(fixturePath("io/i8_4.npy"))
        #expect(a.dtype == .int64 && a.doubles() == [0, -5, 0x1p40, 7])
        expectAttribError([fixturePath("io/i8_4.npy"), "element 2", "1099511627776", "does not fit in int32"]) { _ = try a.int32s() }
        a = try NPY.read(fixturePath("io/u1_5.npy"))
        #expect(a.dtype == .uint8)
        #expect(try a.int32s() == [0, 1, 2, 254, 255])
        a = try NPY.read(fixturePath("io/f2_3.npy"))
        #expect(a.dtype == .float16 && a.floats() == [0.5, -65504, 0x1p-24])
        a = try NPY.read(fixturePath("io/f8_scalar.npy"))
        #expect(a.shape == [] && a.count == 1 && a.doubles() == [3.25])
        a = try NPY.read(fixturePath("io/f4_empty.npy"))
        #expect(a.shape == [0, 3] && a.floats() == [])
        for v in [2, 3] {
            a = try NPY.read(fixturePath("io/f4_v\(v).npy"))
            #expect(a.shape == [3] && a.floats() == [1, 2, 3], "version \(v).0")
        }
        let t = try NPY.tensor(fixturePath("io/f4_2x3.npy"), shape: [2, 3], dtype: .float64, on: cpu)
        #expect(t.dtype == .float64)
        #expect(try t.doubles() == [-1, -0.5, 0, 0.5, 1, 1.5])
        let s = try NPY.tensor(fixturePath("io/f8_scalar.npy"), on: cpu)
        #expect(s.shape == [1])
        #expect(try s.floats() == [3.25])
        let i = try NPY.tensor(fixturePath("io/i4_2x2.npy"), dtype: .int32, on: cpu)
        #expect(try i.int32s() == [1, -2, 3, 2147483647])
    }

    @Test("written .npy files are byte-identical to numpy's")
    func npyBytesMatchNumpy() throws {
        let cases: [(String, () throws -> Void)] = [
            ("f4_2x3.npy", { try NPY.write([-1, -0.5, 0, 0.5, 1, 1.5] as [Float], shape: [2, 3], to: tempPath("f4_2x3.npy")) }),
            ("f8_3.npy", { try NPY.write([0.1, -2, 1e300] as [Double], shape: [3], to: tempPath("f8_3.npy")) }),
            ("i4_2x2.npy", { try NPY.write([1, -2, 3, 2147483647] as [Int32], shape: [2, 2], to: tempPath("i4_2x2.npy")) }),
            ("f8_scalar.npy", { try NPY.write([3.25] as [Double], shape: [], to: tempPath("f8_scalar.npy")) }),
        ]
        for (name, write) in cases {
            try write()
            #expect(readBytes(tempPath(name)) == readBytes(fixturePath("io/" + name)), "\(name)")
        }
    }

    @Test(".npy round trips of every writable dtype and overload")
    func npyRoundTrip() throws {
        let d: [Double] = [0.1, -1e300, .pi, -0.0, .leastNonzeroMagnitude, .infinity]
        var p = tempPath("rt-f8.npy")
        try NPY.write(d, shape: [2, 3], to: p)
        var a = try NPY.read(p)
        #expect(a.shape == [2, 3] && a.dtype == .float64 && a.doubles() == d && a.doubles()[3].sign == .minus)
        p = tempPath("rt-f4-from-d.npy")
        try NPY.write([0.1, 2.5], shape: [2], dtype: .float32, to: p)
        a = try NPY.read(p)
        #expect(a.dtype == .float32 && a.floats() == [0.1, 2.5])
        p = tempPath("rt-i4-from-d.npy")
        try NPY.write([3, -4] as [Double], shape: [1, 2], dtype: .int32, to: p)
        #expect(try NPY.read(p).int32s() == [3, -4])
        p = tempPath("rt-f8-from-f.npy")
        try NPY.write([Float(0.1), 7], shape: [2], dtype: .float64, to: p)
        #expect(try NPY.read(p).doubles() == [Double(Float(0.1)), 7])
        p = tempPath("rt-f8-from-i.npy")
        try NPY.write([Int32.min, Int32.max], shape: [2], dtype: .float64, to: p)
        #expect(try NPY.read(p).doubles() == [-2147483648, 2147483647])
        p = tempPath("rt-4d.npy")
        let v = (0..<120).map { Float($0) * 0.25 }
        try NPY.write(v, shape: [2, 3, 4, 5], to: p)
        a = try NPY.read(p)
        #expect(a.shape == [2, 3, 4, 5] && a.floats() == v)
        p = tempPath("rt-empty.npy")
        try NPY.write([] as [Float], shape: [0], to: p)
        #expect(try NPY.read(p).shape == [0])
        expectAttribError([p, "[0]", "no elements"]) { _ = try NPY.tensor(p, on: cpu) }
        // From a tensor, in its own dtype.
        let t = try Tensor([1.5, -2.25, 3, 4], shape: [2, 2], dtype: .float64, on: cpu)
        p = tempPath("rt-tensor.npy")
        try NPY.write(t, to: p)
        a = try NPY.read(p)
        #expect(a.dtype == .float64 && a.shape == [2, 2] && a.doubles() == [1.5, -2.25, 3, 4])
        let u = try NPY.tensor(p, shape: [2, 2], dtype: .float64, on: cpu)
        #expect(try u.doubles() == [1.5, -2.25, 3, 4])
        // A long shape makes a header that still lands the data on a multiple of 64.
        p = tempPath("rt-rank.npy")
        try NPY.write([1] as [Float], shape: Array(repeating: 1, count: 30), to: p)
        #expect(try NPY.read(p).shape.count == 30)
        #expect((readBytes(p).count - 4) % 64 == 0)
    }

    @Test("NumPy header variants: version 2.0 and 3.0, double quotes, any key order, no trailing comma")
    func npyHeaderVariants() throws {
        var p = rawNPY("v2.npy", version: (2, 0), header: #"{"shape": (2,), "fortran_order": False, "descr": "<f8"}"#,
                       data: [1.0, 2.0].flatMap { le($0.bitPattern) })
        #expect(try NPY.read(p).doubles() == [1, 2])
        p = rawNPY("v3.npy", version: (3, 0), header: "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }",
                   data: le(Int32(5)) + le(Int32(-6)))
        #expect(try NPY.read(p).int32s() == [5, -6])
        p = rawNPY("u1-lt.npy", header: "{'descr': '<u1', 'fortran_order': False, 'shape': (2,), }", data: [9, 8])
        #expect(try NPY.read(p).dtype == .uint8)
        // Extra bytes after the data (another array appended to the file) are ignored.
        p = rawNPY("appended.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: f32Bytes([4, 5]))
        #expect(try NPY.read(p).floats() == [4])
    }

    @Test("malformed .npy files: each error names the file and the problem")
    func npyMalformed() throws {
        let fixture = fixturePath("io/f4_fortran.npy")
        expectAttribError([fixture, "fortran_order is True", "C order"]) { _ = try NPY.read(fixture) }
        let big = fixturePath("io/f4_bigendian.npy")
        expectAttribError([big, "unsupported dtype '>f4'", "big-endian"]) { _ = try NPY.read(big) }

        var p = tempPath("tiny.npy")
        writeBytes([0x93, 0x4E], to: p)
        expectAttribError([p, "2 bytes", "shorter than the 10-byte preamble"]) { _ = try NPY.read(p) }
        p = tempPath("magic.npy")
        writeBytes(Array("PK\u{3}\u{4}NUMPY\u{1}\u{0}xx".utf8), to: p)
        expectAttribError([p, "magic"]) { _ = try NPY.read(p) }
        p = rawNPY("version.npy", version: (4, 0), header: "{}")
        expectAttribError([p, "version 4.0", "1.0, 2.0 and 3.0"]) { _ = try NPY.read(p) }
        p = tempPath("hlen.npy")
        writeBytes([0x93] + Array("NUMPY".utf8) + [1, 0] + le(UInt16(1000)) + Array("{'descr'".utf8), to: p)
        expectAttribError([p, "header length 1000", "larger than the 8 bytes"]) { _ = try NPY.read(p) }
        p = rawNPY("not-dict.npy", header: "[1, 2]")
        expectAttribError([p, "not a Python dict literal", "expected '{'"]) { _ = try NPY.read(p) }
        p = rawNPY("garbage.npy", header: "{'descr': <f4}")
        expectAttribError([p, "not a Python dict literal", "unexpected '<'"]) { _ = try NPY.read(p) }
        p = rawNPY("no-shape.npy", header: "{'descr': '<f4', 'fortran_order': False}")
        expectAttribError([p, "no 'shape'"]) { _ = try NPY.read(p) }
        p = rawNPY("no-descr.npy", header: "{'shape': (1,), 'fortran_order': False}")
        expectAttribError([p, "no 'descr'"]) { _ = try NPY.read(p) }
        p = rawNPY("extra-key.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", data: f32Bytes([1]))
        expectAttribError([p, "unexpected key 'x'"]) { _ = try NPY.read(p) }
        p = rawNPY("structured.npy", header: "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }")
        expectAttribError([p, "structured dtypes are not supported"]) { _ = try NPY.read(p) }
        p = rawNPY("object.npy", header: "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
        expectAttribError([p, "unsupported dtype '|O'"]) { _ = try NPY.read(p) }
        p = rawNPY("fortran-type.npy", header: "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }")
        expectAttribError([p, "'fortran_order' must be True or False", "0"]) { _ = try NPY.read(p) }
        p = rawNPY("shape-list.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': ('a',), }")
        expectAttribError([p, "'shape' must be a tuple of integers", "('a',)"]) { _ = try NPY.read(p) }
        p = rawNPY("shape-neg.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }")
        expectAttribError([p, "negative dimension -1", "[2, -1]"]) { _ = try NPY.read(p) }
        p = rawNPY("truncated.npy", header: "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data: [UInt8](repeating: 0, count: 40))
        expectAttribError([p, "truncated", "[2, 3]", "'<f8'", "needs 48 bytes", "holds 40"]) { _ = try NPY.read(p) }
        p = rawNPY("overflow.npy", header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }")
        expectAttribError([p, "overflows"]) { _ = try NPY.read(p) }
        p = rawNPY("v3-utf8.npy", version: (3, 0), header: "{'descr': '\u{FF}', 'fortran_order': False, 'shape': (1,), }")
        expectAttribError([p, "unsupported dtype 'ÿ'"]) { _ = try NPY.read(p) }
        p = tempPath("v3-bad-utf8.npy")
        writeBytes([0x93] + Array("NUMPY".utf8) + [3, 0] + le(UInt32(3)) + [0x7B, 0xFF, 0x7D], to: p)
        expectAttribError([p, "not valid UTF-8"]) { _ = try NPY.read(p) }
        let missing = tempPath("missing.npy")
        expectAttribError([missing, "No such file"]) { _ = try NPY.read(missing) }

        // Lookups and conversions.
        let f4 = fixturePath("io/f4_2x3.npy")
        expectAttribError([f4, "shape [2, 3]", "expected [6]"]) { _ = try NPY.tensor(f4, shape: [6], on: cpu) }
        expectAttribError([f4, "'<f4'", "floating-point", "int32"]) { _ = try NPY.read(f4).int32s() }
        expectAttribError([f4, "floating-point"]) { _ = try NPY.tensor(f4, dtype: .int32, on: cpu) }
    }

    @Test(".npy writer errors name the file and the problem")
    func npyWriterErrors() throws {
        let p = tempPath("bad.npy")
        expectAttribError([p, "5 values", "[2, 3]", "6 elements"]) { try NPY.write([1, 2, 3, 4, 5] as [Float], shape: [2, 3], to: p) }
        expectAttribError([p, "negative dimension -1"]) { try NPY.write([] as [Float], shape: [-1], to: p) }
        expectAttribError([p, "cannot write dtype '<f2'", "<f4, <f8, <i4"]) { try NPY.write([1] as [Float], shape: [1], dtype: .float16, to: p) }
        expectAttribError([p, "element 1", "2.5", "int32"]) { try NPY.write([1, 2.5] as [Double], shape: [2], dtype: .int32, to: p) }
        let noDir = tempPath("nope/x.npy")
        expectAttribError([noDir, "No such file"]) { try NPY.write([1] as [Float], shape: [1], to: noDir) }
    }
}
