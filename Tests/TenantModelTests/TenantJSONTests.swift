import Foundation
import TenantModel
import Testing

/// `Tenant.writeJSON` against `JSONEncoder` as the gateway configures it (sorted keys, unescaped
/// slashes): the same bytes, for every kind of field and every character class, so the fast
/// writer changes no answer, no ETag and nothing another replica stored.
@Suite("Tenant JSON: the fast writer writes JSONEncoder's bytes")
struct TenantJSONTests {
    struct Wrapped: Encodable {
        var data: Tenant
    }

    static func encoderBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func written(_ tenant: Tenant) -> [UInt8] {
        var out: [UInt8] = []
        tenant.writeJSON(into: &out)
        return out
    }

    /// SplitMix64: the same cases on every run.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Every ASCII byte (controls, quotes, backslash, slash, DEL), then non-ASCII of every UTF-8 length.
    static let pieces: [String] =
        (0..<0x80).map { String(UnicodeScalar(UInt8($0))) } + ["é", "ß", "中文", "😀", "\u{2028}", "\u{2029}", "\u{FEFF}", "a/b", "</script>", "\\u0041", ""]

    static func text(_ random: inout Random) -> String {
        (0..<random.below(12)).map { _ in pieces[random.below(pieces.count)] }.joined()
    }

    static func optional(_ random: inout Random) -> Any {
        random.below(4) == 0 ? NSNull() as Any : text(&random)
    }

    static func tenant(_ random: inout Random) throws -> Tenant {
        var details: [String: Any] = [:]
        // Keys that sort differently by case, digits, punctuation and non-ASCII bytes.
        let keys = ["a", "A", "b", "Z", "_x", "a1", "a10", "a2", "ä", "zz", "Zz", "with space", "quote\"d", "slash/key", "", "日本"]
        for _ in 0..<random.below(10) {
            let key = random.below(3) == 0 ? text(&random) : keys[random.below(keys.count)]
            switch random.below(5) {
            case 0: details[key] = NSNull()
            case 1: details[key] = random.below(2) == 0
            case 2: details[key] = Int(bitPattern: UInt(random.next())) >> random.below(64)
            case 3: details[key] = text(&random)
            default: details[key] = (0..<random.below(4)).map { _ in text(&random) }
            }
        }
        let object: [String: Any] = [
            "id": "up-\(random.below(100)).\(UUID().uuidString.lowercased())",
            "kind": random.below(2) == 0 ? "organization" : "cloudTenant",
            "source": ["product": random.below(2) == 0 ? "vb365" : "vspc", "upstream": text(&random), "id": text(&random)],
            "name": optional(&random), "description": optional(&random), "type": optional(&random),
            "enabled": random.below(3) == 0 ? NSNull() as Any : random.below(2) == 0,
            "backup": ["protected": random.below(3) == 0 ? NSNull() as Any : random.below(2) == 0, "firstBackupAt": optional(&random), "lastBackupAt": optional(&random)],
            "details": details,
            // Half of them belong to a customer: `links.customer` before `links.self`.
            "links": random.below(2) == 0 ? ["self": "-"] : ["self": "-", "customer": "/v1/customers/" + text(&random)],
        ]
        return try JSONDecoder().decode(Tenant.self, from: JSONSerialization.data(withJSONObject: object))
    }

    @Test("600 generated tenants: byte for byte, alone and as a single tenant's answer")
    func generated() throws {
        var random = Random(state: 0x5EED_0012)
        for index in 0..<600 {
            let tenant = try Self.tenant(&random)
            let mine = Self.written(tenant)
            let reference = try Self.encoderBytes(tenant)
            #expect(mine == reference, "case \(index): \(String(decoding: mine, as: UTF8.self)) vs \(String(decoding: reference, as: UTF8.self))")
            var answer = Array(#"{"data":"#.utf8)
            answer += mine
            answer.append(UInt8(ascii: "}"))
            #expect(answer == (try Self.encoderBytes(Wrapped(data: tenant))))
        }
    }

    @Test("a customer is written as links.customer and read back from it; none, no member")
    func customerLink() throws {
        let json = #"{"id":"u.1","kind":"cloudTenant","source":{"product":"vspc","upstream":"u","id":"1"},"backup":{},"details":{},"links":{"customer":"/v1/customers/v.c1","self":"/v1/tenants/u.1"}}"#
        let tenant = try JSONDecoder().decode(Tenant.self, from: Data(json.utf8))
        #expect(tenant.customer == "v.c1")
        let mine = String(decoding: Self.written(tenant), as: UTF8.self)
        #expect(mine.contains(#""links":{"customer":"/v1/customers/v.c1","self":"/v1/tenants/u.1"}"#), "\(mine)")
        var alone = tenant
        alone.customer = nil
        #expect(String(decoding: Self.written(alone), as: UTF8.self).contains(#""links":{"self":"/v1/tenants/u.1"}"#))
        #expect(Self.written(alone) == (try Self.encoderBytes(alone)))
    }

    @Test("the fields a tenant may leave out are explicit nulls, an empty details object stays {}")
    func nullsAndEmpty() throws {
        let json = #"{"id":"u.1","kind":"cloudTenant","source":{"product":"vspc","upstream":"u","id":"1"},"backup":{},"details":{}}"#
        let tenant = try JSONDecoder().decode(Tenant.self, from: Data(json.utf8))
        let mine = String(decoding: Self.written(tenant), as: UTF8.self)
        #expect(mine.contains(#""name":null"#) && mine.contains(#""enabled":null"#) && mine.contains(#""protected":null"#) && mine.contains(#""details":{}"#))
        #expect(Self.written(tenant) == (try Self.encoderBytes(tenant)))
    }
}
