import Foundation

// The backup side of a simulated VB365 server: jobs, their sessions and restore points.
extension VB365Estate {
    /// `RESTJob`. v6 (and v5): no `organizationId` (the `organization` link names it); from v7 also
    /// `lastBackup`; from v8 also `organizationId` and `eTag`. No member of any version's `RESTJob`
    /// is a secret.
    func job(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.job, number, of: org.id)
        let entire = number == 1
        let repository = Self.repositoryIDs[entire ? 0 : 1]
        var schedule: [String: JSONValue] = [
            "scheduleEnabled": .bool(true),
            "backupWindowEnabled": .bool(false),
            "retryEnabled": .bool(true),
            "retryNumber": .int(3),
            "retryWaitInterval": .int(10),
        ]
        if entire {
            schedule["type"] = .string("Daily")
            schedule["dailyType"] = .string("Everyday")
            schedule["dailyTime"] = .string("02:00:00")
        } else {
            schedule["type"] = .string("Periodically")
            schedule["periodicallyEvery"] = .string("Hours4")
        }
        if api >= .v7 { schedule["periodicallyWindowEnabled"] = .bool(false) }
        var out: [String: JSONValue] = [
            "id": .string(id),
            "name": .string(Self.name(org) + (entire ? " - Entire organization" : " - Selected items")),
            "description": .string(entire ? "Every mailbox, site and team, daily at 02:00." : "Selected mailboxes and sites, every four hours."),
            "backupType": .string(entire ? "EntireOrganization" : "SelectedItems"),
            "schedulePolicy": .object(schedule),
            "repositoryId": .string(repository),
            "lastRun": .string(Self.pick(Self.sessionStarts, number)),
            "nextRun": .string(Self.pick(Self.nextRuns, number)),
            "isEnabled": .bool(true),
            "lastStatus": .string(Self.status(org, job: number)),
            "_links": .object([
                "self": link("/Jobs/\(id)"),
                "organization": link("/Organizations/\(org.id)"),
                "backupRepository": link("/BackupRepositories/\(repository)"),
            ]),
        ]
        if api >= .v7 { out["lastBackup"] = Self.isBackedUp(org) ? .string(Self.pick(Self.sessionEnds, number)) : .null }
        if api >= .v8 {
            out["organizationId"] = .string(org.id)
            out["eTag"] = .int(number)
        }
        return .object(out)
    }

    /// `RESTJobSession`: the session of job `number`'s most recent run. v7 and v8 also carry `repositoryId`,
    /// `mainSessionId`, `jobWillBeRetried`, `jobType`; v8 `jobId`, `jobSessionConfigType`,
    /// `eTag`, `proxyId`.
    func session(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.session, number, of: org.id)
        let jobID = Self.id(.job, number, of: org.id)
        let backedUp = Self.isBackedUp(org)
        let details: String
        if !backedUp {
            details = "Failed to connect to the organization."
        } else {
            details = number == 1 ? "Job finished successfully." : "Job finished with warnings: 1 item was skipped."
        }
        let statistics: [String: JSONValue] = [
            "processingRateBytesPS": .int(backedUp ? 5_242_880 : 0),
            "processingRateItemsPS": .int(backedUp ? 40 : 0),
            "readRateBytesPS": .int(backedUp ? 6_291_456 : 0),
            "writeRateBytesPS": .int(backedUp ? 4_194_304 : 0),
            "transferredDataBytes": .int(backedUp ? 1_073_741_824 * number : 0),
            "processedObjects": .int(backedUp ? 1250 / number : 0),
            "bottleneck": .string(backedUp ? "Source" : "NA"),
        ]
        var out: [String: JSONValue] = [
            "id": .string(id),
            "details": .string(details),
            "creationTime": .string(Self.pick(Self.sessionStarts, number)),
            "endTime": .string(Self.pick(Self.sessionEnds, number)),
            "retryCount": .int(backedUp ? 0 : 3),
            "progress": .int(100),
            "status": .string(Self.status(org, job: number)),
            "statistics": .object(statistics),
            "_links": .object(["self": link("/JobSessions/\(id)"), "job": link("/Jobs/\(jobID)")]),
        ]
        if api >= .v7 {
            out["repositoryId"] = .string(Self.repositoryIDs[number == 1 ? 0 : 1])
            out["mainSessionId"] = .string(id)
            out["jobWillBeRetried"] = .bool(false)
            out["jobType"] = .string("Backup")
        }
        if api >= .v8 {
            out["jobId"] = .string(jobID)
            out["jobSessionConfigType"] = .string("Incremental")
            out["eTag"] = .int(number)
            out["proxyId"] = .string(Self.proxyIDs[number == 1 ? 0 : 1])
        }
        return .object(out)
    }

    /// `RESTRestorePoint` of job `number` (backed-up organizations only). from v7 also `isDeleted`,
    /// `isCopy`; v8 `eTag`, `objectsEtag`.
    func restorePoint(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.restorePoint, number, of: org.id)
        let jobID = Self.id(.job, number, of: org.id)
        let repository = Self.repositoryIDs[number == 1 ? 0 : 1]
        let cloud = Self.kind(org) != "OnPremises"
        var out: [String: JSONValue] = [
            "id": .string(id),
            "repositoryId": .string(repository),
            "backupTime": .string(Self.pick(Self.sessionEnds, number)),
            "jobId": .string(jobID),
            "organizationId": .string(org.id),
            "isExchange": .bool(number == 1),
            "isSharePoint": .bool(true),
            "isOneDrive": .bool(number == 1 && cloud),
            "isTeams": .bool(number == 2 && cloud),
            "isLongTermCopy": .bool(false),
            "isRetrieved": .bool(false),
            "_links": .object([
                "self": link("/RestorePoints/\(id)"),
                "job": link("/Jobs/\(jobID)"),
                "organization": link("/Organizations/\(org.id)"),
                "backupRepository": link("/BackupRepositories/\(repository)"),
            ]),
        ]
        if api >= .v7 {
            out["isDeleted"] = .bool(false)
            out["isCopy"] = .bool(false)
        }
        if api >= .v8 {
            out["eTag"] = .int(number)
            out["objectsEtag"] = .int(number)
        }
        return .object(out)
    }
}
