import Attrib
import Glibc
import Testing

/// The process's peak resident memory, which every sweep's summary reports (peakResidentBytes).
@Suite struct HostMemoryTests {
    /// Resident bytes now, from /proc/self/statm (pages), a second source beside VmHWM's kB.
    static func residentNow() throws -> Int {
        let text = String(decoding: try #require(readFileBytes("/proc/self/statm")), as: UTF8.self)
        return try #require(Int(text.split(separator: " ")[1])) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("peak resident memory is in bytes and at least the resident memory, before and after touching 64 MiB")
    func peakCoversResident() throws {
        // A kB figure taken for bytes would be a thousandth of the resident memory and fail here.
        // Resident first: the peak read after it covers it (the kernel raises VmHWM before RSS falls).
        let resident0 = try Self.residentNow(), peak0 = try #require(HostMemory.peakResidentBytes())
        #expect(peak0 >= resident0, "peak \(peak0), resident \(resident0)")
        let n = (64 << 20) / 8
        let p = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { p.deallocate() }
        for i in stride(from: 0, to: n, by: 512) { p[i] = i }   // every 4 KiB page written
        let resident = try Self.residentNow(), peak = try #require(HostMemory.peakResidentBytes())   // in this order, as above
        #expect(peak >= resident && resident >= 64 << 20, "peak \(peak), resident \(resident) with a 64 MiB buffer touched")
    }
}
