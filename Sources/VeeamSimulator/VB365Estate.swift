import Foundation

/// What a simulated VB365 server holds besides its organizations, built on demand from each
/// organization fixture (so the generated estate costs nothing until read) and shaped as this
/// version's spec says (v5 as v6: there is no published v5 spec). Per organization: two backup
/// jobs, one session per job, one restore point per job of a backed-up organization, three users,
/// two groups, two sites, two teams (none on premises) and, for a backed-up organization, two
/// licensed users. Server-wide: two repositories, two proxies and the license. See
/// docs/simulator.md, "Pass-through collections", for the ids and every inference.
struct VB365Estate: Sendable {
    typealias Organization = SimulatorFixtures.Organization

    let api: SimulatorVB365API

    var prefix: String { "/" + api.rawValue }

    // MARK: Identities

    /// An object's id is its organization's id (lower case) with the first eight hex digits
    /// replaced by the kind's seven and the object's number (from 1): job 1 of
    /// `cbc52c37-df7f-4b03-98f3-036e7d4b3127` is `0b000001-df7f-4b03-98f3-036e7d4b3127`, its
    /// session `5e000001-df7f-…`. Unique as long as organization ids differ after their first
    /// eight digits (the fixtures' and the generated ones do).
    enum Kind: String, Sendable {
        case job = "0b00000"
        case session = "5e00000"
        case restorePoint = "4e00000"
        case user = "0a00000"
        case group = "0600000"
        case site = "0500000"
        case team = "0700000"
    }

    static func id(_ kind: Kind, _ number: Int, of organizationID: String) -> String {
        let lower = organizationID.lowercased()
        let tail = lower.count > 8 ? String(lower.dropFirst(8)) : "-" + lower
        return kind.rawValue + String(number) + tail
    }

    /// An object found by its id: its organization and its number there.
    struct Located: Sendable {
        var organization: Organization
        var number: Int
    }

    /// The organization (among `organizations`) and number of the object of `kind` whose id is `id`.
    static func locate(_ kind: Kind, id: String, numbers: ClosedRange<Int>, in organizations: [Organization]) -> Located? {
        let lower = id.lowercased()
        guard lower.count > 8 else { return nil }
        let head = lower.prefix(8)
        guard head.hasPrefix(kind.rawValue), let number = Int(head.dropFirst(kind.rawValue.count)), numbers.contains(number) else {
            return nil
        }
        let tail = String(lower.dropFirst(8))
        guard let organization = organizations.first(where: { $0.id.count == lower.count && $0.id.dropFirst(8).lowercased() == tail }) else {
            return nil
        }
        return Located(organization: organization, number: number)
    }

    static let repositoryIDs = ["8b7a6c5d-0001-4e2f-9a3b-000000000001", "8b7a6c5d-0002-4e2f-9a3b-000000000002"]
    static let proxyIDs = ["9c1d2e3f-0001-4a5b-8c6d-000000000001", "9c1d2e3f-0002-4a5b-8c6d-000000000002"]
    static let licenseID = "1c3e5a7b-9d0f-4e2a-8b4c-6d8e0f1a2b3c"

    // MARK: What an organization has

    static func isBackedUp(_ org: Organization) -> Bool { org.body["isBackedup"] == .bool(true) }

    /// `Office365`, `OnPremises` or `Hybrid` (the fixture's spelling made canonical).
    static func kind(_ org: Organization) -> String { VB365Routes.organizationType(org.body["type"]?.stringValue ?? "") }

    static func name(_ org: Organization) -> String { org.body["name"]?.stringValue ?? org.id }

    static let jobNumbers = 1..<3
    static let userNumbers = 1..<4
    static let groupNumbers = 1..<3
    static let siteNumbers = 1..<3

    /// A restore point per job, for an organization that has been backed up.
    static func restorePointNumbers(_ org: Organization) -> Range<Int> { isBackedUp(org) ? jobNumbers : 1..<1 }
    /// Users 1 and 2 hold licenses once backed up (user 3 is a shared mailbox: no license).
    static func licensedUserNumbers(_ org: Organization) -> Range<Int> { isBackedUp(org) ? 1..<3 : 1..<1 }
    /// Of the licensed users, how many count as licensed in the current month (user 2).
    static func newLicensedUserCount(_ org: Organization) -> Int { isBackedUp(org) ? 1 : 0 }
    /// Teams exist in Microsoft 365 only: none for an on-premises organization.
    static func teamNumbers(_ org: Organization) -> Range<Int> { kind(org) == "OnPremises" ? 1..<1 : 1..<3 }

    /// The mail domain: the organization's name when it reads as one (`abc.onmicrosoft.com`,
    /// `contoso.local`), else its `officeName` (or name) as a `.onmicrosoft.com` label.
    static func domain(_ org: Organization) -> String {
        let name = Self.name(org).lowercased()
        if name.contains("."), !name.contains(" "), name.allSatisfy({ $0.isASCII }) { return name }
        let office = (org.adminView["officeName"]?.stringValue ?? name).lowercased()
        let label = String(office.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        return (label.isEmpty ? "organization" : label) + ".onmicrosoft.com"
    }

    static func label(_ domain: String) -> String { String(domain.prefix { $0 != "." }) }

    static func locationType(_ kind: String) -> String {
        switch kind {
        case "OnPremises": "OnPremises"
        case "Hybrid": "Hybrid"
        default: "Cloud"
        }
    }

    // MARK: Times and outcomes (fixed: every job last ran on 24 November 2026)

    static let sessionStarts = ["2026-11-24T02:00:00.0000000Z", "2026-11-24T04:00:00.0000000Z"]
    static let sessionEnds = ["2026-11-24T02:14:37.1234567Z", "2026-11-24T04:06:12.7654321Z"]
    static let nextRuns = ["2026-11-25T02:00:00.0000000Z", "2026-11-24T08:00:00.0000000Z"]

    static func pick(_ values: [String], _ number: Int) -> String {
        values[max(0, number - 1) % values.count]
    }

    /// A backed-up organization's job 1 succeeded and job 2 warned; a never backed-up
    /// organization's jobs both failed.
    static func status(_ org: Organization, job number: Int) -> String {
        guard isBackedUp(org) else { return "Failed" }
        return number == 1 ? "Success" : "Warning"
    }

    func link(_ path: String) -> JSONValue { .object(["href": .string(prefix + path)]) }
}
