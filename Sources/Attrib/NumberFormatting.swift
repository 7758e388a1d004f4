// Numbers as the CLI's tables print them, without Foundation's formatters (the library
// keeps to FoundationEssentials).

/// A number with `digits` decimals, for tables.
public func fixed(_ x: Double, _ digits: Int = 1) -> String {
    guard x.isFinite else { return "\(x)" }
    // Past 1e15 the fixed form would not fit the Int it is built from (and says nothing a
    // reader can use): scientific notation instead (weights scaled by 1e20 gave 1e19 scores).
    guard abs(x) < 1e15 else { return sci(x) }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (abs(x) * p).rounded()
    let whole = Int(r / p), frac = Int(r.truncatingRemainder(dividingBy: p))
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return (x < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
}

/// A value in scientific notation with 2 significant decimals.
public func sci(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return x == 0 ? "0" : "\(x)" }
    var e = 0, m = abs(x)
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    return (x < 0 ? "-" : "") + fixed(m, 2) + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
}

