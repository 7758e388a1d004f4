import Attrib
import Foundation
import Glibc
import Testing

// GGUFFile against files gguf-py wrote (Tests/Fixtures/gguf/make_gguf_fixtures.py) and against
// malformed ones built byte by byte here.

/// A fresh directory for the files these tests write (one per test process).
private let ggufTempDir: String = {
    var template = Array("/tmp/attrib-gguf-tests-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}()

private func ggufFixture(_ name: String) -> String { fixturePath("gguf/" + name) }

private func readAll(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

/// Writes `bytes` to a temporary file named `name` and opens it.
@discardableResult
private func openGGUF(_ bytes: [UInt8], _ name: String) throws -> GGUFFile {
    let path = ggufTempDir + "/" + name + ".gguf"
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return try GGUFFile(path: path)
}

/// GGUF bytes, written field by field (for files no writer would produce).
private struct GGUFBytes {
    var b: [UInt8] = []

    mutating func u8(_ v: UInt8) { b.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); b += Array(s.utf8) }

    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        b += Array("GGUF".utf8); u32(version); u64(tensors); u64(kvs)
    }

    mutating func kvString(_ key: String, _ value: String) { str(key); u32(8); str(value) }
    mutating func kvU32(_ key: String, _ value: UInt32) { str(key); u32(4); u32(value) }

    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0) {
        str(name); u32(UInt32(dims.count)); dims.forEach { u64($0) }; u32(type); u64(offset)
    }

    mutating func pad(_ alignment: Int = 32) { while b.count % alignment != 0 { b.append(0) } }
    mutating func floats(_ v: [Float]) { v.forEach { u32($0.bitPattern) } }
}

/// A one-tensor file: `t` = [1, 2, 3, 4] as F32, then `extra` applied to the tensor info.
private func oneTensor(dims: [UInt64] = [4], type: UInt32 = 0, offset: UInt64 = 0, data: [Float] = [1, 2, 3, 4]) -> [UInt8] {
    var g = GGUFBytes()
    g.header(tensors: 1, kvs: 1)
    g.kvString("general.architecture", "test")
    g.tensor("t", dims: dims, type: type, offset: offset)
    g.pad()
    g.floats(data)
    return g.b
}

@Suite struct GGUFTests {
    let types: GGUFFile
    let expected: SafeTensorsFile

    init() throws {
        types = try GGUFFile(path: ggufFixture("types.gguf"))
        expected = try SafeTensorsFile(path: ggufFixture("types.expected.safetensors"))
    }

    // MARK: Metadata

    @Test func everyValueType() throws {
        let m = types.metadata
        #expect(types.version == 3)
        #expect(m["general.architecture"]?.string == "fixture")
        #expect(m["test.u8"] == .uint8(200) && m["test.u8"]?.int == 200)
        #expect(m["test.i8"] == .int8(-100))
        #expect(m["test.u16"] == .uint16(60000))
        #expect(m["test.i16"] == .int16(-30000))
        #expect(m["test.u32"] == .uint32(4_000_000_000) && m["test.u32"]?.int == 4_000_000_000)
        #expect(m["test.i32"] == .int32(-2_000_000_000))
        // 2^63 + 5 does not fit in Int: int is nil, the value itself is kept.
        #expect(m["test.u64"] == .uint64(1 << 63 + 5) && m["test.u64"]?.int == nil)
        #expect(m["test.i64"] == .int64(-(1 << 62)))
        #expect(m["test.f32"] == .float32(1.5) && m["test.f32"]?.double == 1.5)
        #expect(m["test.f64"] == .float64(3.141592653589793))
        #expect(m["test.u32"]?.double == 4e9)
        #expect(m["test.bool"]?.bool == true && m["test.bool_false"]?.bool == false)
        #expect(m["test.string"]?.string == "héllo ✓")
        #expect(m["test.empty_string"]?.string == "")
        #expect(m["test.strings"]?.strings == ["a", "bc", "", "naïve ✓"])
        #expect(m["test.ints"]?.array == .int32([1, -2, 3]) && m["test.ints"]?.ints == [1, -2, 3])
        #expect(m["test.u8s"]?.array == .uint8([0, 7, 255]))
        #expect(m["test.i64s"]?.ints == [-(1 << 40), 0, 1 << 40])
        #expect(m["test.u64s"]?.array == .uint64([.max]) && m["test.u64s"]?.ints == nil)
        #expect(m["test.floats"]?.floats == [0.5, -1.25, 3.0])
        #expect(m["test.f64s"]?.doubles == [0.1, 1e300])
        #expect(m["test.bools"]?.array == .bool([true, false, true]))
        #expect(m["test.nested"]?.array == .array([.int32([1, 2]), .int32([3])]))
        #expect(m["test.nested_mixed"]?.array == .array([.string(["x", "y"]), .float32([2.5])]))
        #expect(m["test.nested"]?.array?[0].ints == [1, 2])
        // Accessors of the wrong kind are nil, not a conversion.
        #expect(m["test.string"]?.int == nil && m["test.u8"]?.string == nil && m["test.ints"]?.strings == nil)
        #expect(types.metadataKeys.first == "general.architecture" && types.metadataKeys.last == "test.nested_mixed")
        #expect(types.metadataKeys.count == m.count)
        #expect(types.alignment == 32 && types.dataStart % 32 == 0)
    }

    // MARK: Tensors

    @Test func tensorInfos() throws {
        #expect(types.tensors.map(\.name) == ["f32", "f32_3d", "f32_1d", "f16", "bf16", "q8_0", "q4_0", "q4_1",
                                              "q8_0_3d", "q4_k", "q6_k", "blk.0.ffn_up.weight"])
        let t = try types.tensorInfo("f32_3d")
        #expect(t.dims == [4, 3, 2] && t.shape == [2, 3, 4] && t.type == .F32)
        #expect(t.rowLength == 4 && t.rowCount == 6 && t.elementCount == 24 && t.byteCount == 96)
        let q = try types.tensorInfo("q4_k")
        #expect(q.dims == [512, 2] && q.shape == [2, 512] && q.type == .Q4_K && q.byteCount == 4 * 144 && q.rowBytes == 2 * 144)
        #expect(try types.tensorInfo("f32_1d").shape == [7])
        #expect(types.tensors.allSatisfy { $0.offset % 32 == 0 })
        #expect(types.contains("q6_k") && !types.contains("q6_K"))
        expectAttribError(["no tensor named 'nope'", "'f32'"]) { _ = try types.tensorInfo("nope") }
    }

    /// Every supported type against gguf-py's dequantisation of the same bytes. Exact equality:
    /// F32 is copied, F16 and BF16 widen exactly, and each quantised type multiplies in float32
    /// in the order gguf-py's numpy code does (and ggml's C), with no fused multiply-add, so
    /// every float is bit for bit the same.
    @Test(arguments: ["f32", "f32_3d", "f32_1d", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q8_0_3d", "q4_k", "q6_k"])
    func dequantisesAsGGUFPy(_ name: String) throws {
        let t = try types.tensorInfo(name)
        let want = try expected.entry(name)
        #expect(t.shape == want.shape, "\(name): shape \(t.shape), gguf-py's \(want.shape)")
        let got = try types.floats(name), ref = try expected.floats(name)
        #expect(got.count == ref.count)
        let differing = zip(got, ref).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(differing.isEmpty, "\(name) (\(t.type)): \(differing.count) values differ, first \(differing.prefix(3).map { "[\($0.offset)] \($0.element.0) vs \($0.element.1)" })")
    }

    @Test func rowRanges() throws {
        for name in ["f16", "q8_0_3d", "q4_k", "q6_k", "q4_1"] {
            let t = try types.tensorInfo(name)
            let all = try types.floats(name)
            for lo in 0..<t.rowCount {
                for hi in lo...t.rowCount {
                    let part = try types.floats(name, rows: lo..<hi)
                    #expect(part == Array(all[(lo * t.rowLength)..<(hi * t.rowLength)]), "\(name) rows \(lo)..<\(hi)")
                }
            }
        }
        expectAttribError(["'q6_k'", "rows 2..<4 are out of range", "3 rows of 256"]) { _ = try types.floats("q6_k", rows: 2..<4) }
        expectAttribError(["out of range"]) { _ = try types.floats("q6_k", rows: -1..<1) }
    }

    @Test func unsupportedTypeIsNamed() throws {
        let t = try types.tensorInfo("blk.0.ffn_up.weight")
        #expect(t.type == .Q5_K && t.byteCount == 176)
        expectAttribError(["tensor 'blk.0.ffn_up.weight' has type Q5_K, which Attrib does not dequantise; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K"]) {
            _ = try types.floats("blk.0.ffn_up.weight")
        }
        // Its raw bytes are still there for whoever can read them.
        #expect(try types.withUnsafeBytes("blk.0.ffn_up.weight") { $0.count } == 176)
    }

    @Test func customAlignment() throws {
        let f = try GGUFFile(path: ggufFixture("aligned64.gguf"))
        #expect(f.alignment == 64 && f.metadata["general.alignment"] == .uint32(64))
        #expect(f.dataStart % 64 == 0 && f.tensors.map(\.offset) == [0, 64])
        #expect(try f.floats("a") == [0, 1, 2] && f.floats("b") == [0, -1, -2, -3, -4])
    }

    @Test func typeNames() {
        #expect(GGMLType(rawValue: 14)?.name == "Q6_K" && GGMLType(rawValue: 30) == .BF16 && GGMLType(rawValue: 99) == nil)
        #expect(GGMLType.Q4_K.layout! == (256, 144) && GGMLType.Q8_0.layout! == (32, 34) && GGMLType.Q4_0_4_4.layout == nil)
    }

    // MARK: Malformed files: each an AttribError naming the problem, none a crash

    @Test func truncatedFiles() throws {
        let full = readAll(ggufFixture("types.gguf"))
        expectAttribError(["not a GGUF file", "2 bytes"]) { try openGGUF(Array(full.prefix(2)), "cut2") }
        expectAttribError(["truncated file", "tensor count"]) { try openGGUF(Array(full.prefix(12)), "cut-header") }
        // Cut inside the last metadata value: the message names its key.
        let key = Array("test.nested_mixed".utf8)
        let at = (0...(full.count - key.count)).first { Array(full[$0..<($0 + key.count)]) == key }!
        expectAttribError(["truncated file", "'test.nested_mixed'"]) { try openGGUF(Array(full.prefix(at + key.count + 20)), "cut-kv") }
        // Cut inside the tensor infos.
        let name = Array("q4_k".utf8)
        let ti = (0...(full.count - name.count)).first { Array(full[$0..<($0 + name.count)]) == name }!
        expectAttribError(["truncated file", "tensor 'q4_k'"]) { try openGGUF(Array(full.prefix(ti + name.count + 6)), "cut-info") }
        // Cut inside a tensor's data: that tensor is named.
        let q6 = try types.tensorInfo("q6_k")
        expectAttribError(["tensor 'q6_k'", "past the end of the file", "truncated"]) {
            try openGGUF(Array(full.prefix(types.dataStart + q6.offset + 10)), "cut-data")
        }
    }

    /// Every prefix of a valid file that cuts off part of a tensor (or anything before the data)
    /// is refused with an AttribError, and none crashes; cutting only the padding after the last
    /// tensor leaves a readable file.
    @Test func everyPrefixIsRefused() throws {
        let full = readAll(ggufFixture("types.gguf"))
        let end = types.tensors.map { types.dataStart + $0.offset + $0.byteCount }.max()!
        #expect(end < full.count)
        let path = ggufTempDir + "/prefix.gguf"
        var wrong: [Int] = []
        FileManager.default.createFile(atPath: path, contents: Data(full))
        // Longest first, each cut by truncate(2): one system call per prefix, not a file write.
        for n in (0...full.count).reversed() {
            #expect(truncate(path, off_t(n)) == 0)
            do {
                _ = try GGUFFile(path: path)
                if n < end { wrong.append(n) }
            } catch is AttribError {
                if n >= end { wrong.append(n) }
            } catch { wrong.append(n) }
        }
        #expect(wrong.isEmpty, "prefixes opened (or not) wrongly: \(wrong.prefix(10))")
    }

    /// Bytes flipped at random all over the file: opening and reading every tensor either works
    /// or throws an AttribError. A deterministic stand-in for the fuzz target.
    @Test func flippedBytesNeverCrash() throws {
        let full = readAll(ggufFixture("types.gguf"))
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        var opened = 0
        for trial in 0..<400 {
            var b = full
            for _ in 0..<(1 + next() % 4) {
                // Mostly the header and infos (where structure lives), sometimes anywhere.
                let i = next() % (trial % 3 == 0 ? b.count : 1536)
                b[i] = UInt8(truncatingIfNeeded: next())
            }
            do {
                let f = try openGGUF(b, "flip")
                opened += 1
                for t in f.tensors { _ = try? f.floats(t.name) }
            } catch is AttribError {} catch { Issue.record("trial \(trial): \(error)") }
        }
        #expect(opened > 0)
    }

    @Test func badHeaders() throws {
        var b = readAll(ggufFixture("types.gguf"))
        b[0...3] = [0x47, 0x47, 0x4D, 0x4C]
        expectAttribError(["not a GGUF file", "47 47 4D 4C"]) { try openGGUF(b, "magic") }
        for (v, fragment) in [(UInt32(1), "GGUF version 1 is not supported"), (7, "unknown GGUF version 7"),
                              (UInt32(3).byteSwapped, "big-endian")] {
            var g = GGUFBytes(); g.header(version: v, tensors: 0, kvs: 0)
            expectAttribError([fragment]) { try openGGUF(g.b, "version") }
        }
        var ok = GGUFBytes(); ok.header(version: 2, tensors: 0, kvs: 0)
        #expect(try openGGUF(ok.b, "v2").tensors.isEmpty)
        // Absurd counts fail at once, without a loop or an allocation their size.
        var many = GGUFBytes(); many.header(tensors: 1 << 60, kvs: 0)
        expectAttribError(["declares 1152921504606846976 tensors"]) { try openGGUF(many.b, "tensors") }
        var kvs = GGUFBytes(); kvs.header(tensors: 0, kvs: .max)
        expectAttribError(["declares 18446744073709551615 metadata entries"]) { try openGGUF(kvs.b, "kvs") }
    }

    @Test func badMetadata() throws {
        func file(_ body: (inout GGUFBytes) -> Void, kvs: UInt64 = 1) -> [UInt8] {
            var g = GGUFBytes(); g.header(tensors: 0, kvs: kvs); body(&g); g.b += [UInt8](repeating: 0, count: 16); return g.b
        }
        // A string length past the end of the file.
        expectAttribError(["metadata key 'k'", "string length 1000 runs past the end"]) {
            try openGGUF(file { $0.str("k"); $0.u32(8); $0.u64(1000); $0.b += Array("abc".utf8) }, "strlen")
        }
        expectAttribError(["key of metadata entry 0", "string length 9223372036854775808"]) {
            try openGGUF(file { $0.u64(1 << 63) }, "keylen")
        }
        // Arrays whose counts the file cannot hold: refused before anything is reserved for them.
        expectAttribError(["metadata key 'tokens'", "array of 1152921504606846976 string values"]) {
            try openGGUF(file { $0.str("tokens"); $0.u32(9); $0.u32(8); $0.u64(1 << 60) }, "array")
        }
        expectAttribError(["metadata key 'u64s'", "array of 18446744073709551615 uint64 values"]) {
            try openGGUF(file { $0.str("u64s"); $0.u32(9); $0.u32(10); $0.u64(.max) }, "array64")
        }
        expectAttribError(["metadata key 'k'", "unknown value type 13"]) { try openGGUF(file { $0.str("k"); $0.u32(13) }, "vtype") }
        expectAttribError(["'k'", "array element type", "unknown value type 99"]) {
            try openGGUF(file { $0.str("k"); $0.u32(9); $0.u32(99); $0.u64(1) }, "etype")
        }
        expectAttribError(["metadata key 'k'", "bool byte 2"]) { try openGGUF(file { $0.str("k"); $0.u32(7); $0.u8(2) }, "bool") }
        expectAttribError(["metadata key 'a' appears twice"]) {
            try openGGUF(file({ $0.kvString("a", "x"); $0.kvString("a", "y") }, kvs: 2), "dupkey")
        }
        expectAttribError(["not valid UTF-8"]) { try openGGUF(file { $0.u64(2); $0.b += [0xC3, 0x28]; $0.u32(0); $0.u8(1) }, "utf8") }
        // Arrays nested past the cap: an error, not a deep recursion.
        expectAttribError(["metadata key 'deep'", "nested deeper than 8"]) {
            try openGGUF(file { g in g.str("deep"); g.u32(9); for _ in 0..<20 { g.u32(9); g.u64(1) }; g.u32(0); g.u64(0) }, "deep")
        }
        expectAttribError(["'general.alignment' is 3, not a power of two"]) { try openGGUF(file { $0.kvU32("general.alignment", 3) }, "align3") }
        expectAttribError(["'general.alignment' must be a uint32"]) {
            try openGGUF(file { $0.str("general.alignment"); $0.u32(5); $0.u32(32) }, "aligntype")
        }
    }

    @Test func badTensorInfos() throws {
        #expect(try openGGUF(oneTensor(), "ok").floats("t") == [1, 2, 3, 4])
        expectAttribError(["tensor 't' has unknown ggml type id 99"]) { try openGGUF(oneTensor(type: 99), "typeid") }
        expectAttribError(["tensor 't' has type Q4_0_4_4 (id 31), which ggml removed"]) { try openGGUF(oneTensor(type: 31), "removed") }
        expectAttribError(["tensor 't'", "data offset 4 is not a multiple of the alignment 32"]) { try openGGUF(oneTensor(offset: 4), "misaligned") }
        expectAttribError(["tensor 't'", "at data offset 32", "past the end of the file"]) { try openGGUF(oneTensor(offset: 32), "beyond") }
        expectAttribError(["tensor 't'", "past the end of the file"]) { try openGGUF(oneTensor(offset: UInt64.max - 31), "huge-offset") }
        expectAttribError(["tensor 't'", "past the end of the file"]) { try openGGUF(oneTensor(dims: [1 << 40]), "huge-dims") }
        expectAttribError(["tensor 't'", "overflows"]) { try openGGUF(oneTensor(dims: [1 << 40, 1 << 40]), "overflow") }
        expectAttribError(["tensor 't'", "dimension 0 = 18446744073709551615"]) { try openGGUF(oneTensor(dims: [.max]), "dim64") }
        expectAttribError(["tensor 't' has 5 dimensions", "at most 4"]) { try openGGUF(oneTensor(dims: [1, 1, 1, 1, 4]), "dims5") }
        expectAttribError(["tensor 't'", "row length 4", "not a multiple of Q8_0's block of 32"]) { try openGGUF(oneTensor(type: 8), "block") }
        // A scalar (no dims) and an empty tensor are fine.
        #expect(try openGGUF(oneTensor(dims: []), "scalar").floats("t") == [1])
        #expect(try openGGUF(oneTensor(dims: [0, 3]), "empty").floats("t") == [])
        // An empty tensor in a file that ends with its info (no padding, no data section).
        var bare = GGUFBytes(); bare.header(tensors: 1, kvs: 0); bare.tensor("e", dims: [0])
        #expect(bare.b.count % 32 != 0)
        let f = try openGGUF(bare.b, "bare")
        #expect(try f.floats("e") == [] && f.withUnsafeBytes("e") { $0.count } == 0 && f.dataStart > bare.b.count)

        var dup = GGUFBytes(); dup.header(tensors: 2, kvs: 0)
        dup.tensor("t", dims: [1]); dup.tensor("t", dims: [1], offset: 32); dup.pad(); dup.b += [UInt8](repeating: 0, count: 64)
        expectAttribError(["tensor name 't' appears twice"]) { try openGGUF(dup.b, "duptensor") }
        var overlap = GGUFBytes(); overlap.header(tensors: 2, kvs: 0)
        overlap.tensor("a", dims: [16]); overlap.tensor("b", dims: [4], offset: 32); overlap.pad(); overlap.b += [UInt8](repeating: 0, count: 64)
        expectAttribError(["tensors 'a'", "and 'b'", "overlap"]) { try openGGUF(overlap.b, "overlap") }
    }

    // MARK: A real model (only when ATTRIB_SMOLLM2_GGUF names SmolLM2-135M-Instruct.Q4_1.gguf)

    /// Rows of SmolLM2's tensors (Q8_0 embedding, Q4_1 projections, F32 norm) against gguf-py's
    /// dequantisation of them; exact for the reason given at dequantisesAsGGUFPy.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ATTRIB_SMOLLM2_GGUF"].map { !$0.isEmpty } ?? false))
    func smolLM2Slices() throws {
        let f = try GGUFFile(path: ProcessInfo.processInfo.environment["ATTRIB_SMOLLM2_GGUF"]!)
        #expect(f.metadata["general.architecture"]?.string == "llama")
        #expect(f.metadata["tokenizer.ggml.tokens"]?.strings?.count == 49152)
        #expect(try f.tensorInfo("token_embd.weight").shape == [49152, 576])
        #expect(f.tensors.count == 272)
        let ref = try SafeTensorsFile(path: ggufFixture("smollm2_slices.safetensors"))
        for key in ref.names {
            let parts = key.split(separator: ":")
            let (name, lo, hi) = (String(parts[0]), Int(parts[1])!, Int(parts[2])!)
            #expect(try f.tensorInfo(name).type.name == String(parts[3]))
            let got = try f.floats(name, rows: lo..<hi), want = try ref.floats(key)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(key)")
        }
    }
}
