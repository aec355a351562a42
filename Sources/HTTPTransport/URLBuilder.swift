/// Builds upstream URLs with every path segment and query value percent-encoded (RFC 3986).
public enum URLBuilder {
    /// Characters left as they are: RFC 3986 "unreserved".
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Percent-encodes every byte of `value` that is not unreserved, so that `/`, `?`, `&`,
    /// `%`, CR, LF and NUL can never change the shape of a URL.
    public static func percentEncode(_ value: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(value.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in value.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Joins a base URL (`https://host:port`, with or without a trailing slash), path segments
    /// (each encoded) and query items (each name and value encoded).
    public static func url(base: String, path segments: [String], query: [(String, String)] = []) -> String {
        var url = base
        while url.hasSuffix("/") { url.removeLast() }
        for segment in segments {
            url += "/" + percentEncode(segment)
        }
        if !query.isEmpty {
            url += "?" + formEncode(query)
        }
        return url
    }

    /// `name=value&…` with every name and value percent-encoded.
    public static func formEncode(_ items: [(String, String)]) -> String {
        items.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
    }
}
