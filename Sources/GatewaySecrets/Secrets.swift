public import Foundation

/// A secret value. It never prints: `description` and `debugDescription` are redacted, so a
/// secret that reaches a log line or an error message by mistake shows as `<redacted>`.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The value; read it only where it goes on the wire.
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// Where a secret comes from: never the config file itself, never the caller.
public enum SecretReference: Sendable, Equatable, CustomStringConvertible {
    /// An environment variable.
    case env(String)
    /// A file (e.g. a mounted Docker/Kubernetes secret); one trailing newline is dropped.
    case file(String)

    public var description: String {
        switch self {
        case .env(let name): return "env:\(name)"
        case .file(let path): return "file:\(path)"
        }
    }

    /// Reads the secret. The error names the reference, never a value.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Secret {
        switch self {
        case .env(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw SecretError(reference: self, reason: "environment variable \(name) is not set or empty")
            }
            return Secret(value)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SecretError(reference: self, reason: "cannot read \(path)")
            }
            let text = String(decoding: data, as: UTF8.self).droppingLineEnd()
            guard !text.isEmpty else { throw SecretError(reference: self, reason: "\(path) is empty") }
            return Secret(text)
        }
    }
}

/// A secret reference that cannot be resolved.
public struct SecretError: Error, Sendable, CustomStringConvertible {
    public var reference: SecretReference
    public var reason: String
    public var description: String { "secret \(reference): \(reason)" }
}

/// An upstream account. The password is resolved when the broker logs in, so a rotated secret
/// file is picked up at the next login.
public struct Credential: Sendable, Equatable {
    public var username: String
    public var password: SecretReference
    public init(username: String, password: SecretReference) {
        self.username = username
        self.password = password
    }
}

extension String {
    /// The string without one final line ending (`\n`, `\r\n` or `\r`), as editors and `echo`
    /// leave in a file. Works on scalars: `"\r\n"` is one `Character`, and removing two
    /// characters there would take a character of the secret with it.
    public func droppingLineEnd() -> String {
        var scalars = unicodeScalars[...]
        if scalars.last == "\n" { scalars = scalars.dropLast() }
        if scalars.last == "\r" { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}

/// Bytes as lowercase hex: how the gateway writes a hash it names something by (an API key's
/// `sha256:…`, a status session, an account in Redis, a config file's digest, an ETag), so that
/// every such name is spelled one way.
public enum Hex {
    /// Inlinable, so each caller gets it specialised for its sequence (a digest, a slice of one,
    /// an array): the generic version through a module boundary cost more than the hash it
    /// spells, on every ETag.
    @inlinable
    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digit(byte >> 4))
            text.append(digit(byte & 0x0F))
        }
        return String(decoding: text, as: UTF8.self)
    }

    @inlinable
    static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }

    /// The value of one hex digit, either case; nil for another byte.
    public static func value(ofDigit byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The bytes `text` spells (an even number of hex digits, either case); nil otherwise.
    public static func bytes(_ text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(ofDigit: digits[index]), let low = value(ofDigit: digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
