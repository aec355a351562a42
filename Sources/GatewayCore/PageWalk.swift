import Foundation
import HTTPTransport
import VeeamAPI

/// `?pages=all`: every page of a collection, walked by the gateway and answered as one array.
/// VSPC pages by `limit` (500 at most) and `offset` in its envelope; VB365 v8 by `limit` and
/// `offset` in `{offset, limit, results}`; VB365 before v8 (a bare array) is one page. Bounded:
/// at most ``maxPages`` pages and the upstream's `maxResponseBytes` in all, past which the
/// answer is an error, never a silent cut.
enum PageWalk {
    static let maxPages = 200
    static let vspcPageSize = 500
    static let vb365PageSize = 1000

    /// `{"data": [...], "meta": {"total": n, "pages": k}}`.
    static func readAll(_ location: PassThroughLocation, clients: UpstreamClients) async throws -> [UInt8] {
        let upstream = location.upstream
        let bound = upstream.definition.options.maxResponseBytes
        let base = location.path.forwardedQuery.filter { $0.0 != "limit" && $0.0 != "offset" }
        var items: [Any] = []
        var bytes = 0
        for page in 0..<maxPages {
            let size = upstream.definition.product == .vspc ? vspcPageSize : vb365PageSize
            let query = base + [("limit", String(size)), ("offset", String(items.count))]
            let body = try PassThroughReads.body(of: try await PassThroughReads.send(location, clients: clients, query: query), location)
            bytes += body.count
            guard bytes <= bound else { throw tooLarge(location, "more than \(bound) bytes") }
            guard let value = try? JSONSerialization.jsonObject(with: Data(body)) else {
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "a page that is not JSON")
            }
            let found: [Any]
            var total: Int?
            if let array = value as? [Any] {
                // VB365 before v8: the whole collection at once.
                items += array
                return try encode(items, pages: page + 1)
            } else if let object = value as? [String: Any], let data = object["data"] as? [Any] {
                found = data
                total = ((object["meta"] as? [String: Any])?["pagingInfo"] as? [String: Any])?["total"] as? Int
            } else if let object = value as? [String: Any], let results = object["results"] as? [Any] {
                found = results
            } else {
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "a page that is neither an array, {data} nor {results}")
            }
            items += found
            if found.count < size || found.isEmpty || total.map({ items.count >= $0 }) == true {
                return try encode(items, pages: page + 1)
            }
        }
        throw tooLarge(location, "more than \(maxPages) pages")
    }

    static func encode(_ items: [Any], pages: Int) throws -> [UInt8] {
        let document: [String: Any] = ["data": items, "meta": ["total": items.count, "pages": pages]]
        guard let data = try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "pages that do not make one document")
        }
        return Array(data)
    }

    static func tooLarge(_ location: PassThroughLocation, _ what: String) -> GatewayError {
        GatewayError(
            .upstream(.answer(.badResponse)),
            detail: "\(location.method) \(location.path.path) on \(location.upstream.name) has \(what) with pages=all; page with limit and offset instead.",
            upstream: location.upstream.name)
    }
}
