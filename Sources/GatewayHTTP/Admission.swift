import GatewayAccess
import GatewayCore

/// Admission, for both front ends: what a request presents (a key, a token, a client
/// certificate; the client it comes from) → the caller, or the refusal to answer with. The
/// request pipeline calls it for every `/v1` request (without waiting on the hot path, waiting
/// where it must on the router), and the router's other routes that take a caller through
/// ``Authenticate``, so a request is admitted or refused alike whichever path frames it.
enum Admission {
    /// The credential headers of a request, as either path read them.
    struct Presented {
        var apiKey: String?
        var authorization: String?
        var forwardedFor: String?
        /// The status page's session (from its cookie): a credential of `GET /v1/status` only,
        /// weighed when the request presents no other.
        var statusSession: String? = nil
        /// A client id and its key (`POST /v1/auth/token`'s form, or HTTP Basic): the only
        /// credential weighed when present, as only that route reads it.
        var clientCredentials: ClientCredentials? = nil

        /// The credential a request presents: `X-API-Key` first, else an `Authorization: Bearer`
        /// value (`Bearer` with nothing after it presents an empty one); nil when it sends
        /// neither. Another scheme (`Basic`, `Negotiate`: what a browser or a proxy may add) is not
        /// a gateway credential, so it presents none: a client certificate still identifies the
        /// caller, and without one the answer is 401 `auth.required`.
        var key: String? {
            if let apiKey { return apiKey }
            guard let authorization else { return nil }
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard let scheme = parts.first, scheme.lowercased() == "bearer" else { return nil }
            guard parts.count == 2 else { return "" }
            return String(parts[1]).trimmingCharacters(in: .whitespaces)
        }

        /// Whether `key` (this request's ``key``) is a gateway or identity-provider token: three
        /// dot-separated parts, sent in `Authorization`.
        func isToken(_ key: String?) -> Bool {
            guard let key, authorization != nil else { return false }
            return AccessControl.looksLikeJWT(key)
        }
    }

    /// A client id and its key, as `client_credentials` presents them.
    struct ClientCredentials: Sendable {
        var id: String
        var secret: String
    }

    /// The client a request's failed authentications count against: the peer, or behind a
    /// trusted proxy the client `X-Forwarded-For` names (IPv6 by /64). `peerKey` is the peer's own
    /// key, worked out once per connection.
    static func client(_ presented: Presented, peer: String, peerKey: String? = nil, access: AccessControl) -> String {
        guard let forwardedFor = presented.forwardedFor else {
            return peerKey ?? access.clientAddresses.limiterKey(peer: peer, forwardedFor: nil)
        }
        return access.clientAddresses.limiterKey(peer: peer, forwardedFor: forwardedFor)
    }

    /// Decides without waiting: API keys, and gateway tokens verified on the spot. Nil when only
    /// the waiting path can decide (an identity provider's token; a client certificate that may
    /// stand for a caller); then nothing was recorded or taken.
    static func decide(_ presented: Presented, client: String, access: AccessControl) -> AccessControl.Outcome? {
        var memo = PresentedKeyMemo()
        return decide(presented, client: client, access: access, memo: &memo)
    }

    /// As ``decide(_:client:access:)``, on a connection that remembers the last API key it
    /// presented (the hot path's connections).
    static func decide(_ presented: Presented, client: String, access: AccessControl, memo: inout PresentedKeyMemo) -> AccessControl.Outcome? {
        if let credentials = presented.clientCredentials {
            return access.authenticate(clientID: credentials.id, secret: credentials.secret, address: client)
        }
        let key = presented.key
        if key == nil, access.directory.hasCertificateCallers { return nil }
        if presented.isToken(key), let key {
            return access.authenticateSynchronously(token: key, address: client)
        }
        return access.authenticate(apiKey: key, address: client, memo: &memo)
    }

    /// Decides, waiting where it must (the router): as ``decide(_:client:access:)``,
    /// then identity-provider tokens and client certificates.
    static func decide(
        _ presented: Presented, client: String, access: AccessControl, certificate: () async -> PeerCertificate?
    ) async -> AccessControl.Outcome {
        if let decided = decide(presented, client: client, access: access) { return decided }
        let key = presented.key
        if presented.isToken(key), let key { return await access.authenticate(token: key, address: client) }
        if let peer = await certificate() { return access.authenticate(certificate: peer, address: client) }
        return access.authenticate(apiKey: nil, address: client)
    }

    /// The caller an outcome admits (nil: no credentials at all), or the refusal to answer with.
    static func caller(_ outcome: AccessControl.Outcome) throws(GatewayError) -> Caller? {
        switch outcome {
        case .caller(let caller): return caller
        case .missing: return nil
        case .invalid: throw .authInvalid
        case .tooManyFailures(let seconds): throw .tooManyFailures(seconds)
        case .rateLimited(let seconds): throw .rateLimited(seconds)
        }
    }
}
