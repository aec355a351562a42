/// A VB365 REST API version, and what differs between them on the wire — decided here, once, for
/// the clients and the token grants (the simulator keeps its own reading of the specs on purpose).
///
/// From `specs/upstream/vb365_rest_v6.json`, `_v7.json`, `_v8.json` and the v5 archive
/// docs (no v5 spec exists):
///
/// | | v5 | v6 | v7 | v8 |
/// |---|---|---|---|---|
/// | token route | `/v5/Token` | `/v6/token` | `/v7/token` | `/v8/token` |
/// | `disable_antiforgery_token` | — | — | yes | yes |
/// | `.issued`/`.expires` | HTTP-date | date-time | date-time | date-time |
/// | token error body | OAuth `{error}` | `RESTExceptionInfo` | + `errorCode` | + codes, `stackTrace` |
/// | `/Organizations` | array | array, `extendedView` required | array | page `{offset, limit, results}` |
public enum VB365APIVersion: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case v5, v6, v7, v8

    /// The newest version this gateway knows; `auto` never picks anything newer.
    public static let newest = VB365APIVersion.v8

    public var number: Int {
        switch self {
        case .v5: 5
        case .v6: 6
        case .v7: 7
        case .v8: 8
        }
    }

    public var description: String { rawValue }

    public static func < (a: VB365APIVersion, b: VB365APIVersion) -> Bool { a.number < b.number }

    /// The path segments of the token endpoint (v5's OWIN server spells it `Token`).
    public var tokenPath: [String] { self == .v5 ? ["v5", "Token"] : [rawValue, "token"] }

    /// From v7, a refresh needs the browser's antiforgery cookie unless the login said
    /// `disable_antiforgery_token=true`; a gateway has no cookie jar, so it always says so.
    public var hasAntiforgeryFlag: Bool { self >= .v7 }

    /// v8 pages `GET /Organizations` (`PageOfRestOrganizationComposed`); earlier versions send an array.
    public var pagesOrganizations: Bool { self >= .v8 }

    /// v6 marks `extendedView` as a required query parameter of `GET /Organizations`.
    public var requiresExtendedView: Bool { self == .v6 }
}

/// `GET /vN/ServiceInstance` (`RESTServiceInstance`): the installation and its build number.
public struct VB365ServiceInstance: Decodable, Sendable, Equatable {
    public var installationId: String?
    /// The VB365 build, e.g. `8.1.0.305`.
    public var version: String?
}

/// `GET /v8/Organizations` (`PageOfRestOrganizationComposed`): no total; `setId` names a cached set.
public struct VB365Page<Item: Decodable & Sendable>: Decodable, Sendable {
    public var offset: Int
    public var limit: Int
    public var results: [Item]
    public var setId: String?
}

/// `RestOrganizationComposed` as `GET /vN/Organizations` sends it (the administrator's view).
/// Only what identifies an organization is decoded.
public struct VB365OrganizationSummary: Decodable, Sendable, Equatable {
    /// Nullable in the spec (an organization being added has none yet).
    public var id: String?
    public var name: String?
    public var type: String?
    public var region: String?
}
