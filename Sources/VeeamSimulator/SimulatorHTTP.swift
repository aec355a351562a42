import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The request context of the simulator: Hummingbird's basic context plus the peer address,
/// so that the admin routes answer loopback callers only.
struct SimulatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    var isLoopback: Bool {
        guard let ip = remoteAddress?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}

/// Thrown by a body writer to drop the connection mid-body (the `reset` fault).
struct SimulatedConnectionReset: Error {}

enum SimHTTP {
    /// True while answering a request that accepts gzip on a simulator started with `gzip`.
    @TaskLocal static var gzipAnswer = false
    /// Set while a VSPC read runs under ``VSPCAsyncActionsMiddleware``: its answer may become an
    /// async action's result.
    @TaskLocal static var deferral: AsyncDeferral?

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        bytes(status, value.serialized(), headers: headers)
    }

    static func bytes(_ status: HTTPResponse.Status, _ data: Data, headers: HTTPFields = [:]) -> Response {
        deferral?.record(status, data)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        if gzipAnswer, let compressed = Gzip.compress(data) {
            fields[.contentEncoding] = "gzip"
            fields[.vary] = "Accept-Encoding"
            return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: compressed)))
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// 200 with a JSON body cut in half: the `malformed` fault.
    static func malformed(_ value: JSONValue) -> Response {
        let data = value.serialized()
        return bytes(.ok, data.prefix(max(1, data.count / 2)))
    }

    /// Headers promising a full body, half of it, then a dropped connection: the `reset` fault.
    static func resetMidBody(_ value: JSONValue) -> Response {
        let data = value.serialized()
        let half = ByteBuffer(bytes: data.prefix(max(1, data.count / 2)))
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(contentLength: data.count) { writer in
                try await writer.write(half)
                throw SimulatedConnectionReset()
            }
        )
    }

    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1])
    }

    /// Parses an `application/x-www-form-urlencoded` body (also accepts a JSON object of strings).
    static func form(_ request: inout Request) async throws -> [String: String] {
        let buffer = try await request.collectBody(upTo: 64 * 1024)
        let data = Data(buffer.readableBytesView)
        if request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true {
            guard case .object(let members) = (try? JSONValue.parse(data)) ?? .null else { return [:] }
            // Token requests in JSON carry booleans too (`disable_antiforgery_token: true`).
            return members.compactMapValues { value -> String? in
                switch value {
                case .string(let text): return text
                case .bool(let flag): return flag ? "true" : "false"
                case .int(let number): return String(number)
                default: return nil
                }
            }
        }
        var fields: [String: String] = [:]
        for pair in String(decoding: data, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    private static func decode(_ part: Substring) -> String {
        let spaced = part.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// `Tue, 24 Nov 2026 02:17:28 GMT`, as OWIN writes `.issued` and `.expires`.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// `2026-11-24T02:17:28.1234567Z`: .NET's round-trip format, as VB365 v6+ write `.issued` and `.expires`.
    static func dotNetDateTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let ticks = Int((date.timeIntervalSince1970 * 10_000_000).rounded(.down)) % 10_000_000
        let fraction = String(ticks)
        return formatter.string(from: date) + "." + String(repeating: "0", count: 7 - fraction.count) + fraction + "Z"
    }

    /// The value of cookie `name` in the request's `Cookie` headers, if any.
    static func cookie(_ request: Request, named name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    static func roll(_ rate: Double) -> Bool {
        rate > 0 && Double.random(in: 0..<1) < rate
    }
}

/// The fault a resource request draws, if any.
enum DrawnFault {
    case error, malformed, reset, throttle, async
}

extension SimulatorState {
    /// Counts the request, sleeps the configured latency, and draws a fault for resource routes.
    func enter(_ product: SimulatedProduct, route: String, resource: Bool, request: Request? = nil) async throws -> DrawnFault? {
        count(product) { $0.requests[route, default: 0] += 1 }
        if let name = HTTPField.Name("X-Request-Id"), let id = request?.headers[name] { recordRequestID(id, product: product) }
        if let name = HTTPField.Name("traceparent"), let parent = request?.headers[name] { recordTraceparent(parent, product: product) }
        if product == .vspc, let request, let name = HTTPField.Name("X-Client-Version") {
            let version = request.headers[name].map { String($0.prefix(32)) } ?? "none"
            count(product) { $0.clientVersions[version, default: 0] += 1 }
        }
        let faults = self.faults(product)
        if faults.latencyMs > 0 {
            try await Task.sleep(for: .milliseconds(faults.latencyMs))
        }
        guard resource else { return nil }
        let drawn: DrawnFault?
        if SimHTTP.roll(faults.errorRate) {
            drawn = .error
        } else if SimHTTP.roll(faults.throttleRate) {
            drawn = .throttle
        } else if SimHTTP.roll(faults.malformedRate) {
            drawn = .malformed
        } else if SimHTTP.roll(faults.resetRate) {
            drawn = .reset
        } else if SimHTTP.roll(faults.asyncRate) {
            drawn = .async
        } else {
            drawn = nil
        }
        if drawn != nil { count(product) { $0.faultsInjected += 1 } }
        return drawn
    }
}

/// Turns on gzip answers for requests that accept them (`--gzip`).
struct GzipMiddleware: RouterMiddleware {
    typealias Context = SimulatorContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let accepts = request.headers[.acceptEncoding]?.lowercased().contains("gzip") ?? false
        return try await SimHTTP.$gzipAnswer.withValue(accepts) { try await next(request, context) }
    }
}
