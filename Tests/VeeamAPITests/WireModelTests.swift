import Foundation
import GatewayTestSupport
import Testing
import VeeamAPI
import VeeamWire
import HTTPTransport

@Suite("VeeamTimestamp")
struct VeeamTimestampTests {
    @Test(
        "parses .NET timestamps and keeps every fractional digit",
        arguments: [
            ("2020-05-29T10:29:05.5413083Z", "2020-05-29T10:29:05.5413083Z", false),
            ("2017-04-05T08:04:55", "2017-04-05T08:04:55Z", true),
            ("2026-10-01T12:00:00+02:00", "2026-10-01T10:00:00Z", false),
            ("2026-01-01T01:30:00.1-02:00", "2026-01-01T03:30:00.1Z", false),
            ("2026-01-01T00:30:00.123456789+01:00", "2025-12-31T23:30:00.123456789Z", false),
            ("2021-11-02T23:59:59.9999999Z", "2021-11-02T23:59:59.9999999Z", false),
            ("2024-02-29T00:00:00.0000000Z", "2024-02-29T00:00:00.0000000Z", false),
            ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z", false),
        ]
    )
    func parses(input: String, expected: String, assumed: Bool) throws {
        let timestamp = try #require(VeeamTimestamp(input))
        #expect(timestamp.rfc3339UTC == expected)
        #expect(timestamp.zoneAssumed == assumed)
        #expect(timestamp.original == input)
    }

    @Test(
        "rejects what is not a timestamp",
        arguments: ["", "2020-05-29", "2020-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2020-05-29T10:29:05.Z",
            "2020-05-29T10:29:05.1234567890Z", "2020-05-29T10:29:05Zjunk", "yesterday", "2020-05-29T25:00:00Z", "2020-05-29T10:29:05+2:00",
            // In UTC outside four-digit years (found by fuzzing: RFC 3339 cannot write them).
            "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"]
    )
    func rejects(input: String) {
        #expect(VeeamTimestamp(input) == nil)
    }

    @Test("the first and last instants of four-digit years are read and written back")
    func yearBounds() throws {
        #expect(try #require(VeeamTimestamp("0000-01-01T00:00:00Z")).rfc3339UTC == "0000-01-01T00:00:00Z")
        #expect(try #require(VeeamTimestamp("9999-12-31T23:59:59Z")).rfc3339UTC == "9999-12-31T23:59:59Z")
        #expect(try #require(VeeamTimestamp("0000-01-01T00:01:00+00:01")).rfc3339UTC == "0000-01-01T00:00:00Z")
    }

    @Test("the epoch is right")
    func epoch() throws {
        #expect(try #require(VeeamTimestamp("1970-01-01T00:00:00Z")).epochSeconds == 0)
        #expect(try #require(VeeamTimestamp("2020-05-29T10:29:05Z")).epochSeconds == 1_590_748_145)
    }
}

@Suite("Wire models")
struct WireModelTests {
    @Test("seed 000's organization decodes field for field")
    func organization() throws {
        let org = try JSONDecoder().decode(VB365Organization.self, from: Data(SeedExamples.organization.utf8))
        #expect(org.id == "cbc52c37-df7f-4b03-98f3-036e7d4b3127")
        #expect(org.name == "abc.onmicrosoft.com")
        #expect(org.type == "Office365")
        #expect(org.isBackedup == true)
        #expect(org.firstBackuptime?.rfc3339UTC == "2020-05-29T10:29:05.5413083Z")
        #expect(org.lastBackuptime?.fractionDigits == "5413083")
        #expect(org.description == nil)
    }

    @Test("seed 004's tenant decodes, and hashedPassword is not kept")
    func tenant() throws {
        let envelope = try JSONDecoder().decode(VSPCEnvelope<VSPCCloudTenant>.self, from: Data(SeedExamples.tenant.utf8))
        let tenant = envelope.data
        #expect(envelope.meta == nil)
        #expect(tenant.instanceUid == "c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
        #expect(tenant.name == "Alpha")
        #expect(tenant.type == "general")
        #expect(tenant.gatewaySelectionType == "gatewayPool")
        #expect(tenant.throttlingUnit == nil)
        #expect(tenant.gatewayPoolsUids == ["e1135752-d497-43e0-8857-8a0c3a262e2e"])
        #expect(tenant.maxConcurrentTask == 1)
        #expect(!Mirror(reflecting: tenant).children.contains { $0.label == "hashedPassword" })
    }

    @Test("a list with paging info, an error body, a 429 with retryAfter")
    func envelopes() throws {
        let list = #"{"data":[{"instanceUid":"a","name":"A","type":"General","newField":{"x":1}}],"meta":{"pagingInfo":{"total":7,"count":1,"offset":6}}}"#
        let decoded = try JSONDecoder().decode(VSPCEnvelope<[VSPCCloudTenant]>.self, from: Data(list.utf8))
        #expect(decoded.meta?.pagingInfo == VSPCPagingInfo(total: 7, count: 1, offset: 6))
        let throttled = #"{"errors":[{"message":"Too many requests.","type":"retryableLogical","code":429,"retryAfter":5}]}"#
        let error = try JSONDecoder().decode(VSPCErrorResponse.self, from: Data(throttled.utf8))
        #expect(error.errors.first?.retryAfter == 5)
        #expect(error.errors.first?.type == "retryableLogical")
    }

    @Test("an upstream's retryAfter is clamped to 1 s … 1 h, from the body or the header")
    func retryAfterClamped() {
        func throttled(body: String, header: String? = nil) -> VeeamAPIError {
            VeeamAPIError.from(UpstreamResponse(status: 429, headers: header.map { [("Retry-After", $0)] } ?? [], body: Array(body.utf8)))
        }
        let error = #"{"errors":[{"message":"m","type":"retryableLogical","code":429,"retryAfter":RA}]}"#
        #expect(throttled(body: error.replacingOccurrences(of: "RA", with: "5")).retryAfter == 5)
        #expect(throttled(body: error.replacingOccurrences(of: "RA", with: "-7")).retryAfter == 1)
        #expect(throttled(body: error.replacingOccurrences(of: "RA", with: "9223372036854775807")).retryAfter == 3600)
        #expect(throttled(body: "", header: "9223372036854775807").retryAfter == 3600)
        #expect(throttled(body: "", header: "0").retryAfter == 1)
        #expect(throttled(body: "", header: "soon").retryAfter == nil)
    }

    @Test("token bodies of both products decode")
    func tokens() throws {
        let vb = #"{"access_token":"a","token_type":"bearer","expires_in":3600,"refresh_token":"r","userName":"u",".issued":"Tue, 24 Nov 2026 02:17:28 GMT",".expires":"Tue, 24 Nov 2026 03:17:28 GMT"}"#
        let vbToken = try JSONDecoder().decode(VB365TokenResponse.self, from: Data(vb.utf8))
        #expect(vbToken.expiresIn?.value == 3600)
        #expect(vbToken.issued == "Tue, 24 Nov 2026 02:17:28 GMT")
        let vspc = #"{"access_token":"a","token_type":"bearer","refresh_token":"r","expires_in":60,"mfa_token":null,"encrypted_code":null}"#
        #expect(try JSONDecoder().decode(VSPCTokenResponse.self, from: Data(vspc.utf8)).expiresIn?.value == 60)
        let oauth = #"{"error":"invalid_grant","error_description":"Cannot complete login","error_uri":null}"#
        #expect(try JSONDecoder().decode(OAuthErrorBody.self, from: Data(oauth.utf8)).error == "invalid_grant")
    }
}

@Suite("VeeamAPIError mapping")
struct VeeamAPIErrorTests {
    @Test(
        "both products' error bodies map to typed errors that keep the upstream's message for the log",
        arguments: [
            (520, #"{"errors":[{"message":"Internal failure.","type":"unspecified","code":500}]}"#, "upstream.server_error", "Internal failure.", nil as Int?),
            (429, #"{"errors":[{"message":"Too many requests.","type":"retryableLogical","code":429,"retryAfter":7}]}"#, "upstream.throttled", "Too many requests.", 7),
            (403, #"{"errors":[{"message":"Access denied.","type":"security","code":403}]}"#, "upstream.forbidden", "Access denied.", nil),
            (404, #"{"message":"Organization not found."}"#, "upstream.not_found", "Organization not found.", nil),
            (500, #"{"message":"An unexpected error has occurred on the server."}"#, "upstream.server_error", "An unexpected error has occurred on the server.", nil),
            (401, #"{"message":"Authorization has been denied for this request."}"#, "upstream.unauthorized", "Authorization has been denied for this request.", nil),
            (202, #"{"data":null}"#, "upstream.async_pending", nil, nil),
            (400, "not json at all", "upstream.bad_request", nil, nil),
        ]
    )
    func mapping(status: Int, body: String, code: String, message: String?, retryAfter: Int?) {
        let error = VeeamAPIError.from(UpstreamResponse(status: status, body: Array(body.utf8)))
        #expect(error.code.rawValue == code)
        #expect(error.status == status)
        #expect(error.upstreamMessage == message)
        #expect(error.retryAfter == retryAfter)
    }
}
