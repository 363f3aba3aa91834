import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Content digests of external inputs and stage outputs.
///
/// - file: SHA-256 of the bytes;
/// - directory: SHA-256 of its manifest, one line per regular file (symlinks followed), sorted by
///   relative path (code point order): `<relative path>\t<size>\t<sha256 hex>\n`. Empty
///   directories contribute nothing: only file contents and names matter.
///
/// File digests are memoized under `<cache>/digests/` keyed by the stat identity
/// (device, inode, size, mtime ns), in the spirit of git's index and DVC's state db, so a
/// multi-GB checkpoint is hashed once. A write to the file changes mtime and therefore the key.
/// ctime is left out on purpose: a stage hard-linking the checkpoint into its artifact (and the
/// link going away) changes ctime without touching the bytes, which made the first cached re-run
/// hash everything again. Racy writes (git's "racy clean" problem): the kernel's file clock is
/// coarse, so two writes a few ms apart can leave the same mtime; a digest is therefore memoized
/// only once the file's mtime is at least `racyWindow` seconds in the past.
public struct ContentDigest: Sendable {
    /// Where memo files live; nil disables memoization.
    public let memoDirectory: URL?

    public init(memoDirectory: URL?) { self.memoDirectory = memoDirectory }

    /// Files modified more recently than this are hashed but not memoized (see the type comment).
    public static let racyWindow: Int64 = 2_000_000_000

    public struct Entry: Sendable, Hashable {
        public var path: String   // relative, "/"-separated
        public var size: Int64
        public var digest: String
    }

    /// Digest of a file or directory (whichever `url` is).
    public func digest(of url: URL) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CacheError.io("file not found: \(url.path)")
        }
        return isDirectory.boolValue ? Self.manifestDigest(try manifest(of: url)) : try fileDigest(url).digest
    }

    /// Sorted manifest of every regular file below `directory`.
    public func manifest(of directory: URL) throws -> [Entry] {
        var entries: [Entry] = []
        let root = directory.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw CacheError.io("cannot list \(root)") }
        while let relative = walker.nextObject() as? String {
            let full = root + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let (size, digest) = try fileDigest(URL(fileURLWithPath: full))
            entries.append(Entry(path: relative, size: size, digest: digest))
        }
        entries.sort { $0.path.unicodeScalars.lexicographicallyPrecedes($1.path.unicodeScalars) }
        return entries
    }

    public static func manifestText(_ entries: [Entry]) -> String {
        entries.map { "\($0.path)\t\($0.size)\t\($0.digest)\n" }.joined()
    }

    public static func manifestDigest(_ entries: [Entry]) -> String { SHA256.hex(Data(manifestText(entries).utf8)) }

    /// (size, hex digest) of one file, memoized by stat identity.
    public func fileDigest(_ url: URL) throws -> (size: Int64, digest: String) {
        var st = stat()
        guard stat(url.path, &st) == 0 else { throw CacheError.io("cannot stat \(url.path): \(String(cString: strerror(errno)))") }
        let size = Int64(st.st_size)
        let memo = memoFile(st)
        if let file = memo.file, let text = try? String(contentsOf: file, encoding: .utf8), text.count == 64 { return (size, text) }
        let digest = try Self.hashFile(url)
        if let file = memo.file, memo.trusted { try? AtomicFile.write(Data(digest.utf8), to: file) }
        return (size, digest)
    }

    /// The memo file for a stat identity, and whether a digest may be memoized under it now (the
    /// file's mtime is out of the racy window).
    private func memoFile(_ st: stat) -> (file: URL?, trusted: Bool) {
        guard let memoDirectory else { return (nil, false) }
        let mt = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let name = SHA256.hex(Data("\(st.st_dev) \(st.st_ino) \(Int64(st.st_size)) \(mt)".utf8))
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        return (memoDirectory.appendingPathComponent(String(name.prefix(2))).appendingPathComponent(name), nowNanoseconds - mt >= Self.racyWindow)
    }

    /// Sets the modification time of a file this process is writing and no one else can have
    /// touched (a private temporary file) `racyWindow` into the past, so that its digest can be
    /// memoized at once (`remember`): any later write gives it a new mtime, hence a new memo key.
    /// Publishing does this, else the first re-run after a run hashed every published file again
    /// (SmolLM2's merged model, 538 MB: 0.4 s).
    public static func backdate(_ fd: Int32) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let past = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - racyWindow
        var times = [now, timespec(tv_sec: Int(past / 1_000_000_000), tv_nsec: Int(past % 1_000_000_000))]   // atime, mtime
        return futimens(fd, &times) == 0
    }

    /// Memoizes `digest` as the content of `url`, when its mtime allows (see `backdate`).
    public func remember(_ digest: String, for url: URL) {
        var st = stat()
        guard stat(url.path, &st) == 0 else { return }
        let memo = memoFile(st)
        if let file = memo.file, memo.trusted { try? AtomicFile.write(Data(digest.utf8), to: file) }
    }

    /// Streams the file through SHA-256 in 1 MiB reads.
    public static func hashFile(_ url: URL) throws -> String {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CacheError.io("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var hasher = SHA256()
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, capacity)
            if n < 0 {
                if errno == EINTR { continue }
                throw CacheError.io("cannot read \(url.path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalize().hexString
    }
}

/// temp file -> fsync -> rename, so a reader sees the old or the new content, never a torn file.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temp = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temp.path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CacheError.io("cannot create \(temp.path): \(String(cString: strerror(errno)))") }
        var ok = true
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; ok = false; break }
                offset += n
            }
        }
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        if ok { CrashPoint.here("atomic-write") }
        guard ok, rename(temp.path, url.path) == 0 else {
            unlink(temp.path)
            throw CacheError.io("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes a JSON value as canonical JSON plus a newline.
    public static func write(json: JSONValue, to url: URL) throws {
        try write(Data((CanonicalJSON.string(json) + "\n").utf8), to: url)
    }

    public static func readJSON(_ url: URL) throws -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        do { return try CanonicalJSONParser.parse(data) } catch {
            throw CacheError.corruptRecord(path: url.path, reason: error.localizedDescription)
        }
    }
}
