import Foundation
import Yams

/// An error in the configuration: names the file, the key (a path such as
/// `upstreams[1].timeouts.total`) and what is wrong. Never holds a secret value.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var key: String
    public var message: String
    public init(file: String, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }
    public var description: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}

/// A YAML node with its path, read with typed accessors that throw ``ConfigError``.
struct ConfigNode {
    let node: Node?
    let path: String
    let file: String
    /// Environment overrides by variable name (`VEEAM_GATEWAY__LISTEN__PORT`).
    let overrides: [String: String]

    /// `upstreams[0].baseURL` → `VEEAM_GATEWAY__UPSTREAMS__0__BASEURL`.
    static func environmentName(for path: String) -> String {
        "VEEAM_GATEWAY__" + path.uppercased().replacingOccurrences(of: "[", with: "__").replacingOccurrences(of: "]", with: "")
            .replacingOccurrences(of: ".", with: "__")
    }

    func child(_ key: String) -> ConfigNode {
        let childPath = path.isEmpty ? key : path + "." + key
        if let value = overrides[Self.environmentName(for: childPath)] {
            return ConfigNode(node: .scalar(.init(value)), path: childPath, file: file, overrides: overrides)
        }
        guard case .mapping(let mapping)? = node else { return ConfigNode(node: nil, path: childPath, file: file, overrides: overrides) }
        let value = mapping.first { $0.key.string == key }?.value
        return ConfigNode(node: value, path: childPath, file: file, overrides: overrides)
    }

    var isMissing: Bool {
        guard let node else { return true }
        if case .scalar(let scalar) = node, scalar.tag.description == Tag.Name.null.rawValue || scalar.string == "~" || (scalar.string.isEmpty && scalar.style == .plain) {
            return true
        }
        return false
    }

    func error(_ message: String) -> ConfigError { ConfigError(file: file, key: path, message: message) }

    /// Refuses keys other than `allowed` (catches typos such as `baseUrl`).
    func requireKeys(_ allowed: Set<String>) throws {
        guard case .mapping(let mapping)? = node else { return }
        var seen = Set<String>()
        for (key, _) in mapping {
            if let name = key.string, !seen.insert(name).inserted {
                throw ConfigError(file: file, key: path.isEmpty ? name : path + "." + name, message: "appears twice")
            }
            guard let name = key.string, allowed.contains(name) else {
                let suggestion = allowed.first { $0.lowercased() == (key.string ?? "").lowercased() }.map { " (did you mean \($0)?)" } ?? ""
                throw ConfigError(
                    file: file, key: path.isEmpty ? (key.string ?? "?") : path + "." + (key.string ?? "?"),
                    message: "unknown key\(suggestion); allowed here: \(allowed.sorted().joined(separator: ", "))")
            }
        }
    }

    func requireMapping() throws {
        guard case .mapping? = node else { throw error("must be a mapping (key: value)") }
    }

    func string() throws -> String {
        guard !isMissing else { throw error("is required") }
        guard case .scalar(let scalar)? = node else { throw error("must be a string") }
        return scalar.string
    }

    func string(default value: String) throws -> String { isMissing ? value : try string() }
    func optionalString() throws -> String? { isMissing ? nil : try string() }

    /// A path to a file this process can read, when the key is set.
    func optionalReadableFile() throws -> String? {
        guard let path = try optionalString() else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else { throw error("cannot read \(path)") }
        return path
    }

    func int(default value: Int? = nil, range: ClosedRange<Int>? = nil) throws -> Int {
        if isMissing, let value { return value }
        guard let parsed = Int(try string()) else { throw error("must be a whole number") }
        if let range, !range.contains(parsed) { throw error("must be between \(range.lowerBound) and \(range.upperBound)") }
        return parsed
    }

    func bool(default value: Bool) throws -> Bool {
        if isMissing { return value }
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("must be true or false")
        }
    }

    /// The longest duration any key takes (a year): larger values are refused, not wrapped.
    static let maxDurationMilliseconds: Double = 365 * 24 * 3600 * 1000
    /// The largest byte size any key takes (1 TiB).
    static let maxBytes: Double = 0x1p40

    /// `250ms`, `2s`, `10m`, `1h`, or a plain number of seconds; at most a year.
    func duration(default value: Duration) throws -> Duration {
        if isMissing { return value }
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var milliseconds: Double?
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)) { milliseconds = (number * factor * 1000).rounded() }
            break
        }
        if milliseconds == nil, let seconds = Double(text) { milliseconds = (seconds * 1000).rounded() }
        guard let milliseconds, !milliseconds.isNaN, milliseconds >= 0 else { throw error("must be a duration such as 500ms, 2s, 10m or 1h") }
        guard milliseconds <= Self.maxDurationMilliseconds, let whole = Int64(exactly: milliseconds) else {
            throw error("must be at most a year (8760h)")
        }
        return .milliseconds(whole)
    }

    /// `16MiB`, `64MB`, `512KiB`, or a plain number of bytes.
    func byteSize(default value: Int) throws -> Int {
        if isMissing { return value }
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        var bytes: Double?
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)) { bytes = (number * Double(factor)).rounded(.down) }
            break
        }
        if bytes == nil, let number = Int(text) { bytes = Double(number) }
        guard let bytes, !bytes.isNaN, bytes > 0 else { throw error("must be a size such as 512KiB, 16MiB or a number of bytes") }
        guard bytes <= Self.maxBytes, let whole = Int(exactly: bytes) else { throw error("must be at most 1TiB") }
        return whole
    }

    func array() throws -> [ConfigNode] {
        if isMissing { return [] }
        guard case .sequence(let sequence)? = node else { throw error("must be a list") }
        return sequence.enumerated().map { ConfigNode(node: $0.element, path: "\(path)[\($0.offset)]", file: file, overrides: overrides) }
    }
}
