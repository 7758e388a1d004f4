import Attrib
import Foundation
import Testing

/// What `attrib patch`, `atp` and `atp-star` print and write on Models/induction-2l (issue 24):
/// AtP*'s default GradDrop rule keeps the true top head on top where the paper's mean ranked it
/// last; --compare's K and ranks; --verify names what it found; signed vs magnitude scores; BOS.
/// Pair 0 is "<|endoftext|>1fOGwHMn1fOGw" / "…YMn…", metric logit-diff H,Y; exact patching and
/// AtP rank L0H3 (the previous-token head, whose effect runs wholly through layer 1) first.
@Suite(.serialized) struct PatchingOutputTests {
    static let model = "Models/induction-2l"
    static let pairs = "Models/induction-2l/prompts.json"

    @Test("GradDrop rules on induction-2l pair 0: floor (default) and max rank L0H3 first, the paper's mean ranks it last")
    func gradDropRulesLibrary() throws {
        let m = try DecoderModel.load(projectRoot + "/" + Self.model, on: cpu, dtype: .float64)
        let tok = try GPT2Tokenizer(directory: projectRoot + "/" + Self.model)
        let clean = try tok.encode("<|endoftext|>1fOGwHMn1fOGw"), corrupt = try tok.encode("<|endoftext|>1fOGwYMn1fOGw")
        let metric = TokenMetric.logitDifference(target: [Int(try tok.encode("H")[0])], contrast: [Int(try tok.encode("Y")[0])])
        let pair = PromptPair(clean: clean, corrupt: corrupt)
        let exact = try ActivationPatching.effects(m, pair: pair, metric: metric, granularity: .heads)
        let l0h3 = 3
        #expect(RankAgreement.order(exact.scores).first == l0h3, "exact patching ranks L0H3 first")
        #expect(GradDropRule.default == .floor)
        for rule in GradDropRule.allCases {
            let s = try AtPStar(gradDrop: rule).estimate(m, pair: pair, metric: metric, granularity: .heads)
            let rank = RankAgreement.order(s.scores.scores).firstIndex(of: l0h3)! + 1
            if rule == .paper {
                #expect(rank == 8, "the paper's mean collapses L0H3 to the bottom: rank \(rank)")
            } else {
                #expect(rank == 1, "\(rule) keeps L0H3 first: rank \(rank), scores \(s.scores.scores)")
                #expect(s.scores.scores.indices.allSatisfy { s.scores.scores[$0] >= abs(s.signed[$0]) - 1e-12 }, "\(rule) never scores below |ĉ|")
            }
        }
    }

    @Test("GradDropRule arithmetic on a hand-made estimate: floor = max(|ĉ|, mean), paper = mean, max = the largest |ĉ_l|")
    func gradDropRuleArithmetic() {
        // Three layers, one node per layer. ĉ = (2, −1, 0.5); node 0's effect runs through layer 1
        // (ĉ_1 = 0.1) and partly cancels through layer 2 (ĉ_2 = 3).
        let signed = [2.0, -1, 0.5]
        let perDrop = [[0.0, -1, 0.5], [0.1, 0, 0.5], [3.0, 0.4, 0]]
        // paper: Σ_l |ĉ_l| / (L − 1) = (0 + 0.1 + 3)/2, (1 + 0 + 0.4)/2, (0.5 + 0.5 + 0)/2.
        #expect(GradDropRule.paper.scores(signed: signed, perDrop: perDrop) == [1.55, 0.7, 0.5])
        #expect(GradDropRule.floor.scores(signed: signed, perDrop: perDrop) == [2, 1, 0.5])
        #expect(GradDropRule.max.scores(signed: signed, perDrop: perDrop) == [3, 1, 0.5])
        #expect(GradDropRule.floor.scores(signed: [-2], perDrop: [[0]]) == [2], "one layer: |ĉ|")
    }

    @Test("recall's K is min(10, nodes/4), and the true top K come with the estimate's rank of each")
    func compareK() {
        #expect(RankAgreement.defaultK(nodes: 8) == 2 && RankAgreement.defaultK(nodes: 512) == 10 && RankAgreement.defaultK(nodes: 3) == 1)
        let truth = [0.1, -5, 3, 0.2], estimate = [4.0, 0.01, 2, -1]
        let r = RankAgreement.ranksOfTrueTop(truth: truth, estimate: estimate, k: 2)
        #expect(r.map(\.node) == [1, 2] && r.map(\.rank) == [4, 2])
    }

    @Test("atp-star on the CLI: the default ranks L0H3 first; --grad-drop paper ranks it last and --compare shows its rank")
    func atpStarCLI() throws {
        let base = ["atp-star", "--model", Self.model, "--pairs", Self.pairs, "--limit", "1", "--compare", "--json", "--out", try cliTempDir("atps")]
        let d = try runAttrib(base)
        #expect(d.status == 0, "\(d.stderr)")
        let j = try d.json()
        let pair = (j["perPair"] as! [[String: Any]])[0]
        #expect(((pair["top"] as! [[String: Any]])[0]["node"] as? String) == "L0H3")
        #expect(j["scoreKind"] as? String == "magnitude" && j["k"] as? Int == 2)
        let p = try runAttrib(base + ["--grad-drop", "paper", "--force"]).json()
        let ranks = ((p["perPair"] as! [[String: Any]])[0]["trueTopK"] as! [[String: Any]])
        #expect(ranks.count == 2 && ranks[0]["node"] as? String == "L0H3" && ranks[0]["rank"] as? Int == 8, "\(ranks)")
        let bad = try runAttrib(base + ["--grad-drop", "mean"])
        #expect(bad.status != 0 && bad.stderr.contains("unknown --grad-drop 'mean'"))
        let help = try runAttrib(["atp-star", "--help"])
        #expect(help.stdout.contains("floor (default)") && help.stdout.contains("collapses on shallow models"))
    }

    @Test("--compare prints K and the rank of each true top-K node; --verify names the node it found missed and states the bound")
    func compareAndVerifyText() throws {
        let r = try runAttrib(["atp-star", "--model", Self.model, "--pairs", Self.pairs, "--limit", "1", "--grad-drop", "paper",
                               "--compare", "--verify", "3", "--out", try cliTempDir("verify")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("recall of the true top 2 = 0.500"))
        #expect(r.stdout.contains("L0H3") && r.stdout.contains("rank 8"))
        #expect(r.stdout.contains("MISSED L0H3"), "\(r.stdout)")
        #expect(r.stdout.contains("the estimate MISSED it"))
        #expect(!r.stdout.contains("≤ 0.0 nodes"), "no all-clear wording")
        // A sample smaller than the rest: the bound in words.
        let s = try runAttrib(["atp-star", "--model", Self.model, "--pairs", Self.pairs, "--limit", "1", "--nodes", "neurons",
                               "--verify", "5", "--samples", "20", "--out", try cliTempDir("verify2")])
        #expect(s.stdout.contains("With 95% confidence, at most") && s.stdout.contains("never verified"), "\(s.stdout)")
    }

    @Test("patch and atp scores are labelled signed, atp-star's magnitudes, in the table and summary.json")
    func signedVersusMagnitude() throws {
        for (cmd, header, kind) in [("patch", "score (signed)", "signed"), ("atp", "score (signed)", "signed"),
                                    ("atp-star", "|score| (magnitude, ≥ 0)", "magnitude")] {
            let dir = try cliTempDir(cmd)
            let r = try runAttrib([cmd, "--model", Self.model, "--pairs", Self.pairs, "--limit", "2", "--out", dir])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains(header), "\(cmd): \(r.stdout)")
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as! [String: Any]
            #expect(summary["scoreKind"] as? String == kind)
            #expect(r.stdout.contains("heads.png (mean over 2 pairs)"))
        }
    }

    @Test("text prompts get the BOS token first, as TransformerLens does; --no-bos turns it off; ids are used as given")
    func bos() throws {
        let args = ["atp", "--model", Self.model, "--clean", "1fOGwHMn1fOGw", "--corrupt", "1fOGwYMn1fOGw", "--metric", "logit-diff:H,Y", "--json"]
        let with = try runAttrib(args + ["--out", try cliTempDir("bos")]).json()
        let without = try runAttrib(args + ["--no-bos", "--out", try cliTempDir("nobos")]).json()
        let explicit = try runAttrib(["atp", "--model", Self.model, "--clean", "<|endoftext|>1fOGwHMn1fOGw", "--corrupt", "<|endoftext|>1fOGwYMn1fOGw",
                                      "--metric", "logit-diff:H,Y", "--json", "--out", try cliTempDir("bos2")]).json()
        func tokens(_ j: [String: Any]) -> Int? { (j["perPair"] as! [[String: Any]])[0]["tokens"] as? Int }
        func top(_ j: [String: Any]) -> [String] { ((j["perPair"] as! [[String: Any]])[0]["top"] as! [[String: Any]]).map { "\($0["node"]!) \($0["score"]!)" } }
        #expect(tokens(with) == 14 && tokens(without) == 13 && tokens(explicit) == 14)
        // The prompts differ at the 6th character's token: the corrupt run took the tokens before it
        // from the clean run (BOS included where prepended), and says so.
        func shared(_ j: [String: Any]) -> Int? { (j["perPair"] as! [[String: Any]])[0]["sharedPrefix"] as? Int }
        #expect(shared(with) == 6 && shared(without) == 5, "\(String(describing: shared(with))) \(String(describing: shared(without)))")
        #expect(top(with) == top(explicit), "BOS is not prepended twice")
        #expect(with["bosPrepended"] as? Bool == true && without["bosPrepended"] as? Bool == false)
    }

    @Test("patch --layers patches only those layers' nodes: the others are NaN in scores.npy and out of the table; a layer past the model is refused")
    func layers() throws {
        let dir = try cliTempDir("layers")
        let j = try runAttrib(["patch", "--model", Self.model, "--clean-tokens", "1,2,3,4", "--corrupt-tokens", "1,5,3,4",
                               "--metric", "logit-diff:3,4", "--nodes", "neurons", "--layers", "1", "--json", "--out", dir]).json()
        let top = (j["perPair"] as! [[String: Any]])[0]["top"] as! [[String: Any]]
        #expect(!top.isEmpty && top.allSatisfy { ($0["node"] as! String).hasPrefix("L1N") }, "\(top)")
        let scores: [Double] = try NPY.read(dir + "/scores.npy").doubles()
        let half = scores.count / 2
        #expect(scores[..<half].allSatisfy(\.isNaN) && scores[half...].allSatisfy { !$0.isNaN })
        let bad = try runAttrib(["patch", "--model", Self.model, "--clean-tokens", "1,2", "--corrupt-tokens", "1,5",
                                 "--metric", "logit-diff:3,4", "--nodes", "neurons", "--layers", "7", "--out", try cliTempDir("layers2")])
        #expect(bad.status != 0 && bad.stderr.contains("--layers 7"), "\(bad.stderr)")
    }
}
