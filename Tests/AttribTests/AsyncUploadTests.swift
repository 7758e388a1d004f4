import Attrib
import Testing

/// OpenCL uploads are enqueued without waiting (OpenCLDevice.upload copies the bytes into
/// staging memory first): the host's buffer may change at once, the device sees what it held
/// at the call, and the queue's order makes every op after an upload see the upload.
@Suite struct AsyncUploadTests {
    @Test("Uploads see the host bytes of the call, in queue order with kernels, on every OpenCL device")
    func uploadsKeepTheirBytes() throws {
        for device in openCLDevices {
            let n = 1024
            let t = try Tensor(shape: [n], dtype: .float32, on: device)
            let sum = try Tensor.zeros([n], dtype: .float32, on: device)
            var host = [Float](repeating: 0, count: n)
            var want = [Double](repeating: 0, count: n)
            // 200 rounds: refill the same host array, upload it, and add it on the device, so each
            // round's kernel must read that round's upload, not a later one's bytes.
            for round in 0..<200 {
                for i in 0..<n { host[i] = Float((round * 7 + i) % 13) - 6 }
                try host.withUnsafeBytes { try device.upload($0, to: t.storage) }
                try sum.axpy(1, t)
                for i in 0..<n { want[i] += Double(host[i]) }
                host = host.map { _ in .nan }   // the host buffer changes at once
            }
            expectEqual(try sum.doubles(), want, "\(device.id): the sum of 200 uploads (small integers: exact)")
        }
    }
}
