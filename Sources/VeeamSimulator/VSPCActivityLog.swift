import Foundation
import HTTPTypes
import Hummingbird

/// One record of VSPC's activity log: what changed in the estate while the simulator ran (a
/// tenant created, edited or removed; a VB365 organization added or removed on a VB365 server VSPC
/// manages). Served as the 3.6.1 `ActivityLog` model (`activity_log.py`), with every member it has.
struct VSPCActivity: Sendable {
    /// The `ActivityLogType` values (`activity_log_type.py`) the simulator logs.
    enum LogType: String, Sendable {
        case tenantCreated = "TenantCreated"
        case tenantModified = "TenantModified"
        case tenantRemoved = "TenantRemoved"
        case vb365OrganizationCreated = "VB365OrganizationCreated"
        case vb365OrganizationDeleted = "VB365OrganizationDeleted"
    }

    /// `ActivityLogKind` (`activity_log_kind.py`). The models do not say what each means; the
    /// simulator logs what is done in VSPC itself (tenants) as `Internal` and what happens on a
    /// managed VB365 server (organizations) as `External`.
    enum Kind: String, Sendable, CaseIterable {
        case externalActivity = "External"
        case internalActivity = "Internal"
    }

    var type: LogType
    var kind: Kind
    var message: String
    /// When it happened, in ticks (100 ns) since 1970: the unit of the date-times VSPC sends, so
    /// that `from` and `to` compare exactly with what a client read.
    var ticks: Int
    /// `date` as sent: ``ticks`` as a UTC date-time with seven fractional digits.
    var date: String
    /// The VSPC user who did it: none (the admin API that changes the estate names no VSPC user).
    var userUid: String?
    /// The VSPC organization the changed object belongs to: its company, else the provider.
    var organizationUid: String?

    init(_ type: LogType, kind: Kind, message: String, at time: Date, organizationUid: String?) {
        self.type = type
        self.kind = kind
        self.message = message
        let ticks = Int((time.timeIntervalSince1970 * 10_000_000).rounded(.down))
        self.ticks = ticks
        self.date = Self.dateTime(ticks: ticks)
        self.userUid = nil
        self.organizationUid = organizationUid
    }

    /// `ActivityLog`: `message`, `activityLogType`, `activityKind`, `date`, `userUid`, `organizationUid`.
    var body: JSONValue {
        .object([
            "message": .string(message),
            "activityLogType": .string(type.rawValue),
            "activityKind": .string(kind.rawValue),
            "date": .string(date),
            "userUid": userUid.map(JSONValue.string) ?? .null,
            "organizationUid": organizationUid.map(JSONValue.string) ?? .null,
        ])
    }

    /// `2026-11-24T02:17:28.1234567Z` for a time in ticks since 1970.
    static func dateTime(ticks: Int) -> String {
        let (seconds, fraction) = ticks.quotientAndRemainder(dividingBy: 10_000_000)
        // A time before 1970 has a negative remainder: borrow a second.
        let whole = fraction < 0 ? seconds - 1 : seconds
        let digits = String(fraction < 0 ? fraction + 10_000_000 : fraction)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let stamp = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(whole)))
        return stamp + "." + String(repeating: "0", count: max(0, 7 - digits.count)) + digits + "Z"
    }

    /// The ticks (100 ns since 1970) of an ISO 8601 date-time with a zone (`Z` or `±hh:mm`; a
    /// space for `+`, as an unencoded `+` in a query arrives) and any number of fractional digits
    /// (seven count); nil when `text` is not one.
    static func parseTicks(_ text: String) -> Int? {
        var whole = text.replacingOccurrences(of: " ", with: "+")
        var fraction = 0
        if let dot = whole.firstIndex(of: ".") {
            let rest = whole[whole.index(after: dot)...]
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int(String((String(digits) + "000000").prefix(7))) else { return nil }
            fraction = value
            whole = String(whole[..<dot]) + String(rest.dropFirst(digits.count))
        }
        guard let date = ISO8601DateFormatter().date(from: whole) else { return nil }
        return Int(date.timeIntervalSince1970.rounded()) * 10_000_000 + fraction
    }
}

/// The query of `GET /eventLogs/activityLogs` (3.6.1 `api/event_logs/get_activity_logs.py`)
/// beside `limit` and `offset`: `dateSortingDirection` (`ascending` or `descending`, the
/// default: newest first), `from` and `to` (date-times, both inclusive), `organizationUid`,
/// `userUid` and `activityLogKind`. A value that is none of these is 400 naming the parameter.
struct ActivityLogQuery: Sendable {
    var descending = true
    var from: Int?
    var to: Int?
    var organizationUid: String?
    var userUid: String?
    var kind: VSPCActivity.Kind?

    static func parse(_ request: Request) -> Result<ActivityLogQuery, ResponseBox> {
        let parameters = request.uri.queryParameters
        var query = ActivityLogQuery()
        if let raw = parameters["dateSortingDirection"].map(String.init) {
            switch raw.lowercased() {
            case "ascending": query.descending = false
            case "descending": query.descending = true
            default: return .failure(invalid("dateSortingDirection", "ascending or descending"))
            }
        }
        for name in ["from", "to"] {
            guard let raw = parameters[Substring(name)].map(String.init) else { continue }
            guard let ticks = VSPCActivity.parseTicks(raw) else { return .failure(invalid(name, "a date-time")) }
            if name == "from" { query.from = ticks } else { query.to = ticks }
        }
        for name in ["organizationUid", "userUid"] {
            guard let raw = parameters[Substring(name)].map(String.init) else { continue }
            guard UUID(uuidString: raw) != nil else { return .failure(invalid(name, "a UUID")) }
            if name == "organizationUid" { query.organizationUid = raw.lowercased() } else { query.userUid = raw.lowercased() }
        }
        if let raw = parameters["activityLogKind"].map(String.init) {
            guard let kind = VSPCActivity.Kind.allCases.first(where: { $0.rawValue.lowercased() == raw.lowercased() }) else {
                return .failure(invalid("activityLogKind", "External or Internal"))
            }
            query.kind = kind
        }
        return .success(query)
    }

    private static func invalid(_ name: String, _ what: String) -> ResponseBox {
        let message = "The \(name) parameter must be \(what)."
        return ResponseBox(VSPCRoutes.errors(400, message, type: "logical", extra: ["parameterName": .string(name)]))
    }

    func matches(_ activity: VSPCActivity) -> Bool {
        if let from, activity.ticks < from { return false }
        if let to, activity.ticks > to { return false }
        if let organizationUid, activity.organizationUid?.lowercased() != organizationUid { return false }
        if let userUid, activity.userUid?.lowercased() != userUid { return false }
        if let kind, activity.kind != kind { return false }
        return true
    }
}

extension VSPCRoutes {
    /// `GET /api/v3/eventLogs/activityLogs`: `ActivityLog[]` in the envelope, paged and admitted
    /// as the other pass-through collections, newest first unless `dateSortingDirection=ascending`
    /// (the operation's default is `descending`).
    func registerActivityLogs(on router: Router<SimulatorContext>) {
        router.get("/api/v3/eventLogs/activityLogs") { request, _ in
            try await read(request, route: "GET /api/v3/eventLogs/activityLogs", query: ActivityLogQuery.parse) { page, query in
                let matching = state.activities().filter { query.matches($0) }
                let ordered = query.descending ? Array(matching.reversed()) : matching
                let items = SimPaging.indexed(count: ordered.count, offset: page.offset, limit: page.limit) { ordered[$0].body }
                return (items, ordered.count)
            }
        }
    }
}
