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

// What the customer join reads (3.6.1 models of the published `veeam-spc` package; only the
// members the join uses are decoded).

/// `Company` (`GET /organizations/companies`).
public struct VSPCCompany: Decodable, Sendable, Equatable {
    public var instanceUid: String
    public var name: String?
    /// `Active`, `Disabled`, `Deleting`, …: extensible, kept as sent.
    public var status: String?
    public var resellerUid: String?

    public init(instanceUid: String, name: String?, status: String?, resellerUid: String?) {
        self.instanceUid = instanceUid
        self.name = name
        self.status = status
        self.resellerUid = resellerUid
    }
}

/// `Vb365Server` (`GET /infrastructure/vb365Servers`).
public struct VSPCVb365Server: Decodable, Sendable, Equatable {
    public var instanceUid: String
    public var name: String?
    public var version: String?

    public init(instanceUid: String, name: String?, version: String? = nil) {
        self.instanceUid = instanceUid
        self.name = name
        self.version = version
    }
}

/// `Vb365Organization` (`GET /infrastructure/vb365Servers/organizations`).
public struct VSPCVb365Organization: Decodable, Sendable, Equatable {
    public var instanceUid: String
    public var name: String?
    /// `Microsoft365`, `OnPremises`, `Hybrid`, …; kept as sent.
    public var type: String?
    public var vb365ServerUid: String?
    /// The company it is mapped to, when VSPC shows one.
    public var mappedOrganizationUid: String?
    public var isBackedUp: Bool?

    public init(instanceUid: String, name: String?, type: String? = nil, vb365ServerUid: String?, mappedOrganizationUid: String? = nil, isBackedUp: Bool?) {
        self.instanceUid = instanceUid
        self.name = name
        self.type = type
        self.vb365ServerUid = vb365ServerUid
        self.mappedOrganizationUid = mappedOrganizationUid
        self.isBackedUp = isBackedUp
    }
}

/// `Vb365OrganizationToCompanyMapping` (`GET /infrastructure/vb365Servers/organizations/companyMappings`).
public struct VSPCCompanyMapping: Decodable, Sendable, Equatable {
    public var instanceUid: String?
    public var vb365OrganizationUid: String
    public var companyUid: String
    public var vb365ServerUid: String?
    public var vb365OrganizationName: String?
    public var companyName: String?

    public init(
        instanceUid: String?, vb365OrganizationUid: String, companyUid: String, vb365ServerUid: String?, vb365OrganizationName: String? = nil,
        companyName: String? = nil
    ) {
        self.instanceUid = instanceUid
        self.vb365OrganizationUid = vb365OrganizationUid
        self.companyUid = companyUid
        self.vb365ServerUid = vb365ServerUid
        self.vb365OrganizationName = vb365OrganizationName
        self.companyName = companyName
    }
}

/// `ActivityLog` (`GET /api/v3/eventLogs/activityLogs`): one change VSPC recorded.
public struct VSPCActivityLog: Decodable, Sendable, Equatable {
    public var message: String?
    /// `ActivityLogType`: `TenantCreated`, `TenantRemoved`, `CompanyCreated`, … (kept as sent).
    public var activityLogType: String?
    public var activityKind: String?
    public var date: String?
    public var userUid: String?
    public var organizationUid: String?

    public init(message: String?, activityLogType: String?, date: String?) {
        self.message = message
        self.activityLogType = activityLogType
        self.date = date
    }

    /// Whether it is about what the gateway's lists and customers hold: tenants, companies and
    /// VB365 organizations.
    public var concernsTenantsOrCustomers: Bool {
        let type = (activityLogType ?? "").lowercased()
        return type.hasPrefix("tenant") || type.hasPrefix("company") || type.hasPrefix("vb365organization")
    }
}
