import Foundation
import Yams

/// An error in the configuration: names the file, the key (a path such as
/// `upstreams[1].timeouts.total`) and what is wrong. Never holds a secret value.
///
/// Reading a file goes on past an error, so one error holds every error found in the file:
/// `key` and `message` are the first, ``further`` the others in file order, and ``all`` lists
/// them together (what `check-config`, a refused start and a refused reload print).
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var key: String
    public var message: String
    /// The other errors found in the same file, after this one.
    public var further: [ConfigError] = []
    public init(file: String, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }
    /// This error and the further ones, each without further errors of its own.
    public var all: [ConfigError] {
        var first = self
        first.further = []
        return [first] + further
    }
    /// One line per error.
    public var description: String { all.map(\.line).joined(separator: "\n") }
    private var line: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}

/// The errors found while reading one file. A reader notes an error and goes on with a
/// fallback value, so one pass finds them all; a key keeps only its first error (what follows
/// from a bad value at the same key says nothing new).
final class ConfigDiagnostics {
    private(set) var errors: [ConfigError] = []
    private var keys = Set<String>()
    /// Upstreams named in the file whose definitions have errors: a reference to one is not
    /// reported again as naming no upstream.
    var unreadableUpstreams = Set<String>()
    /// Callers whose entries have errors, likewise.
    var unreadableCallers = Set<String>()

    func note(_ error: ConfigError) {
        for error in error.all where keys.insert(error.key).inserted || error.key.isEmpty {
            errors.append(error)
        }
    }

    /// Every error noted, as one ``ConfigError``; nil when there is none.
    var combined: ConfigError? {
        guard var first = errors.first else { return nil }
        first.further = Array(errors.dropFirst())
        return first
    }
}

/// A YAML node with its path, read with typed accessors. An accessor that finds a wrong value
/// notes a ``ConfigError`` in ``diagnostics`` and returns its default (or an empty value), so
/// reading goes on; a check written in a reader throws, and ``collect(_:_:)`` notes it.
struct ConfigNode {
    let node: Node?
    let path: String
    let file: String
    /// Environment overrides by variable name (`VEEAM_GATEWAY__LISTEN__PORT`).
    let overrides: [String: String]
    let diagnostics: ConfigDiagnostics

    /// Reads one part of the file: what it throws is noted and `fallback` returned.
    func collect<T>(_ fallback: @autoclosure () -> T, _ read: () throws -> T) -> T {
        do {
            return try read()
        } catch let error as ConfigError {
            diagnostics.note(error)
        } catch {
            diagnostics.note(self.error("\(error)"))
        }
        return fallback()
    }

    /// Notes an error at this key.
    func note(_ message: String) { diagnostics.note(error(message)) }

    /// `upstreams[0].baseURL` → `VEEAM_GATEWAY__UPSTREAMS__0__BASEURL`.
    static func environmentName(for path: String) -> String {
        "VEEAM_GATEWAY__" + path.uppercased().replacingOccurrences(of: "[", with: "__").replacingOccurrences(of: "]", with: "")
            .replacingOccurrences(of: ".", with: "__")
    }

    func child(_ key: String) -> ConfigNode {
        let childPath = path.isEmpty ? key : path + "." + key
        if let value = overrides[Self.environmentName(for: childPath)] {
            return ConfigNode(node: .scalar(.init(value)), path: childPath, file: file, overrides: overrides, diagnostics: diagnostics)
        }
        guard case .mapping(let mapping)? = node else { return ConfigNode(node: nil, path: childPath, file: file, overrides: overrides, diagnostics: diagnostics) }
        let value = mapping.first { $0.key.string == key }?.value
        return ConfigNode(node: value, path: childPath, file: file, overrides: overrides, diagnostics: diagnostics)
    }

    var isMissing: Bool {
        guard let node else { return true }
        if case .scalar(let scalar) = node, scalar.tag.description == Tag.Name.null.rawValue || scalar.string == "~" || (scalar.string.isEmpty && scalar.style == .plain) {
            return true
        }
        return false
    }

    func error(_ message: String) -> ConfigError { ConfigError(file: file, key: path, message: message) }

    /// Refuses keys other than `allowed` (catches typos such as `baseUrl`), each one noted.
    func requireKeys(_ allowed: Set<String>) {
        guard case .mapping(let mapping)? = node else { return }
        var seen = Set<String>()
        for (key, _) in mapping {
            let name = key.string ?? "?"
            let keyPath = path.isEmpty ? name : path + "." + name
            if key.string != nil, !seen.insert(name).inserted {
                diagnostics.note(ConfigError(file: file, key: keyPath, message: "appears twice"))
            } else if key.string == nil || !allowed.contains(name) {
                let suggestion = allowed.first { $0.lowercased() == name.lowercased() }.map { " (did you mean \($0)?)" } ?? ""
                diagnostics.note(
                    ConfigError(file: file, key: keyPath, message: "unknown key\(suggestion); allowed here: \(allowed.sorted().joined(separator: ", "))"))
            }
        }
    }

    /// Whether this is a mapping; when it is not, the error is noted.
    @discardableResult
    func requireMapping() -> Bool {
        guard case .mapping? = node else {
            note("must be a mapping (key: value)")
            return false
        }
        return true
    }

    /// The value as text; a missing or non-text value is noted and reads as "".
    func string() -> String {
        guard !isMissing else {
            note("is required")
            return ""
        }
        guard case .scalar(let scalar)? = node else {
            note("must be a string")
            return ""
        }
        return scalar.string
    }

    func string(default value: String) -> String { isMissing ? value : string() }
    func optionalString() -> String? { isMissing ? nil : string() }

    /// A path to a file this process can read, when the key is set (one it cannot read is noted: nil).
    func optionalReadableFile() -> String? {
        guard let path = optionalString() else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else {
            note("cannot read \(path)")
            return nil
        }
        return path
    }

    /// A whole number (in `range`); a wrong one is noted and reads as the default.
    func int(default value: Int? = nil, range: ClosedRange<Int>? = nil) -> Int {
        if isMissing, let value { return value }
        let fallback = value ?? range?.lowerBound ?? 0
        let text = string()
        guard !text.isEmpty || !isMissing else { return fallback }
        guard let parsed = Int(text) else {
            note("must be a whole number")
            return fallback
        }
        if let range, !range.contains(parsed) {
            note("must be between \(range.lowerBound) and \(range.upperBound)")
            return fallback
        }
        return parsed
    }

    /// true/false (yes/no, on/off); a wrong one is noted and reads as the default.
    func bool(default value: Bool) -> Bool {
        if isMissing { return value }
        switch string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            note("must be true or false")
            return value
        }
    }

    /// The longest duration any key takes (a year): larger values are refused, not wrapped.
    static let maxDurationMilliseconds: Double = 365 * 24 * 3600 * 1000
    /// The largest byte size any key takes (1 TiB).
    static let maxBytes: Double = 0x1p40

    /// `250ms`, `2s`, `10m`, `1h`, or a plain number of seconds; at most a year. A wrong one is
    /// noted and reads as the default.
    func duration(default value: Duration) -> Duration {
        if isMissing { return value }
        let text = string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var milliseconds: Double?
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)) { milliseconds = (number * factor * 1000).rounded() }
            break
        }
        if milliseconds == nil, let seconds = Double(text) { milliseconds = (seconds * 1000).rounded() }
        guard let milliseconds, !milliseconds.isNaN, milliseconds >= 0 else {
            note("must be a duration such as 500ms, 2s, 10m or 1h")
            return value
        }
        guard milliseconds <= Self.maxDurationMilliseconds, let whole = Int64(exactly: milliseconds) else {
            note("must be at most a year (8760h)")
            return value
        }
        return .milliseconds(whole)
    }

    /// `16MiB`, `64MB`, `512KiB`, or a plain number of bytes. A wrong one is noted and reads as
    /// the default.
    func byteSize(default value: Int) -> Int {
        if isMissing { return value }
        let text = string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        var bytes: Double?
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)) { bytes = (number * Double(factor)).rounded(.down) }
            break
        }
        if bytes == nil, let number = Int(text) { bytes = Double(number) }
        guard let bytes, !bytes.isNaN, bytes > 0 else {
            note("must be a size such as 512KiB, 16MiB or a number of bytes")
            return value
        }
        guard bytes <= Self.maxBytes, let whole = Int(exactly: bytes) else {
            note("must be at most 1TiB")
            return value
        }
        return whole
    }

    /// The items of a list (none when the key is absent; a value that is not a list is noted).
    func array() -> [ConfigNode] {
        if isMissing { return [] }
        guard case .sequence(let sequence)? = node else {
            note("must be a list")
            return []
        }
        return sequence.enumerated().map {
            ConfigNode(node: $0.element, path: "\(path)[\($0.offset)]", file: file, overrides: overrides, diagnostics: diagnostics)
        }
    }
}
