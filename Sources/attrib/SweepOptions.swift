import ArgumentParser

/// The options every sweep command shares (ig, saliency, smoothgrad, expected-gradients, sobol,
/// evaluate, patch, atp, atp-star), so that none of them lacks one another has.
struct SweepOptions: ParsableArguments {
    @OptionGroup var batching: BatchOptions
    @Option(help: "Seed of every random draw (noise, uniform baselines, baseline draws, scrambled samplers, the false-negative check's sample); deterministic methods draw nothing.")
    var seed: UInt64 = 0
    @Flag(help: "Print the summary as JSON on standard output.") var json = false
    @Flag(help: "No progress bar.") var quiet = false
    @Flag(help: "Overwrite an --out directory that already holds results (summary.json or curves.json) or an unfinished sweep.") var force = false
    @Flag(help: "Continue the unfinished sweep in --out (after a crash, a kill or Ctrl-C): only its missing units run, and the final files equal an uninterrupted run's. A changed model, input file or option is refused, naming what changed.")
    var resume = false
    @Option(help: ArgumentHelp("Inputs (or prompt pairs) per work unit: the grain at which devices and processes share a sweep and at which it is saved for --resume. Default: about 16384 model rows per unit, fewer where the unit's host buffers would pass 512 MiB.", valueName: "N"))
    var chunk: Int?
    @Option(help: ArgumentHelp("Take share K of N of the sweep's units (0 ≤ K < N), as a process under mpirun or srun does from the launcher's variables; for launchers Attrib does not read.", valueName: "K/N"))
    var shard: String?
    @Flag(help: "Keep each unit's files in --out/.attrib-sweep after the final files are assembled (they are deleted by default).") var keepUnits = false

    func validate() throws {
        if let c = chunk, c < 1 { throw ValidationError("--chunk must be at least 1, got \(c)") }
        if resume && force { throw ValidationError("give --resume or --force, not both") }
    }
}
