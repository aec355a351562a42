import GatewayAccess
import GatewayCore
import TenantModel

// The `passThrough` section: the route policy and the extra secret members.
extension GatewayConfiguration {
    /// `passThrough: { routes: [...], defaultRoutes: true, redact: [...] }`. The operator's routes
    /// are tried first, then the shipped table unless `defaultRoutes: false`.
    static func passThrough(_ node: ConfigNode, upstreams: [UpstreamDefinition]) throws -> PassThroughPolicy {
        guard !node.isMissing else { return PassThroughPolicy() }
        node.requireMapping()
        node.requireKeys(["routes", "defaultRoutes", "redact"])
        var routes: [PassThroughRoute] = []
        if !node.child("routes").isMissing {
            for item in node.child("routes").array() {
                if let route: PassThroughRoute = item.collect(nil, { try passThroughRoute(item, upstreams: upstreams) }) { routes.append(route) }
            }
        }
        if node.child("defaultRoutes").bool(default: true) { routes += PassThroughPolicy.defaultRoutes }
        var redact = Set<String>()
        if !node.child("redact").isMissing {
            for item in node.child("redact").array() {
                let name = item.string()
                guard !name.isEmpty, name.utf8.count <= 128 else {
                    item.note("must be a member name of 1-128 bytes")
                    continue
                }
                redact.insert(name)
            }
        }
        return PassThroughPolicy(routes: routes, redact: redact)
    }

    static func passThroughRoute(_ node: ConfigNode, upstreams: [UpstreamDefinition]) throws -> PassThroughRoute {
        node.requireMapping()
        node.requireKeys(["upstream", "product", "form", "path", "methods", "roles", "ttl"])
        let applies: PassThroughRoute.Applies
        switch (node.child("upstream").isMissing, node.child("product").isMissing) {
        case (false, false):
            throw node.child("product").error("a route names an upstream or a product, not both")
        case (false, true):
            let name = node.child("upstream").string()
            guard names(name, in: upstreams, node: node) else { throw node.child("upstream").error("no upstream is named \(name)") }
            applies = .upstream(name)
        case (true, false):
            let text = node.child("product").string()
            guard let product = Tenant.Product(rawValue: text) else { throw node.child("product").error("must be vb365 or vspc") }
            applies = .product(product)
        case (true, true):
            applies = .any
        }
        let formText = node.child("form").string(default: "upstream")
        guard let form = PassThroughRoute.Form(rawValue: formText) else { throw node.child("form").error("must be upstream or tenant") }
        let path = node.child("path").string()
        guard path.hasPrefix("/"), path.utf8.count <= 512,
            path.utf8.allSatisfy({ PassThroughPathCharacters.isAllowedInPattern($0) })
        else {
            throw node.child("path").error("must start with / and hold only letters, digits, '-', '.', '_', '~', '/' and '*'")
        }
        var methods: Set<String> = ["GET"]
        if !node.child("methods").isMissing {
            methods = []
            for item in node.child("methods").array() {
                let method = item.string().uppercased()
                guard ["GET", "POST"].contains(method) else { throw item.error("must be GET or POST") }
                methods.insert(method)
            }
        }
        let roles = try node.child("roles").isMissing ? Set<String>() : roles(node.child("roles"))
        if form == .upstream, roles.isEmpty { throw node.child("roles").error("an upstream-form route names the roles it allows (deny by default)") }
        if methods.contains("POST"), roles.isEmpty { throw node.child("roles").error("a route that allows writes names the roles that may write") }
        let ttl = node.child("ttl").duration(default: .seconds(30))
        return PassThroughRoute(form: form, applies: applies, pattern: path, methods: methods, roles: roles, ttl: ttl, origin: .configured)
    }
}

/// What a route's path pattern may hold.
enum PassThroughPathCharacters {
    static func isAllowedInPattern(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"), UInt8(ascii: "*"): true
        default: false
        }
    }
}
