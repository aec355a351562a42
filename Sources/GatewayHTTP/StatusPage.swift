import GatewayObservability
import Foundation
import GatewayAccess
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /status` (an HTML page with its script and style, served from the bundle: nothing
/// external, so it works air-gapped) and `POST /v1/auth/session`; `GET /v1/status`, the report
/// the page renders, is served by the request pipeline (its session cookie is a credential
/// there, for that route only).
///
/// The page asks once for a PortalAdministrator's API key and sends it in `X-API-Key` to
/// `/v1/auth/session`, which answers a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/v1/status`,
/// `Secure` over TLS) that only `/v1/status` accepts. The key never goes into a URL, the page's
/// storage or a log line; the page keeps no secret at all (it cannot read the cookie).
enum StatusPage {
    /// Strict: no inline script or style, nothing from elsewhere, no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let assets: [String: (file: String, type: String)] = [
        "/status": ("status.html", "text/html; charset=utf-8"),
        "/status.js": ("status.js", "text/javascript; charset=utf-8"),
        "/status.css": ("status.css", "text/css; charset=utf-8"),
        "/status.svg": ("status.svg", "image/svg+xml"),
    ]

    /// The bundled files, read once.
    static let files: [String: [UInt8]] = {
        var found: [String: [UInt8]] = [:]
        for (_, asset) in assets {
            let name = (asset.file as NSString).deletingPathExtension
            let ext = (asset.file as NSString).pathExtension
            if let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "status") ?? Bundle.module.url(forResource: name, withExtension: ext),
                let data = try? Data(contentsOf: url)
            {
                found[asset.file] = Array(data)
            }
        }
        return found
    }()

    /// The headers every page, asset and status answer carries (the pipeline's `/v1/status`
    /// answer too, through ``AnswerRendering``).
    static let securityHeaders: [(header: AnswerHeader, value: String)] = [
        (.contentSecurityPolicy, contentSecurityPolicy), (.xContentTypeOptions, "nosniff"), (.referrerPolicy, "no-referrer"), (.xFrameOptions, "DENY"),
    ]

    static func secured(_ headers: inout HTTPFields) {
        for field in securityHeaders {
            if let name = field.header.name { headers[name] = field.value }
        }
    }

    static func register(on router: Router<GatewayRequestContext>) {
        for (path, asset) in assets {
            router.get(RouterPath(stringLiteral: path)) { _, _ -> Response in
                guard let bytes = files[asset.file] else { throw GatewayError.routeNotFound }
                var headers: HTTPFields = [.contentType: asset.type, .cacheControl: "no-cache"]
                secured(&headers)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
    }
}
