import Crypto
import Foundation

/// Webhook signatures as the Standard Webhooks specification writes them: the secret is
/// `whsec_` and base64 (the bytes after decoding are the HMAC key); each delivery carries
/// `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, `v1,` and the
/// base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
public enum WebhookSigning {
    /// The key of a secret written `whsec_<base64>` (or bare base64); nil when it is not one,
    /// or shorter than 24 bytes (the specification asks for 24 to 64).
    public static func key(fromSecret secret: String) -> [UInt8]? {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        guard let data = Data(base64Encoded: encoded), (24...64).contains(data.count) else { return nil }
        return Array(data)
    }

    /// `v1,<base64 signature>` of one delivery.
    public static func signature(key: [UInt8], id: String, timestamp: Int, body: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The three header fields of one delivery, in order.
    public static func headers(key: [UInt8], id: String, timestamp: Int, body: [UInt8]) -> [(name: String, value: String)] {
        [
            ("webhook-id", id), ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", signature(key: key, id: id, timestamp: timestamp, body: body)),
        ]
    }
}
