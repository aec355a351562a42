import Foundation

/// The example response bodies of the two seed documents, copied verbatim
/// (../shared/seeds/000_… and 004_…). Tests compare the simulator's answers with these.
public enum SeedExamples {
    /// Seed 000, `GET /v5/Organization`, Example 1.
    public static let organization = #"{ "id": "cbc52c37-df7f-4b03-98f3-036e7d4b3127", "name": "abc.onmicrosoft.com", "type": "Office365", "isBackedup": true, "firstBackuptime": "2020-05-29T10:29:05.5413083Z", "lastBackuptime": "2020-05-29T10:29:05.5413083Z", "_actions": {"explore": { "uri": "https://abc.tech.local:4443/v5/organization/action", "method": "POST" }} }"#

    /// Seed 004, `GET /api/v3/infrastructure/sites/tenants/c386d34c-…`.
    public static let tenant = #"{ "data": { "instanceUid": "c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "name": "Alpha", "description": "Alpha Tenant", "hashedPassword": null, "type": "general", "backupServerUid": "3b5be228-b14d-421a-9a0e-a1a434e2195c", "gatewaySelectionType": "gatewayPool", "isEnabled": true, "isLeaseExpirationEnabled": false, "leaseExpirationDate": null, "isBackupProtectionEnabled": false, "backupProtectionPeriod": null, "isGatewayFailoverEnabled": false, "gatewayPoolsUids": [ "e1135752-d497-43e0-8857-8a0c3a262e2e" ], "isThrottlingEnabled": false, "throttlingValue": null, "throttlingUnit": null, "maxConcurrentTask": 1, "isBackupResourcesEnabled": false, "isNativeReplicationResourcesEnabled": true, "isVcdReplicationResourcesEnabled": false } }"#

    public static let organizationID = "cbc52c37-df7f-4b03-98f3-036e7d4b3127"
    public static let tenantUID = "c386d34c-0ab6-4e13-b30a-67fcb05b83e4"

    /// The seed documents, when ../shared/seeds is beside the repository (as in CI).
    public static func seedDocument(prefix: String) -> String? {
        let directory = repositoryRoot + "/../shared/seeds"
        guard let name = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.first(where: { $0.hasPrefix(prefix) }) else {
            return nil
        }
        return try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)
    }
}
