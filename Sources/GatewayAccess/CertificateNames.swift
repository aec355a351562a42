import GatewaySecrets

/// A distinguished name as a sequence of relative distinguished names (RDNs), in the
/// certificate's (ASN.1) order, each RDN a set of attribute type and value pairs. Bindings are
/// written as RFC 4514 strings, which list the RDNs in reverse; both sides are brought to this
/// form, so two names are equal only when they have the same RDNs in the same order, each with
/// the same attributes, whatever the spelling of the types (`CN`, `cn`, `2.5.4.3`), the escaping
/// (`\,`, `\2C`) or the spaces around separators.
public struct DistinguishedNameValue: Sendable, Hashable, CustomStringConvertible {
    /// One attribute: its type as a dotted OID, its value as compared.
    public struct Attribute: Sendable, Hashable, Comparable {
        public var type: String
        public var value: String

        /// `value` is brought to the form `caseIgnoreMatch` (RFC 4517) compares: leading and
        /// trailing spaces dropped, inner runs of spaces as one, case folded.
        public init(type: String, value: String) {
            self.type = type
            self.value = Self.prepared(value)
        }

        static func prepared(_ value: String) -> String {
            var out = ""
            var pendingSpace = false
            for character in value {
                if character == " " {
                    pendingSpace = !out.isEmpty
                    continue
                }
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(character)
            }
            return out.lowercased()
        }

        public static func < (a: Attribute, b: Attribute) -> Bool { (a.type, a.value) < (b.type, b.value) }
    }

    /// The RDNs in ASN.1 order (the first is the most significant, e.g. the country); each RDN's
    /// attributes sorted (a set).
    public var rdns: [[Attribute]]

    public init(rdns: [[Attribute]]) {
        self.rdns = rdns.map { $0.sorted() }
    }

    public var description: String {
        rdns.reversed().map { $0.map { "\($0.type)=\($0.value)" }.joined(separator: "+") }.joined(separator: ",")
    }

    /// The short names RFC 4514 and OpenSSL print, by their OID.
    static let shortNames: [String: String] = [
        "cn": "2.5.4.3", "sn": "2.5.4.4", "serialnumber": "2.5.4.5", "c": "2.5.4.6", "l": "2.5.4.7", "st": "2.5.4.8", "s": "2.5.4.8",
        "street": "2.5.4.9", "o": "2.5.4.10", "ou": "2.5.4.11", "title": "2.5.4.12", "givenname": "2.5.4.42", "initials": "2.5.4.43",
        "generationqualifier": "2.5.4.44", "dnqualifier": "2.5.4.46", "pseudonym": "2.5.4.65", "dc": "0.9.2342.19200300.100.1.25",
        "uid": "0.9.2342.19200300.100.1.1", "emailaddress": "1.2.840.113549.1.9.1", "email": "1.2.840.113549.1.9.1",
    ]

    /// Why an RFC 4514 string could not be read.
    public struct ParseError: Error, Sendable, Equatable {
        public var reason: String
    }

    /// Parses an RFC 4514 string (`CN=portal,O=Acme\, Inc.,C=DE`): RDNs separated by `,` (or `;`),
    /// multi-valued ones by `+`, types as short names or dotted OIDs, values with `\` escapes of
    /// special characters or two hex digits (UTF-8 bytes), or `#` and hex (kept as written).
    public static func parse(rfc4514 text: String) throws(ParseError) -> DistinguishedNameValue {
        let bytes = Array(text.utf8)
        var index = 0
        var rdns: [[Attribute]] = []
        var current: [Attribute] = []
        func skipSpaces() { while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 } }
        guard !bytes.isEmpty else { throw ParseError(reason: "the name is empty") }
        while true {
            skipSpaces()
            // The attribute type.
            let typeStart = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "=") { index += 1 }
            guard index < bytes.count else { throw ParseError(reason: "an attribute without '='") }
            let rawType = String(decoding: bytes[typeStart..<index], as: UTF8.self).trimmingSpaces().lowercased()
            let type: String
            if let oid = shortNames[rawType] {
                type = oid
            } else if !rawType.isEmpty, rawType.allSatisfy({ $0 == "." || $0.isASCII && $0.isNumber }), !rawType.hasPrefix("."), !rawType.hasSuffix(".") {
                type = rawType.hasPrefix("oid.") ? String(rawType.dropFirst(4)) : rawType
            } else {
                throw ParseError(reason: "unknown attribute type '\(rawType)' (use a dotted OID)")
            }
            index += 1  // '='
            skipSpaces()
            // The value, up to an unescaped separator.
            var value: [UInt8] = []
            var trailingSpaces = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") || byte == UInt8(ascii: ";") || byte == UInt8(ascii: "+") { break }
                if byte == UInt8(ascii: "\\") {
                    guard index + 1 < bytes.count else { throw ParseError(reason: "a '\\' at the end") }
                    let next = bytes[index + 1]
                    if let high = Hex.value(ofDigit: next), index + 2 < bytes.count, let low = Hex.value(ofDigit: bytes[index + 2]) {
                        value.append(high << 4 | low)
                        index += 3
                    } else {
                        value.append(next)
                        index += 2
                    }
                    trailingSpaces = 0
                    continue
                }
                value.append(byte)
                trailingSpaces = byte == UInt8(ascii: " ") ? trailingSpaces + 1 : 0
                index += 1
            }
            value.removeLast(trailingSpaces)  // unescaped trailing spaces are not part of it
            current.append(Attribute(type: type, value: String(decoding: value, as: UTF8.self)))
            guard index < bytes.count else { break }
            let separator = bytes[index]
            index += 1
            if separator != UInt8(ascii: "+") {
                rdns.append(current)
                current = []
            }
            guard index < bytes.count else { throw ParseError(reason: "a separator at the end") }
        }
        rdns.append(current)
        // RFC 4514 writes the last RDN first.
        return DistinguishedNameValue(rdns: rdns.reversed())
    }
}

/// A subject alternative name, kept with its kind: a DNS name never matches an e-mail address or
/// a URI that happens to be spelled the same.
public enum AlternativeName: Sendable, Hashable, CustomStringConvertible {
    /// Compared without case.
    case dns(String)
    /// The domain part compared without case, the local part as written.
    case email(String)
    /// Compared as written.
    case uri(String)
    /// The address bytes (4 or 16).
    case ip([UInt8])

    /// The name in the form it is compared in.
    public var normalized: AlternativeName {
        switch self {
        case .dns(let name): return .dns(name.lowercased().trimmingSuffix("."))
        case .email(let address):
            guard let at = address.lastIndex(of: "@") else { return .email(address) }
            return .email(String(address[..<at]) + "@" + address[address.index(after: at)...].lowercased())
        case .ip(let bytes): return .ip(IPAddress(bytes: bytes)?.bytes ?? bytes)
        case .uri: return self
        }
    }

    public var description: String {
        switch self {
        case .dns(let name): return "dns:\(name)"
        case .email(let address): return "email:\(address)"
        case .uri(let uri): return "uri:\(uri)"
        case .ip(let bytes):
            if bytes.count == 4 { return "ip:" + bytes.map(String.init).joined(separator: ".") }
            return "ip:" + stride(from: 0, to: bytes.count, by: 2).map { String(Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
    }

    /// A binding's `san` value by its form: an IP address, a URI (`scheme:` with `//` or `urn:`),
    /// an e-mail address (with `@`), else a DNS name. `dns`, `email`, `uri` and `ip` say it outright.
    public static func inferred(_ text: String) -> AlternativeName {
        if let address = IPAddress(text) { return .ip(address.bytes) }
        if text.contains("://") || text.lowercased().hasPrefix("urn:") { return .uri(text) }
        if text.contains("@") { return .email(text) }
        return .dns(text)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }

    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
