import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rules that keep publishing (`to:`) from destroying anything qlora-run did not create.
///
/// A destination may be (a) absent, (b) an empty directory, or (c) a directory qlora-run published
/// before, recognised by the marker file `.qlora-published` it writes into every published
/// directory. It may never be, contain or lie inside the cache, contain the pipeline file's
/// directory, touch any input path of the pipeline (data, checkpoints, `init.from`), or overlap
/// another stage's destination. All of this is checked when the pipeline is loaded, before any
/// stage runs, and again just before the rename (the file system may change while a stage runs).
public enum PublishSafety {
    /// The marker file written into each published directory.
    public static let markerName = ".qlora-published"

    /// The marker's content: which pipeline, stage and cache key produced the directory.
    public static func marker(pipeline: String, stage: String, key: String, outputDigest: String) -> JSONValue {
        .object(["pipeline": .string(pipeline), "stage": .string(stage), "key": .string(key),
                 "output_digest": .string(outputDigest), "tool": .string("qlora-run")])
    }

    /// Absolute path components with symlinks resolved as far as the path exists
    /// (the rest appended as written), so `out/../toydata` and a symlink to toydata compare equal.
    static func canonicalComponents(_ url: URL) -> [String] {
        var existing = url.standardizedFileURL
        var rest: [String] = []
        while existing.path != "/" && !FileManager.default.fileExists(atPath: existing.path) {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        let resolved = existing.resolvingSymlinksInPath().standardizedFileURL.path
        return resolved.split(separator: "/").map(String.init) + rest
    }

    /// True when `a` is `b` or one of its ancestors.
    static func contains(_ a: [String], _ b: [String]) -> Bool { a.count <= b.count && Array(b.prefix(a.count)) == a }

    /// What is at a destination now (without following a final symlink).
    enum Occupant: Equatable {
        case nothing, emptyDirectory, published, symlink, file, foreignDirectory(entries: Int)
    }

    static func occupant(_ url: URL) -> Occupant {
        var info = stat()
        guard lstat(url.path, &info) == 0 else { return .nothing }
        switch info.st_mode & S_IFMT {
        case S_IFLNK: return .symlink
        case S_IFDIR:
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            if names.isEmpty { return .emptyDirectory }
            var isDirectory: ObjCBool = false
            let marker = url.appendingPathComponent(markerName).path
            if FileManager.default.fileExists(atPath: marker, isDirectory: &isDirectory), !isDirectory.boolValue { return .published }
            return .foreignDirectory(entries: names.count)
        default: return .file
        }
    }

    /// The refusal for an occupied destination, nil when publishing there is safe.
    static func occupantProblem(_ url: URL) -> String? {
        if let problem = ancestorProblem(url) { return problem }
        switch occupant(url) {
        case .nothing, .emptyDirectory, .published: return nil
        case .symlink: return "a symbolic link is there; qlora-run publishes only into a path it owns. Remove the link or choose another path"
        case .file: return "a file is there, which publishing would replace by a directory. Remove the file or choose another path"
        case .foreignDirectory(let n):
            return "a directory with \(n) entr\(n == 1 ? "y" : "ies") is there that qlora-run did not publish (no \(markerName) marker). " +
                "Remove it or choose another path"
        }
    }

    /// The refusal when the nearest existing ancestor of `url` is a file (no directory can be made there).
    static func ancestorProblem(_ url: URL) -> String? {
        var ancestor = url.standardizedFileURL.deletingLastPathComponent()
        while ancestor.path != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) {
                if !isDirectory.boolValue {
                    return "\(Publisher.shown(ancestor)) is a file, so no directory can be created below it. Remove the file or choose another path"
                }
                break
            }
            ancestor.deleteLastPathComponent()
        }
        return nil
    }

    /// Every reason the pipeline's destinations are unsafe, as issues at the `to:` fields.
    /// `shownDirectory` is the pipeline directory as the user wrote it (for messages).
    public static func issues(pipelineName: String, stages: [PipelineStage], pipelineDirectory: URL, cacheDirectory: URL,
                              shownDirectory: String) -> [PipelineIssue] {
        let cache = canonicalComponents(cacheDirectory)
        let home = canonicalComponents(pipelineDirectory)
        var inputs: [(stage: String, field: String, text: String, path: [String])] = []
        var outputs: [(stage: String, field: String, text: String, path: [String], file: Bool)] = []
        for stage in stages {
            for (field, text) in stage.inputPaths.sorted(by: { $0.key < $1.key }) {
                inputs.append((stage.name, field, text, canonicalComponents(URL(fileURLWithPath: text, relativeTo: pipelineDirectory))))
            }
            for (field, text) in stage.outputPaths.sorted(by: { $0.key < $1.key }) {
                outputs.append((stage.name, field, text, canonicalComponents(URL(fileURLWithPath: text, relativeTo: pipelineDirectory)),
                                stage.publishesFile(field)))
            }
        }
        var issues: [PipelineIssue] = []
        for (index, output) in outputs.enumerated() {
            let destination = output.path
            let shown = "'\(output.text)' (relative to \(shownDirectory))"
            var problem: String?
            if contains(destination, home) {
                problem = "\(shown) is or contains the pipeline file's directory; publishing there would delete it. Choose a path below or beside it"
            } else if contains(destination, cache) {
                problem = "\(shown) is or contains the cache directory; publishing there would delete the cache. Choose a path outside it"
            } else if contains(cache, destination) {
                problem = "\(shown) is inside the cache directory, which only qlora-run may write. Choose a path outside it"
            } else if let input = inputs.first(where: { contains(destination, $0.path) || contains($0.path, destination) }) {
                let relation = destination == input.path ? "is" : contains(destination, input.path) ? "contains" : "is inside"
                problem = "\(shown) \(relation) an input of the pipeline (stages.\(input.stage).\(input.field): '\(input.text)'); " +
                    "publishing there would overwrite it. Choose another path"
            } else if let other = outputs.enumerated().first(where: { $0.offset != index && (contains(destination, $0.element.path) || contains($0.element.path, destination)) })?.element {
                problem = "\(shown) overlaps the destination of stages.\(other.stage).\(other.field) ('\(other.text)'); give each its own path"
            } else {
                let url = URL(fileURLWithPath: output.text, relativeTo: pipelineDirectory).standardizedFileURL
                let occupied = output.file ? fileOccupantProblem(url)
                    : occupantProblem(url).flatMap { holdsLastPublish(url, pipeline: pipelineName, stage: output.stage, cache: cacheDirectory) ? nil : $0 }
                if let occupied {
                    problem = "cannot publish to \(shown): " + occupied
                } else if let published = publishedAncestor(of: url) {
                    // e.g. a sweep point's out/adapter/<point> inside an earlier plain run's out/adapter:
                    // publishing that one again would replace the directory and lose this.
                    problem = "cannot publish to \(shown): it is inside '\(Publisher.shown(published))', which qlora-run published, and would be lost "
                        + "when that is published again. Remove '\(Publisher.shown(published))' or choose another path (a sweep can use {point}, e.g. to: out/sweep/{point})"
                }
            }
            if let problem { issues.append(PipelineIssue(path: ["stages", output.stage, output.field], message: problem, atKey: false)) }
        }
        return issues
    }

    /// The nearest directory above `url` that holds a publish marker.
    static func publishedAncestor(of url: URL) -> URL? {
        var parent = url.deletingLastPathComponent()
        while parent.path != "/" && !parent.path.isEmpty {
            if FileManager.default.fileExists(atPath: parent.appendingPathComponent(markerName).path) { return parent }
            parent = parent.deletingLastPathComponent()
        }
        return nil
    }

    /// A directory published by a version that wrote no marker is still recognised: its files
    /// are exactly the output of the stage's last cached run.
    static func holdsLastPublish(_ url: URL, pipeline: String, stage: String, cache: URL) -> Bool {
        guard case .foreignDirectory = occupant(url) else { return false }
        let store = CacheStore(root: cache)
        guard let last = store.stageRecord(pipeline: pipeline, stage: stage), let record = try? store.actionRecord(last.key),
              let entries = try? ContentDigest(memoDirectory: nil).manifest(of: url) else { return false }
        return ContentDigest.manifestDigest(entries.filter { $0.path != markerName }) == record.outputDigest
    }

    /// Recovers from publishes killed between their steps: for `destination`, a leftover
    /// `.<name>.old-PID` of a dead process is put back when the destination is missing (the kill
    /// fell between the two renames), and stale `.tmp-PID` / `.old-PID` siblings are removed.
    /// Returns what it did, one line each.
    public static func recoverLeftovers(of destination: URL) -> [String] {
        let parent = destination.deletingLastPathComponent()
        let name = destination.lastPathComponent
        guard let siblings = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return [] }
        var done: [String] = []
        for sibling in siblings.sorted() {
            for suffix in [".tmp-", ".old-"] {
                let prefix = "." + name + suffix
                guard sibling.hasPrefix(prefix), let pid = Int32(sibling.dropFirst(prefix.count)), !processIsAlive(pid) else { continue }
                let leftover = parent.appendingPathComponent(sibling)
                if suffix == ".old-", occupant(destination) == .nothing, rename(leftover.path, destination.path) == 0 {
                    done.append("restored \(Publisher.shown(destination)) from an interrupted publish")
                } else {
                    CacheStore.removeTree(leftover)
                    done.append("removed \(Publisher.shown(leftover)), left by an interrupted publish")
                }
            }
        }
        return done
    }

    static func processIsAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH)
    }
}
