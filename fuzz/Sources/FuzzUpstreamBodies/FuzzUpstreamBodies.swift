// libFuzzer target: what the gateway does with an upstream's response body. The input is one
// body; it is decoded as every wire model the clients and the token grants decode
// (`JSONDecoder`, as `UpstreamResponse.decoded` and `OAuthTokenEndpoint` do), mapped as an error
// answer (`VeeamAPIError.from`), and whatever decodes is carried on as the gateway carries it.
//
// Invariants:
// - Decoding never traps (a sanitizer report or a crash is a finding), and decoding the same
//   bytes twice gives equal values.
// - A token body's `expires_in` becomes a lifetime within `TokenGrant.acceptedLifetimes`,
//   whatever number (or non-number) the upstream wrote.
// - `VeeamAPIError.from` maps each status to its code, echoes the status, keeps the VSPC or
//   VB365 message it decoded, and clamps `retryAfter` to 1…3600 s.
// - A decoded organization or cloud tenant normalizes to a `Tenant` whose id and source are
//   the upstream id (lowercased) and whose timestamps are the wire timestamps in UTC; its fast
//   JSON (`Tenant.writeJSON`) is byte for byte what `JSONEncoder` (sorted keys, unescaped
//   slashes) writes, and that JSON decodes back to an equal tenant that re-encodes to the same
//   bytes. A `Tenant` decoded straight from the body (the shared cache's reading) round-trips
//   alike.
// - `VeeamTimestamp` (the body itself when it is short, and every timestamp a model decoded):
//   it keeps the text as sent; its `rfc3339UTC` is a timestamp this parser reads back to the same
//   instant and digits, in UTC, and writes again unchanged; its JSON round-trips; and for years
//   1600…9999 its epoch seconds are what Foundation's Gregorian calendar says.
//
// A violation prints what differed and aborts, which libFuzzer reports as a crash.

import Foundation
import HTTPTransport
import TenantModel
import TokenBroker
import VeeamAPI
import VeeamWire
import FuzzerDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's `main` (SwiftPM links `main` to `FuzzUpstreamBodies_main`): libFuzzer's driver.
@_cdecl("FuzzUpstreamBodies_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzzer_driver_run(argc, argv) { data, size in data.map { fuzzOne($0, size) } ?? 0 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Data(bytes)
    let input = Input(bytes: bytes)

    // VB365.
    if let org = stable(VB365Organization.self, body, input) {
        organization(org, input)
    }
    _ = stable(VB365ServiceInstance.self, body, input)
    _ = stable([VB365OrganizationSummary].self, body, input)
    if let page = decode(VB365Page<VB365OrganizationSummary>.self, body) {
        check(page.results == decode(VB365Page<VB365OrganizationSummary>.self, body)?.results, "a page decoded twice differently", input)
    }
    _ = decode(VB365ErrorBody.self, body)
    _ = decode(OAuthErrorBody.self, body)

    // VSPC.
    if let envelope = decode(VSPCEnvelope<VSPCCloudTenant>.self, body) {
        check(envelope.data == decode(VSPCEnvelope<VSPCCloudTenant>.self, body)?.data, "a tenant decoded twice differently", input)
        cloudTenant(envelope.data, input)
    }
    if let list = decode(VSPCEnvelope<[VSPCCloudTenant]>.self, body) {
        for tenant in list.data.prefix(16) { cloudTenant(tenant, input) }
    }
    _ = decode(VSPCEnvelope<VSPCUser>.self, body)
    _ = stable(VSPCErrorResponse.self, body, input)

    // Token grants of both products.
    if let token = decode(VB365TokenResponse.self, body) { grant(token, input) }
    if let token = decode(VSPCTokenResponse.self, body) { grant(token, input) }
    if let lifetime = decode(TokenLifetimeSeconds.self, body) { grantLifetime(lifetime.value, input) }

    // Error answers.
    errorMapping(body, input)

    // The shared cache level's reading of a stored tenant.
    if let stored = decode(Tenant.self, body) { tenantJSON(stored, input, compareWithEncoder: false) }

    // The body as a timestamp.
    if size <= 64 { timestamp(String(decoding: bytes, as: UTF8.self), input) }
    return 0
}

// MARK: - Decoding

func decode<T: Decodable>(_ type: T.Type, _ body: Data) -> T? {
    try? JSONDecoder().decode(type, from: body)
}

/// Decodes twice; both must agree.
func stable<T: Decodable & Equatable>(_ type: T.Type, _ body: Data, _ input: Input) -> T? {
    let first = decode(type, body)
    let second = decode(type, body)
    check(first == second, "\(T.self) decoded twice differently", input)
    return first
}

extension VSPCErrorResponse: @retroactive Equatable {
    public static func == (a: VSPCErrorResponse, b: VSPCErrorResponse) -> Bool { a.errors == b.errors }
}

// MARK: - Tokens

func grant(_ token: some OAuthTokenBody, _ input: Input) {
    grantLifetime(token.expiresIn?.value, input)
}

func grantLifetime(_ seconds: Double?, _ input: Input) {
    let lifetime = TokenGrant.lifetime(expiresIn: seconds)
    check(TokenGrant.acceptedLifetimes.contains(lifetime), "expires_in \(String(describing: seconds)) became lifetime \(lifetime)", input)
    if let seconds, seconds.isFinite, seconds >= 1, seconds <= 86_400 {
        // Within the range it is taken as given (to the millisecond).
        let error = abs(Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18 - seconds)
        check(error <= 0.001, "expires_in \(seconds) became \(lifetime)", input)
    }
}

// MARK: - Error answers

func errorMapping(_ body: Data, _ input: Input) {
    let vspc = decode(VSPCErrorResponse.self, body)
    let vb365 = decode(VB365ErrorBody.self, body)
    let header = String(decoding: input.bytes.prefix(24), as: UTF8.self)
    for (status, retryHeader) in [(429, nil), (404, nil), (503, header), (202, nil), (401, "120"), (400, header)] as [(Int, String?)] {
        let response = UpstreamResponse(status: status, headers: retryHeader.map { [("Retry-After", $0)] } ?? [], body: input.bytes)
        let error = VeeamAPIError.from(response)
        let expected: VeeamAPIError.Code =
            switch status {
            case 202: .asyncPending
            case 401: .unauthorized
            case 403: .forbidden
            case 404: .notFound
            case 429: .throttled
            case 400..<500: .badRequest
            default: .serverError
            }
        check(error.code == expected && error.status == status, "status \(status) mapped to \(error.code) (\(error.status))", input)
        if let retryAfter = error.retryAfter { check((1...3600).contains(retryAfter), "retryAfter \(retryAfter) outside 1...3600", input) }
        if let first = vspc?.errors.first {
            check(error.upstreamMessage == first.message, "the VSPC message was not kept", input)
        } else if let vb365 {
            let parts = [vb365.errorCode, vb365.message].compactMap { $0 }
            check(error.upstreamMessage == (parts.isEmpty ? nil : parts.joined(separator: ": ")), "the VB365 message was not kept", input)
        } else {
            check(error.upstreamMessage == nil, "a message from a body that decodes as no error body", input)
        }
        check(error.description.hasPrefix("\(expected) (status \(status))"), "description \(error.description.prefix(80))", input)
    }
}

// MARK: - Normalizing

func organization(_ org: VB365Organization, _ input: Input) {
    let tenant = Normalize.organization(org, upstream: "vb365-fuzz")
    check(tenant.id == "vb365-fuzz." + org.id.lowercased() && tenant.source.id == org.id.lowercased(), "organization id \(org.id) became \(tenant.id)", input)
    check(tenant.kind == .organization && tenant.source.product == .vb365 && tenant.source.upstream == "vb365-fuzz", "organization source", input)
    check(tenant.backup.firstBackupAt == org.firstBackuptime?.rfc3339UTC && tenant.backup.lastBackupAt == org.lastBackuptime?.rfc3339UTC, "backup times", input)
    for stamp in [org.firstBackuptime, org.lastBackuptime].compactMap({ $0 }) { timestamp(stamp.original, input) }
    tenantJSON(tenant, input, compareWithEncoder: true)
}

func cloudTenant(_ cloud: VSPCCloudTenant, _ input: Input) {
    let tenant = Normalize.cloudTenant(cloud, upstream: "vspc-fuzz")
    check(tenant.id == "vspc-fuzz." + cloud.instanceUid.lowercased() && tenant.source.id == cloud.instanceUid.lowercased(), "tenant id \(cloud.instanceUid) became \(tenant.id)", input)
    check(tenant.kind == .cloudTenant && tenant.source.product == .vspc, "tenant source", input)
    if let parsed = TenantID.parse(tenant.id) {
        check(parsed.upstream == "vspc-fuzz" && parsed.id == cloud.instanceUid.lowercased(), "TenantID.parse(\(tenant.id)) = \(parsed)", input)
    }
    check(tenant.details["lastActiveAt"] == .init(cloud.lastActive?.rfc3339UTC), "lastActiveAt", input)
    for stamp in [cloud.lastActive, cloud.leaseExpirationDate].compactMap({ $0 }) { timestamp(stamp.original, input) }
    tenantJSON(tenant, input, compareWithEncoder: true)
}

extension DetailValue {
    init(_ value: String?) { self = value.map { .string($0) } ?? .null }
}

/// The answer bytes: the fast writer against `JSONEncoder`, and the round trip through JSON.
/// `compareWithEncoder` is for tenants the gateway builds (`details` has its fixed keys); a
/// tenant decoded from arbitrary JSON may carry keys `.sortedKeys` orders by Unicode rather
/// than bytes, which no upstream can put there.
func tenantJSON(_ tenant: Tenant, _ input: Input, compareWithEncoder: Bool) {
    var written: [UInt8] = []
    tenant.writeJSON(into: &written)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let encoded = try? encoder.encode(tenant) else { fail("JSONEncoder could not encode a tenant", input) }
    if compareWithEncoder {
        check(written == Array(encoded), "Tenant.writeJSON differs from JSONEncoder\n  writeJSON:   \(String(decoding: written, as: UTF8.self))\n  JSONEncoder: \(String(decoding: encoded, as: UTF8.self))", input)
    }
    guard let decoded = try? JSONDecoder().decode(Tenant.self, from: Data(written)) else {
        fail("Tenant.writeJSON wrote JSON that does not decode: \(String(decoding: written, as: UTF8.self))", input)
    }
    check(decoded == tenant, "a tenant does not survive writeJSON and decoding", input)
    var again: [UInt8] = []
    decoded.writeJSON(into: &again)
    check(again == written, "re-encoding a decoded tenant changed its bytes", input)
}

// MARK: - Timestamps

let utc: Calendar = {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar
}()

func timestamp(_ text: String, _ input: Input) {
    guard let stamp = VeeamTimestamp(text) else { return }
    check(stamp.original == text, "original \(stamp.original) is not the text \(text)", input)
    check(stamp.fractionDigits.utf8.count <= 9 && stamp.fractionDigits.utf8.allSatisfy { (0x30...0x39).contains($0) }, "fraction \(stamp.fractionDigits) of \(text)", input)
    let utcText = stamp.rfc3339UTC
    guard let again = VeeamTimestamp(utcText) else {
        fail("\(text) is written as \(utcText), which does not parse as a timestamp", input)
    }
    check(again == stamp && again.epochSeconds == stamp.epochSeconds && again.fractionDigits == stamp.fractionDigits, "\(text) → \(utcText) is another instant", input)
    check(!again.zoneAssumed && again.rfc3339UTC == utcText, "\(utcText) is not written back as itself (\(again.rfc3339UTC))", input)
    if let json = try? JSONEncoder().encode([stamp]) {
        check((try? JSONDecoder().decode([VeeamTimestamp].self, from: json)) == [stamp], "\(text) does not survive JSON", input)
    } else {
        fail("JSONEncoder could not encode \(text)", input)
    }
    // Against Foundation's calendar, where it is Gregorian (from 1600; before 1582 it is Julian).
    let b = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int { b[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
    let year = number(0..<4)
    guard year >= 1600 else { return }
    var offset = 0
    if let sign = b.lastIndex(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }), sign > 10 {
        offset = (b[sign] == UInt8(ascii: "-") ? -1 : 1) * (number(sign + 1..<sign + 3) * 3600 + number(sign + 4..<sign + 6) * 60)
    }
    let components = DateComponents(year: year, month: number(5..<7), day: number(8..<10), hour: number(11..<13), minute: number(14..<16), second: number(17..<19))
    guard let date = utc.date(from: components) else { fail("Foundation has no date for \(text)", input) }
    let expected = Int64(date.timeIntervalSince1970.rounded()) - Int64(offset)
    check(stamp.epochSeconds == expected, "\(text): epochSeconds \(stamp.epochSeconds), Foundation says \(expected)", input)
}

// MARK: - Failing

struct Input {
    var bytes: [UInt8]
}

func check(_ condition: Bool, _ message: @autoclosure () -> String, _ input: Input) {
    if !condition { fail(message(), input) }
}

func fail(_ message: String, _ input: Input) -> Never {
    let text = String(decoding: input.bytes.prefix(1000), as: UTF8.self)
    let report = "FuzzUpstreamBodies invariant violated: \(message)\n  input (\(input.bytes.count) bytes): \(text.debugDescription)\n"
    _ = report.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}
