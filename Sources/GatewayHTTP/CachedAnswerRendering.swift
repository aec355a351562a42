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
