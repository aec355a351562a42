/// Wire models of Veeam Backup for Microsoft 365 REST v5, exactly as the server sends them.
/// Every field a server might omit or null is optional; unknown fields are ignored.

/// `GET /v5/Organization` (`RESTLoggedInOrganization` in v6+ specs).
public struct VB365Organization: Decodable, Sendable, Equatable {
    public var id: String
    public var name: String?
    /// `Office365`, `OnPremises`, `Hybrid`; kept as sent (older servers vary the case).
    public var type: String?
    public var description: String?
    public var isBackedup: Bool?
    public var firstBackuptime: VeeamTimestamp?
    public var lastBackuptime: VeeamTimestamp?

    public init(
        id: String, name: String? = nil, type: String? = nil, description: String? = nil, isBackedup: Bool? = nil,
        firstBackuptime: VeeamTimestamp? = nil, lastBackuptime: VeeamTimestamp? = nil
    ) {
        self.id = id
        self.name = name
        self.type = type
        self.description = description
        self.isBackedup = isBackedup
        self.firstBackuptime = firstBackuptime
        self.lastBackuptime = lastBackuptime
    }
}

/// A token endpoint's success body: what the gateway takes from it, whatever the product.
public protocol OAuthTokenBody: Decodable, Sendable {
    var accessToken: String { get }
    var refreshToken: String? { get }
    /// `expires_in`, as the server wrote it.
    var expiresIn: TokenLifetimeSeconds? { get }
}

/// A token grant's `expires_in`: OAuth says a number of seconds, but what arrives is the
/// upstream's to choose, so any JSON number is taken as it is (Int64.max, 1e300 and negative
/// ones included: ``value`` is a Double and the token broker clamps it), a number written as a
/// string is read as that number, and anything else (`null`, `"soon"`, an object) decodes as no
/// value rather than failing the whole grant.
public struct TokenLifetimeSeconds: Decodable, Sendable, Equatable {
    /// The seconds given, or nil when the member was not a number.
    public var value: Double?

    public init(_ value: Double?) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            value = number
        } else if let text = try? container.decode(String.self) {
            value = Double(text)
        } else {
            value = nil
        }
    }
}

/// `POST /v5/Token` success body (OWIN style).
public struct VB365TokenResponse: OAuthTokenBody {
    public var accessToken: String
    public var tokenType: String?
    /// Seconds, as the server wrote them.
    public var expiresIn: TokenLifetimeSeconds?
    public var refreshToken: String?
    public var userName: String?
    /// HTTP-date strings.
    public var issued: String?
    public var expires: String?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
        case userName
        case issued = ".issued"
        case expires = ".expires"
    }
}

/// `{"message": …}` (`RESTExceptionInfo`; v7+ add `errorCode`).
public struct VB365ErrorBody: Decodable, Sendable {
    public var message: String?
    public var errorCode: String?
}

/// An OAuth error body, from either product's token endpoint.
public struct OAuthErrorBody: Decodable, Sendable {
    public var error: String
    public var errorDescription: String?

    enum CodingKeys: String, CodingKey {
        case error
        case errorDescription = "error_description"
    }
}
