/// A tenant written as JSON without `JSONEncoder`: the same bytes the gateway's encoder writes
/// (sorted keys, explicit nulls, unescaped slashes, no whitespace) for a fraction of the work.
/// A single tenant's answer is encoded on every miss, and Foundation's encoder is costly there
/// (it boxes each value and sorts each object's keys). `TenantJSONTests` holds this to
/// `JSONEncoder`'s bytes for every kind of field and every character class.
extension Tenant {
    /// Appends this tenant as a JSON object to `out`.
    public func writeJSON(into out: inout [UInt8]) {
        // Keys in the byte order `.sortedKeys` gives them.
        out.append(contentsOf: #"{"backup":{"firstBackupAt":"#.utf8)
        JSONText.write(backup.firstBackupAt, into: &out)
        out.append(contentsOf: #","lastBackupAt":"#.utf8)
        JSONText.write(backup.lastBackupAt, into: &out)
        out.append(contentsOf: #","protected":"#.utf8)
        JSONText.write(backup.protected, into: &out)
        out.append(contentsOf: #"},"description":"#.utf8)
        JSONText.write(description, into: &out)
        out.append(contentsOf: #","details":{"#.utf8)
        var first = true
        for key in details.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let value = details[key] else { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONText.write(key, into: &out)
            out.append(UInt8(ascii: ":"))
            value.writeJSON(into: &out)
        }
        out.append(contentsOf: #"},"enabled":"#.utf8)
        JSONText.write(enabled, into: &out)
        out.append(contentsOf: #","id":"#.utf8)
        JSONText.write(id, into: &out)
        out.append(contentsOf: #","kind":"#.utf8)
        JSONText.write(kind.rawValue, into: &out)
        out.append(contentsOf: #","links":{"#.utf8)
        if let customerLink {
            out.append(contentsOf: #""customer":"#.utf8)
            JSONText.write(customerLink, into: &out)
            out.append(UInt8(ascii: ","))
        }
        out.append(contentsOf: #""self":"#.utf8)
        JSONText.write(selfLink, into: &out)
        out.append(contentsOf: #"},"name":"#.utf8)
        JSONText.write(name, into: &out)
        out.append(contentsOf: #","source":{"id":"#.utf8)
        JSONText.write(source.id, into: &out)
        out.append(contentsOf: #","product":"#.utf8)
        JSONText.write(source.product.rawValue, into: &out)
        out.append(contentsOf: #","upstream":"#.utf8)
        JSONText.write(source.upstream, into: &out)
        out.append(contentsOf: #"},"type":"#.utf8)
        JSONText.write(type, into: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension DetailValue {
    /// Appends this value as JSON to `out`.
    public func writeJSON(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): JSONText.write(value, into: &out)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .string(let value): JSONText.write(value, into: &out)
        case .strings(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONText.write(value, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}

/// JSON scalars as the gateway's encoder writes them.
public enum JSONText {
    /// A string: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`,
    /// everything else (slashes, non-ASCII) as its UTF-8 bytes.
    public static func write(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most text needs no escape: then its bytes go in at once.
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    public static func write(_ text: String?, into out: inout [UInt8]) {
        guard let text else { return out.append(contentsOf: "null".utf8) }
        write(text, into: &out)
    }

    public static func write(_ value: Bool?, into out: inout [UInt8]) {
        guard let value else { return out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: (value ? "true" : "false").utf8)
    }
}
