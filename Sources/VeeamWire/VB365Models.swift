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
    /// Seconds.
    var expiresIn: Int? { get }
}

/// `POST /v5/Token` success body (OWIN style).
public struct VB365TokenResponse: OAuthTokenBody {
    public var accessToken: String
    public var tokenType: String?
    /// Seconds.
    public var expiresIn: Int?
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
