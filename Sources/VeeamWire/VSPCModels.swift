/// Wire models of Veeam Service Provider Console REST v3, exactly as the server sends them.
/// Every field a server might omit or null is optional; unknown fields are ignored.

/// `{"data": …, "meta": …}`; single reads may carry no `meta` at all.
public struct VSPCEnvelope<Payload: Decodable & Sendable>: Decodable, Sendable {
    public var data: Payload
    public var meta: VSPCMeta?
}

public struct VSPCMeta: Decodable, Sendable, Equatable {
    public var pagingInfo: VSPCPagingInfo?
}

public struct VSPCPagingInfo: Decodable, Sendable, Equatable {
    public var total: Int
    public var count: Int
    public var offset: Int

    public init(total: Int, count: Int, offset: Int) {
        self.total = total
        self.count = count
        self.offset = offset
    }
}

/// `{"errors": [{"message", "type", "code"}]}`; 429s add `retryAfter` (seconds).
public struct VSPCErrorResponse: Decodable, Sendable {
    public var errors: [VSPCError]
}

public struct VSPCError: Decodable, Sendable, Equatable {
    public var message: String?
    /// `unspecified`, `transport`, `logical`, `retryableLogical`, `security`.
    public var type: String?
    public var code: Int?
    public var retryAfter: Int?
}

/// `CloudTenant` (3.6.1 models). `hashedPassword` and `credentials` are deliberately not decoded:
/// the gateway never holds them.
public struct VSPCCloudTenant: Decodable, Sendable, Equatable {
    public var instanceUid: String
    public var siteUid: String?
    public var siteName: String?
    public var name: String?
    public var description: String?
    /// `General`, `VCD`, `Unknown` (older servers: `general`, `vCD`); kept as sent.
    public var type: String?
    public var vCloudOrganizationUid: String?
    public var lastActive: VeeamTimestamp?
    public var isEnabled: Bool?
    public var isLeaseExpirationEnabled: Bool?
    public var leaseExpirationDate: VeeamTimestamp?
    public var isThrottlingEnabled: Bool?
    public var throttlingValue: Int?
    /// `MbitPerSec`, `KbytePerSec`, `MbytePerSec`; kept as sent.
    public var throttlingUnit: String?
    public var maxConcurrentTask: Int?
    public var isBackupProtectionEnabled: Bool?
    public var backupProtectionPeriod: Int?
    /// `StandaloneGateways`, `GatewayPool`, `Unknown` (older servers: `gatewayPool`); kept as sent.
    public var gatewaySelectionType: String?
    public var gatewayPoolsUids: [String]?
    public var isGatewayFailoverEnabled: Bool?
    public var isBackupResourcesEnabled: Bool?
    public var isNativeReplicationResourcesEnabled: Bool?
    public var isVcdReplicationResourcesEnabled: Bool?
    public var assignedForCompany: String?
    public var backupServerUid: String?
}

/// `GET /api/v3/users/me` → `data`.
public struct VSPCUser: Decodable, Sendable, Equatable {
    public var instanceUid: String?
    public var organizationUid: String?
    public var userName: String?
    /// `UserRole`: `PortalAdministrator`, `ResellerOwner`, `ResellerAdministrator`, …
    public var role: String
    public var status: String?
}

/// `POST /api/v3/token` success body (not enveloped).
public struct VSPCTokenResponse: OAuthTokenBody {
    public var accessToken: String
    public var tokenType: String?
    public var refreshToken: String?
    /// Seconds, as the server wrote them (a number, or a number in a string).
    public var expiresIn: TokenLifetimeSeconds?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case refreshToken = "refresh_token"
        case expiresIn = "expires_in"
    }
}
