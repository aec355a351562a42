#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its bytes (4 or 16), parsed by the system's `inet_pton`.
public struct IPAddress: Sendable, Hashable {
    /// 4 bytes (IPv4) or 16 (IPv6). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is IPv4.
    public let bytes: [UInt8]

    public init?(_ text: some StringProtocol) {
        var text = String(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }  // fe80::1%eth0
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1, let address = IPAddress(bytes: withUnsafeBytes(of: &v6) { Array($0) }) else { return nil }
        self = address
    }

    /// An address from its 4 or 16 bytes (an IPv4-mapped IPv6 address becomes IPv4); nil for another length.
    public init?(bytes all: [UInt8]) {
        switch all.count {
        case 4:
            bytes = all
        case 16 where all[0..<10].allSatisfy({ $0 == 0 }) && all[10] == 0xFF && all[11] == 0xFF:
            bytes = Array(all[12..<16])
        case 16:
            bytes = all
        default:
            return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// What the failed-authentication limiter counts: an IPv4 address whole, an IPv6 address by
    /// its /64 (one host usually holds a whole /64, so counting single addresses would let it
    /// rotate through 2^64 of them).
    public var limiterKey: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 8, by: 2) { groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16)) }
        return groups.joined(separator: ":") + "::/64"
    }
}

/// A range of addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    /// nil when `text` is not an address with an optional `/prefix` within its family's bits.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        network = address
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var left = prefixLength
        for (a, b) in zip(address.bytes, network.bytes) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
            if a & mask != b & mask { return false }
            left -= 8
        }
        return true
    }

    public var description: String { "\(network.limiterKey)/\(prefixLength)" }
}

/// Which client a request counts against for failed authentication: the peer, unless the peer
/// is a trusted proxy (`listen.trustedProxies`); then the nearest address in `X-Forwarded-For`
/// that is not itself a trusted proxy (read from the right: the entries to its left are the
/// client's word, not the proxies'). Without trusted proxies `X-Forwarded-For` is ignored, so a
/// client cannot pick the address it is counted under.
public struct ClientAddresses: Sendable {
    public let trustedProxies: [AddressRange]

    public init(trustedProxies: [AddressRange] = []) {
        self.trustedProxies = trustedProxies
    }

    func isTrusted(_ address: IPAddress) -> Bool { trustedProxies.contains { $0.contains(address) } }

    /// The limiter key of the client behind `peer`.
    public func limiterKey(peer: String, forwardedFor: String?) -> String {
        guard let address = IPAddress(peer) else { return peer }
        guard !trustedProxies.isEmpty, isTrusted(address), let forwardedFor else { return address.limiterKey }
        var nearest = address
        for entry in forwardedFor.split(separator: ",").reversed() {
            // An entry that is not an address ends the trusted chain: count the last good hop.
            guard let hop = IPAddress(entry.trimmingBlanks()) else { break }
            nearest = hop
            if !isTrusted(hop) { break }
        }
        return nearest.limiterKey
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (optional whitespace around list elements).
    fileprivate func trimmingBlanks() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
