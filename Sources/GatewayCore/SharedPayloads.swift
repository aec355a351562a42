import Foundation
public import ResponseCache
import TenantModel
public import GatewayClock

/// How a ``CachedPayload`` is written to the shared cache level and read back by another
/// replica: a one-byte layout version, then JSON. A single tenant is its response body as sent
/// (`{"data": tenant}`): its bytes, and so its ETag, are the same on every replica. A list is its
/// upstream, time of fetching and tenants. A partial list is never stored (it is not cached at
/// all). What another layout wrote (an older or newer replica during a rolling upgrade) reads as
/// nothing: the replica fills it itself.
public enum SharedPayloads {
    static let tenantLayout: UInt8 = 1
    static let listLayout: UInt8 = 2
    static let passThroughLayout: UInt8 = 3

    struct StoredTenant: Codable {
        var data: Tenant
    }

    struct StoredList: Codable {
        var upstream: String
        var fetchedAt: String
        var tenants: [Tenant]
    }

    /// The shared cache level's fills over `level`, made once per process (its counters outlive
    /// reloads), writing and reading entries as this type says.
    public static func fills(over level: any SharedCacheLevel, clock: GatewayClock) -> SharedFills<CachedPayload> {
        SharedFills(level: level, clock: clock, encode: encode, decode: decode)
    }

    /// What is written to the shared level for `fill`; nil when it is not to be shared.
    public static func encode(_ fill: CacheFill<CachedPayload>) -> [UInt8]? {
        switch fill.value {
        case .tenant(let entry):
            let body = entry.body
            let fetchedAt = entry.fetchedAt
            // fetchedAt is ASCII (RFC 3339): its length fits one byte.
            let stamp = Array(fetchedAt.utf8)
            guard stamp.count < 256 else { return nil }
            return [tenantLayout, UInt8(stamp.count)] + stamp + body
        case .customers:
            // Each replica joins its own (the join is made of entries it shares already).
            return nil
        case .passThrough(let body):
            // Its purge tags travel with it (the upstream's, and the organization's for the
            // tenant form): the body alone does not say them.
            let tags = Array(fill.tags.sorted().joined(separator: "\n").utf8)
            guard tags.count < 1 << 16 else { return nil }
            return [passThroughLayout, UInt8(tags.count >> 8), UInt8(tags.count & 0xFF)] + tags + body
        case .list(let tenants, let fetchedAt, let partialFailure):
            guard partialFailure == nil, let upstream = CacheKeys.upstream(ofTags: fill.tags),
                let json = try? GatewayJSON.encode(StoredList(upstream: upstream, fetchedAt: fetchedAt, tenants: tenants))
            else { return nil }
            return [listLayout] + json
        }
    }

    /// The entry `encode` wrote; nil for another layout, or bytes that do not read.
    public static func decode(_ bytes: [UInt8]) -> CacheFill<CachedPayload>? {
        guard let layout = bytes.first else { return nil }
        switch layout {
        case tenantLayout:
            guard bytes.count > 2 else { return nil }
            let stampEnd = 2 + Int(bytes[1])
            guard bytes.count > stampEnd else { return nil }
            let fetchedAt = String(decoding: bytes[2..<stampEnd], as: UTF8.self)
            let body = Array(bytes[stampEnd...])
            guard let tenant = try? JSONDecoder().decode(StoredTenant.self, from: Data(body)).data else { return nil }
            return CachedPayload.tenantFill(tenant, body: body, fetchedAt: fetchedAt)
        case passThroughLayout:
            guard bytes.count > 3 else { return nil }
            let tagsEnd = 3 + (Int(bytes[1]) << 8 | Int(bytes[2]))
            guard bytes.count > tagsEnd else { return nil }
            let tags = String(decoding: bytes[3..<tagsEnd], as: UTF8.self).split(separator: "\n").map(String.init)
            guard !tags.isEmpty, tags.allSatisfy({ $0.hasPrefix("upstream:") || $0.hasPrefix("tenant:") }) else { return nil }
            let body = Array(bytes[tagsEnd...])
            guard (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) != nil else { return nil }
            return CachedPayload.passThroughFill(body: body, tags: Set(tags))
        case listLayout:
            guard let list = try? JSONDecoder().decode(StoredList.self, from: Data(bytes.dropFirst())) else { return nil }
            return CachedPayload.listFill(list.tenants, upstream: list.upstream, fetchedAt: list.fetchedAt, partialFailure: nil)
        default:
            return nil
        }
    }
}
