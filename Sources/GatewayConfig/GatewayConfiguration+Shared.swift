public import GatewaySecrets
public import SharedTier

/// `shared.redis`: where the replicas' shared tier is, and the secrets it needs.
public struct SharedRedisConfiguration: Sendable, Equatable {
    /// Host, port, database, key prefix and timeout (the password is resolved at start).
    public var settings: RedisSettings
    public var password: SecretReference?
    /// What the shared sessions are encrypted with (AES-GCM): without it nothing in Redis is usable.
    public var encryptionKey: SecretReference
}

extension GatewayConfiguration {
    static func sharedRedis(_ shared: ConfigNode, environment: [String: String]) throws -> SharedRedisConfiguration? {
        guard !shared.isMissing else { return nil }
        shared.requireKeys(["redis"])
        let node = shared.child("redis")
        guard !node.isMissing else { return nil }
        node.requireMapping()
        node.requireKeys(["url", "password", "keyPrefix", "timeout", "heartbeat", "encryptionKey"])
        var settings: RedisSettings
        switch RedisSettings.parse(node.child("url").string()) {
        case .success(let parsed): settings = parsed
        case .failure(let error): throw node.child("url").error(error.reason)
        }
        settings.keyPrefix = node.child("keyPrefix").string(default: "veeam-gateway:")
        guard !settings.keyPrefix.isEmpty, settings.keyPrefix.count <= 64, !settings.keyPrefix.contains(where: { $0.isWhitespace }) else {
            throw node.child("keyPrefix").error("must be 1-64 characters without spaces")
        }
        settings.timeout = node.child("timeout").duration(default: .milliseconds(50))
        guard settings.timeout >= .milliseconds(1), settings.timeout <= .seconds(5) else {
            throw node.child("timeout").error("must be from 1ms to 5s (a replica falls back to its own behaviour after it)")
        }
        settings.heartbeat = node.child("heartbeat").duration(default: .seconds(5))
        guard settings.heartbeat >= .milliseconds(100), settings.heartbeat <= .seconds(60) else {
            throw node.child("heartbeat").error("must be from 100ms to 60s (a subscription silent for three of them is reconnected)")
        }
        let password = node.child("password").isMissing ? nil : try secretReference(node.child("password"), environment: environment)
        guard !node.child("encryptionKey").isMissing else {
            throw node.child("encryptionKey").error("is required: the shared sessions are encrypted with it ({env: NAME} or {file: PATH})")
        }
        let key = try secretReference(node.child("encryptionKey"), environment: environment)
        if let value = try? key.resolve(environment: environment), value.value.utf8.count < 32 {
            throw node.child("encryptionKey").error("must be at least 32 bytes")
        }
        return SharedRedisConfiguration(settings: settings, password: password, encryptionKey: key)
    }
}
