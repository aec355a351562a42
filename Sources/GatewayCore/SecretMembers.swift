import Foundation

/// Removes secret members from JSON an upstream answered, at any depth, before it is cached or
/// sent: any member whose name (without case) contains `password` or `secret`, names a private
/// key, or is one of ``names`` — VSPC's `hashedPassword` and `credentials`, access keys, client
/// secrets, tokens — plus the operator's own (`passThrough.redact`). The answer is written again
/// with sorted keys (stable bytes, stable ETags).
public enum SecretMembers {
    /// Member names removed wherever they appear (lower case).
    public static let names: Set<String> = [
        "credentials", "accesskey", "accesskeyid", "secretkey", "clientsecret", "privatekey", "apikey", "token", "accesstoken",
        "refreshtoken", "access_token", "refresh_token", "sharedkey", "encryptionkey",
    ]

    /// Whether a member of this name is removed (`extra`: lower-case names the operator added).
    public static func isSecret(_ name: String, extra: Set<String> = []) -> Bool {
        let lower = name.lowercased()
        return lower.contains("password") || lower.contains("secret") || lower.contains("privatekey") || names.contains(lower) || extra.contains(lower)
    }

    /// `body` without its secret members; nil when it is not JSON (a pass-through answers only JSON).
    public static func redacted(_ body: [UInt8], extra: Set<String> = []) -> [UInt8]? {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else { return nil }
        let clean = strip(parsed, extra: extra)
        guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]) else {
            return nil
        }
        return Array(data)
    }

    static func strip(_ value: Any, extra: Set<String>) -> Any {
        if let object = value as? [String: Any] {
            var kept: [String: Any] = [:]
            kept.reserveCapacity(object.count)
            for (name, member) in object where !isSecret(name, extra: extra) { kept[name] = strip(member, extra: extra) }
            return kept
        }
        if let array = value as? [Any] { return array.map { strip($0, extra: extra) } }
        return value
    }
}
