import Crypto
import Foundation

/// AES-GCM under the key derived from `shared.redis.encryptionKey` (SHA-256 of the secret): what
/// the shared tier writes to Redis, sessions and cached payloads alike, is sealed with the Redis
/// key it is stored under as associated data, so a value copied to another key does not open,
/// and nothing in Redis is readable, or forgeable, without the encryption key.
struct Sealer: Sendable {
    private let key: SymmetricKey

    init(secret: String) {
        self.key = SymmetricKey(data: SHA256.hash(data: Data(secret.utf8)))
    }

    func seal(_ plain: [UInt8], for redisKey: String) -> [UInt8]? {
        guard let box = try? AES.GCM.seal(plain, using: key, authenticating: Data(redisKey.utf8)), let combined = box.combined else { return nil }
        return Array(combined)
    }

    /// What ``seal(_:for:)`` made, or nil (another key, another Redis key, tampered, garbage).
    func open(_ bytes: [UInt8], for redisKey: String) -> [UInt8]? {
        guard let box = try? AES.GCM.SealedBox(combined: Data(bytes)), let plain = try? AES.GCM.open(box, using: key, authenticating: Data(redisKey.utf8))
        else { return nil }
        return Array(plain)
    }
}
