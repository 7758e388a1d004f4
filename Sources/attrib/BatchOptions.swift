import ArgumentParser

/// --limit and --batch, the same on every command that runs inputs through a model.
struct BatchOptions: ParsableArguments {
    @Option(help: "Only the first N inputs.") var limit: Int?
    @Option(help: "Cap on rows per device batch (batches are otherwise sized from device memory).") var batch: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit \(limit): give at least 1 (or leave it out for every input)") }
        if let batch, batch < 1 { throw ValidationError("--batch \(batch): give at least 1 row (or leave it out to size batches from device memory)") }
    }
}
