#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe whole-file writes and bounded reads for the small secret files under CHIMERA_HOME
/// (and for reports, which must not be left half-written either).
///
/// A write goes to a fresh temporary file in the target's directory, is flushed to disk, then
/// renamed over the target, and the directory is flushed so the rename itself survives a crash.
/// Readers therefore see the old file or the new one, never a mix, and a failed write leaves no
/// temporary file behind.
public enum AtomicFile {
    /// Replaces (or creates) `path` with `bytes`, readable and writable only as `mode` says.
    ///
    /// Missing parent directories are created with mode 0700.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(KeyStoreError) {
        let temp = try writeTemporary(bytes, besides: path, mode: mode)
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw .io(operation: "replace", path: path, errno: code)
        }
        try syncDirectory(of: path)
    }

    /// Creates `path` with `bytes` only if it does not exist yet; returns false (and writes nothing)
    /// if it does.
    ///
    /// Unlike ``write(_:to:mode:)`` this never replaces a file that another process created
    /// meanwhile: the complete temporary file is hard-linked to `path`, which fails if `path` exists.
    /// Two processes creating the same master key thus agree on one.
    static func create(_ bytes: [UInt8], at path: String, mode: mode_t = 0o600) throws(KeyStoreError) -> Bool {
        let temp = try writeTemporary(bytes, besides: path, mode: mode)
        defer { unlink(temp) }
        guard link(temp, path) == 0 else {
            let code = errno
            if code == EEXIST { return false }
            throw .io(operation: "create", path: path, errno: code)
        }
        try syncDirectory(of: path)
        return true
    }

    /// The contents of `path` (at most `limit + 1` bytes, so callers can tell an oversized file) and
    /// its permission bits, or nil if it does not exist.
    ///
    /// The mode comes from the same open descriptor as the bytes, so a check on it cannot race
    /// with a `chmod` or a replacement of the file.
    static func read(_ path: String, limit: Int) throws(KeyStoreError) -> (bytes: [UInt8], mode: mode_t)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            throw .io(operation: "open", path: path, errno: code)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .io(operation: "read", path: path, errno: EISDIR) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= limit {
            let count = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: path, errno: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return (bytes, info.st_mode & 0o7777)
    }

    /// Creates `directory` and its missing ancestors with `mode`, like `mkdir -p -m 700`.
    static func makeDirectories(_ directory: String, mode: mode_t = 0o700) throws(KeyStoreError) {
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, mode) != 0 {
                let code = errno
                var info = stat()
                // EEXIST is fine for a directory; anything else there, or another error, is not.
                guard code == EEXIST, stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                    throw .io(operation: "create the directory", path: prefix, errno: code == EEXIST ? ENOTDIR : code)
                }
            }
            prefix += "/"
        }
    }

    /// Runs `body` while holding an exclusive `flock` on `lockPath` (created with mode 0600).
    ///
    /// The lock file is separate from the data file because the data file is replaced by rename,
    /// which would leave a lock on the old inode. `flock` locks belong to the open file, so threads
    /// of one process exclude each other as well as processes do, and the kernel drops the lock if
    /// the process dies.
    static func withExclusiveLock<T>(_ lockPath: String, _ body: () throws(KeyStoreError) -> T) throws(KeyStoreError) -> T {
        try makeDirectories(directory(of: lockPath))
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else { throw .io(operation: "open the lock file", path: lockPath, errno: errno) }
        defer { close(fd) }  // closing releases the lock
        guard fchmod(fd, 0o600) == 0 else { throw .io(operation: "set the permissions of", path: lockPath, errno: errno) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .io(operation: "lock", path: lockPath, errno: errno) }
        }
        return try body()
    }

    /// Whether anything (a file, a directory, a dangling link) exists at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// `directory/name`, without doubling a trailing slash.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The directory part of `path`: `"."` for a bare name, `"/"` for a file at the root.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    // MARK: - Steps

    /// Writes `bytes` to a new file beside `path` and flushes it; returns the file's path.
    private static func writeTemporary(_ bytes: [UInt8], besides path: String, mode: mode_t) throws(KeyStoreError) -> String {
        let directory = directory(of: path)
        try makeDirectories(directory)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        // A leading dot hides it from `ls`; the random part avoids collisions between processes.
        let temp = "\(directory)/.\(base).tmp-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 36))"

        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io(operation: "create a temporary file in", path: directory, errno: errno) }
        var failure: KeyStoreError?
        // open's mode is filtered by the umask; fchmod makes the result exact either way.
        if fchmod(fd, mode) != 0 {
            failure = .io(operation: "set the permissions of", path: temp, errno: errno)
        } else if let code = writeAll(bytes, to: fd) {
            failure = .io(operation: "write", path: temp, errno: code)
        } else if fsync(fd) != 0 {
            failure = .io(operation: "flush", path: temp, errno: errno)
        }
        // close can report a delayed write error (e.g. on NFS), so it counts too.
        if close(fd) != 0, failure == nil { failure = .io(operation: "close", path: temp, errno: errno) }
        if let failure {
            unlink(temp)
            throw failure
        }
        return temp
    }

    /// Writes every byte, retrying short writes and EINTR; returns errno on failure.
    private static func writeAll(_ bytes: [UInt8], to fd: Int32) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
    }

    /// Flushes the directory entry of `path`, so that a completed rename or link survives a crash.
    private static func syncDirectory(of path: String) throws(KeyStoreError) {
        let directory = directory(of: path)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open the directory", path: directory, errno: errno) }
        defer { close(fd) }
        // Some file systems cannot fsync a directory (EINVAL); there is nothing more to do there.
        if fsync(fd) != 0, errno != EINVAL {
            throw .io(operation: "flush the directory", path: directory, errno: errno)
        }
    }
}

// `AtomicFile.read` and `.write` shadow the system calls inside the enum.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, buffer, count) }
