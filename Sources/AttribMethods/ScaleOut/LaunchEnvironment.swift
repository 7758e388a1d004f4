import AttribCore

/// Which share of a sweep this process takes, read from the launcher that started it: Open MPI's
/// mpirun, MPICH's Hydra (mpiexec), Slurm's srun, a Slurm job array, or an explicit `--shard K/N`.
/// Processes never talk to each other: each takes the work units whose index ≡ rank (mod size)
/// and they meet in the output directory (SweepDirectory).
public struct LaunchEnvironment: Sendable, Equatable, CustomStringConvertible {
    /// This process's place among `size` (0-based).
    public var rank: Int
    public var size: Int
    /// Its place among the processes on this host: which GPU it takes when --device does not say.
    public var localRank: Int
    /// What set it: "single", "--shard", "open-mpi", "mpich", "slurm", "slurm-array".
    public var launcher: String
    /// An id every process of one launch shares and a later launch does not (the MPI job id,
    /// the Slurm job and step, the array's job id); nil where the launcher gives none.
    public var launchID: String?

    public static let single = LaunchEnvironment(rank: 0, size: 1, localRank: 0, launcher: "single", launchID: nil)

    public var description: String { size == 1 ? "one process" : "rank \(rank) of \(size) (\(launcher), local rank \(localRank))" }

    /// Reads the launcher's variables. `shard`: an explicit "K/N" (K in 0..<N), which wins.
    /// Precedence otherwise: Open MPI (OMPI_COMM_WORLD_*), MPICH/Hydra (PMI_RANK, PMI_SIZE,
    /// MPI_LOCALRANKID), Slurm inside an srun step (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID;
    /// SLURM_STEP_ID marks a step: a batch script's own SLURM_NTASKS is the allocation, not a
    /// launch), then a Slurm job array (SLURM_ARRAY_TASK_ID, _MIN, _STEP, _COUNT), combined with
    /// an srun step inside each array task when there is one.
    public static func detect(_ env: [String: String], shard: String? = nil) throws -> LaunchEnvironment {
        if let shard {
            let p = shard.split(separator: "/").map { Int($0) }
            guard p.count == 2, let k = p[0], let n = p[1], n >= 1, k >= 0, k < n else {
                throw AttribError.invalidArgument(op: "--shard", detail: "must be K/N with 0 ≤ K < N, got '\(shard)'")
            }
            return LaunchEnvironment(rank: k, size: n, localRank: 0, launcher: "--shard", launchID: nil)
        }
        func int(_ key: String) throws -> Int? {
            guard let s = env[key] else { return nil }
            guard let v = Int(s), v >= 0 else { throw AttribError.invalidArgument(op: "launcher", detail: "\(key)=\(s) is not a count or index") }
            return v
        }
        func checked(_ r: Int, _ n: Int, _ l: Int, _ what: String, _ id: String?) throws -> LaunchEnvironment {
            guard n >= 1, r < n else { throw AttribError.invalidArgument(op: "launcher", detail: "\(what): rank \(r) is not below the size \(n)") }
            return LaunchEnvironment(rank: r, size: n, localRank: l, launcher: what, launchID: id)
        }
        if let r = try int("OMPI_COMM_WORLD_RANK"), let n = try int("OMPI_COMM_WORLD_SIZE") {
            return try checked(r, n, try int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, "open-mpi",
                               env["OMPI_MCA_ess_base_jobid"] ?? env["PMIX_NAMESPACE"])
        }
        if let r = try int("PMI_RANK"), let n = try int("PMI_SIZE") {
            return try checked(r, n, try int("MPI_LOCALRANKID") ?? 0, "mpich", env["PMI_KVSNAME"] ?? env["PMIX_NAMESPACE"])
        }
        var step: LaunchEnvironment?
        if env["SLURM_STEP_ID"] != nil, let r = try int("SLURM_PROCID"), let n = try int("SLURM_NTASKS") {
            step = try checked(r, n, try int("SLURM_LOCALID") ?? 0, "slurm",
                               env["SLURM_JOB_ID"].map { "slurm-\($0).\(env["SLURM_STEP_ID"]!)" })
        }
        if let id = try int("SLURM_ARRAY_TASK_ID"), let count = try int("SLURM_ARRAY_TASK_COUNT") {
            let lo = try int("SLURM_ARRAY_TASK_MIN") ?? 0, by = max(1, try int("SLURM_ARRAY_TASK_STEP") ?? 1)
            guard id >= lo, (id - lo) % by == 0 else {
                throw AttribError.invalidArgument(op: "launcher", detail: "SLURM_ARRAY_TASK_ID=\(id) is not on the array's grid (min \(lo), step \(by))")
            }
            let task = (id - lo) / by
            let inner = step ?? .single
            // Array tasks start whenever the scheduler runs them: the shared id is the array's job.
            return try checked(task * inner.size + inner.rank, count * inner.size, inner.localRank, "slurm-array",
                               env["SLURM_ARRAY_JOB_ID"].map { "slurm-array-\($0)" })
        }
        return step ?? .single
    }
}
