import Attrib
import Foundation
import Testing

/// What the attribution commands print and write (issue 24): the target of each input, heatmap
/// titles, colour bars, scale and count, --steps checks, evaluate's curves, the progress line
/// in inputs, and `attrib --version`.
@Suite(.serialized) struct AttributionOutputTests {
    static let inputs = "Models/digits-data/test_inputs.npy"

    @Test("the target of every input is in summary.json, targets.npy and the printed table; --help says the default is predicted")
    func targetsRecorded() throws {
        let dir = try cliTempDir("targets")
        let r = try runAttrib(["ig", "--model", "Models/digits-mlp", "--inputs", Self.inputs, "--limit", "3", "--steps", "16", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as! [String: Any]
        let targets = s["targets"] as! [[Int]]
        #expect(targets.count == 3 && targets.allSatisfy { $0.count == 1 })
        #expect(s["targetRule"] as? String == "predicted (argmax)")
        // The process's peak resident memory in bytes: the binary, OpenBLAS and the model hold
        // tens of MB (a kB figure taken for bytes would be tens of thousands).
        let peak = s["peakResidentBytes"] as? Int ?? 0
        #expect(peak >= 16 << 20 && peak < 64 << 30, "peakResidentBytes \(peak)")
        let npy = try NPY.read(dir + "/targets.npy")
        let ids = try npy.int32s().map(Int.init)
        #expect(npy.shape == [3, 1] && ids == targets.map { $0[0] })
        #expect(r.stdout.contains("targets: predicted (argmax)") && r.stdout.contains("  0      \(targets[0][0])"), "\(r.stdout)")
        let fixed = try runAttrib(["saliency", "--model", "Models/digits-mlp", "--inputs", Self.inputs, "--limit", "2", "--target", "4",
                                   "--json", "--out", try cliTempDir("t4")]).json()
        #expect(fixed["targets"] as? [[Int]] == [[4], [4]] && fixed["targetRule"] as? String == "--target 4")
        #expect(try runAttrib(["ig", "--help"]).stdout.contains("Default: predicted"))
    }

    @Test("heatmaps: the first 64 inputs by default, --heatmaps all or N, and each PNG has a title band and a colour bar")
    func heatmapCountAndPicture() throws {
        let dir = try cliTempDir("maps")
        let args = ["saliency", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "66"]
        #expect(try runAttrib(args + ["--out", dir]).status == 0)
        let pngs = try FileManager.default.contentsOfDirectory(atPath: dir + "/heatmaps").filter { $0.hasSuffix(".png") }
        #expect(pngs.count == 64, "default: at most 64 heatmaps, got \(pngs.count)")
        let all = try cliTempDir("mapsall")
        #expect(try runAttrib(args + ["--heatmaps", "all", "--out", all]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: all + "/heatmaps").count == 66)
        let bad = try runAttrib(args + ["--heatmaps", "some", "--out", try cliTempDir("bad")])
        #expect(bad.status != 0 && bad.stderr.contains("--heatmaps must be a count"))
        let badScale = try runAttrib(args + ["--heatmap-scale", "local", "--out", try cliTempDir("bad2")])
        #expect(badScale.status != 0 && badScale.stderr.contains("per-image or global"))
        // The picture: a 3-panel triptych of 8×8 inputs upscaled 16× (128 px high) with a title
        // above and a colour bar below, so it is taller than the panels and has dark text pixels
        // in the top band.
        let png = try PNGImage.read(path: dir + "/heatmaps/saliency_0000.png")
        #expect(png.height > 128 + 40, "title and colour bar around the 128-px panels: height \(png.height)")
        let topBand = (0..<(png.width * 20)).filter { png.rgb[3 * $0] < 80 && png.rgb[3 * $0 + 1] < 80 && png.rgb[3 * $0 + 2] < 80 }
        #expect(topBand.count > 50, "title text in the top band")
    }

    @Test("--heatmap-scale global draws every heatmap on one scale; per-image scales each on its own")
    func globalScale() throws {
        // The same attributions drawn twice: once the inputs' own scales are shown to differ,
        // input 1's picture on the shared scale cannot equal its per-image one.
        let per = try cliTempDir("per"), glob = try cliTempDir("glob")
        let args = ["saliency", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "4", "--heatmaps", "4"]
        #expect(try runAttrib(args + ["--out", per]).status == 0)
        #expect(try runAttrib(args + ["--heatmap-scale", "global", "--out", glob]).status == 0)
        let a = try NPY.read(per + "/attributions.npy").doubles()
        let d = 64
        let p99 = (0..<4).map { i in Heatmap.percentile(Array(a[i * d..<(i + 1) * d]).map(abs), 99) }
        #expect(Set(p99.map { ($0 * 1e6).rounded() }).count > 1, "the inputs' own scales differ")
        let g1 = try PNGImage.read(path: glob + "/heatmaps/saliency_0001.png"), p1 = try PNGImage.read(path: per + "/heatmaps/saliency_0001.png")
        #expect(g1.rgb != p1.rgb, "global and per-image pictures of input 1 differ")
    }

    @Test("--steps 0 is an error for ig and evaluate; --steps below the rule's minimum warns with the delta")
    func steps() throws {
        let ig = ["ig", "--model", "Models/digits-mlp", "--inputs", Self.inputs, "--limit", "2"]
        let zero = try runAttrib(ig + ["--steps", "0", "--out", try cliTempDir("s0")])
        #expect(zero.status != 0 && zero.stderr.contains("--steps 0") && zero.stderr.contains("at least 1"), "\(zero.stderr)")
        let trap = try runAttrib(ig + ["--steps", "1", "--method", "riemann_trapezoid", "--out", try cliTempDir("s1")])
        #expect(trap.status != 0 && trap.stderr.contains("at least 2"))
        let low = try runAttrib(ig + ["--steps", "2", "--out", try cliTempDir("s2")])
        #expect(low.status == 0 && low.stderr.contains("warning: --steps 2 is below 4") && low.stderr.contains("max |delta| ="), "\(low.stderr)")
        let ok = try runAttrib(ig + ["--steps", "16", "--out", try cliTempDir("s16")])
        #expect(ok.status == 0 && !ok.stderr.contains("warning: --steps"))
        let ev = try runAttrib(["evaluate", "deletion", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "2",
                                "--maps", "random", "--steps", "0"])
        #expect(ev.status != 0 && ev.stderr.contains("--steps 0"), "\(ev.stderr)")
    }

    @Test("evaluate --out writes curves.json (each input's curve, the mean, the AUC) and curves.png")
    func evaluateWritesCurves() throws {
        let dir = try cliTempDir("eval")
        let r = try runAttrib(["evaluate", "insertion", "--model", "Models/digits-cnn", "--inputs", Self.inputs, "--limit", "3",
                               "--maps", "random", "--steps", "8", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/curves.json"))) as! [String: Any]
        let maps = (j["maps"] as! [[String: Any]])[0]
        let curves = maps["curves"] as! [[Double]], mean = maps["meanCurve"] as! [Double]
        #expect(j["kind"] as? String == "insertion" && curves.count == 3 && mean.count == 9)
        for k in 0..<9 { #expect(abs(mean[k] - curves.map { $0[k] }.reduce(0, +) / 3) < 1e-12) }
        #expect(abs((maps["meanAUC"] as! Double) - DeletionInsertion.auc(mean)) < 1e-12, "the AUC of the mean curve is the mean AUC (both linear)")
        let png = try PNGImage.read(path: dir + "/curves.png")
        #expect(png.width >= 640 && png.height >= 400)
        #expect(r.stdout.contains("wrote \(dir)/curves.png"))
    }

    @Test("attrib --version prints the version, the commit and the build configuration")
    func version() throws {
        let r = try runAttrib(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("attrib 0.") && r.stdout.contains("(commit ") && r.stdout.contains(" build, ") && r.stdout.contains("Linux"), "\(r.stdout)")
        #expect(!r.stdout.contains("commit unknown"), "scripts/test.sh stamps the commit: \(r.stdout)")
    }

    @Test("the progress line counts inputs, not device rows")
    func progressLine() {
        // 200 inputs × 64 steps: 768 rows done is 12 whole inputs.
        let s = SweepProgressLine.text(label: "ig", rowsDone: 768, rowsTotal: 12_800, inputs: 200, elapsedSeconds: 2)
        #expect(s.contains("12/200 inputs") && s.contains("6.0 inputs/s") && s.contains(" 6%"), "\(s)")
        #expect(!s.contains("12800"))
        #expect(SweepProgressLine.text(label: "x", rowsDone: 10, rowsTotal: 10, inputs: 3, elapsedSeconds: 1).contains("3/3 inputs"))
    }
}
