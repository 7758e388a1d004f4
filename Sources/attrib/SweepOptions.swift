import ArgumentParser

/// The options every sweep command shares (ig, saliency, smoothgrad, expected-gradients, sobol,
/// evaluate, patch, atp, atp-star), so that none of them lacks one another has.
struct SweepOptions: ParsableArguments {
    @OptionGroup var batching: BatchOptions
    @Option(help: "Seed of every random draw (noise, uniform baselines, baseline draws, scrambled samplers, the false-negative check's sample); deterministic methods draw nothing.")
    var seed: UInt64 = 0
    @Flag(help: "Print the summary as JSON on standard output.") var json = false
    @Flag(help: "No progress bar.") var quiet = false
    @Flag(help: "Overwrite an --out directory that already holds results (summary.json or curves.json).") var force = false
}
