import GatewayAccess
import HTTPTypes
import ResponseCache

/// The one place a cached answer's status and headers are decided, for the router (as a
/// `Response`) and the hot path (as bytes on the wire): 304 or 200, then `Content-Type`, `ETag`,
/// `Cache-Control: private, max-age`, `Age` and `X-Cache`. What each path adds around them is
/// transport: `X-Request-Id`, `Date`, `Content-Length`.
enum CachedAnswerRendering {
    static let xCache = HTTPField.Name("X-Cache")

    /// 304 when the caller's `If-None-Match` names the ETag (or is `*`).
    static func notModified(ifNoneMatch: String?, etag: String) -> Bool {
        guard let ifNoneMatch else { return false }
        return ifNoneMatch.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == etag || trimmed == "*"
        }
    }

    /// Hands each header of a cached answer to `add`, in order.
    static func headers(etag: String, maxAge: Int, age: Int, cacheStatus: CacheStatus?, _ add: (HTTPField.Name, String) -> Void) {
        add(.contentType, "application/json")
        add(.eTag, etag)
        add(.cacheControl, "private, max-age=" + String(max(0, maxAge)))
        add(.age, String(age))
        if let xCache, let cacheStatus { add(xCache, cacheStatus.rawValue) }
    }
}

/// Whether a request skips the cache, for both front paths: `Cache-Control: no-cache` from a
/// caller allowed to force refreshes (an administrator) bypasses it and refreshes the entry; from
/// anyone else it is ignored, as is any other `Cache-Control`.
enum CacheBypass {
    static func requested(_ cacheControl: String?, caller: Caller, policy: AccessPolicy) -> Bool {
        guard let cacheControl, asksNoCache(cacheControl) else { return false }
        return policy.isAdministrator(caller)
    }

    /// Whether the value holds `no-cache`, in any case (ASCII; compared as bytes: this runs on
    /// every forced refresh).
    static func asksNoCache(_ value: String) -> Bool {
        let needle: StaticString = "no-cache"
        let wanted = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        let bytes = Array(value.utf8)
        guard bytes.count >= wanted.count else { return false }
        for start in 0...(bytes.count - wanted.count) {
            var index = 0
            while index < wanted.count {
                let byte = bytes[start + index]
                guard (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) == wanted[index] else { break }
                index += 1
            }
            if index == wanted.count { return true }
        }
        return false
    }
}
