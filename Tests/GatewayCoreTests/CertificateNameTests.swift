import GatewayAccess
import Testing

@Suite("Client certificate names: RFC 4514 subjects as RDN sequences, SANs by kind")
struct CertificateNameTests {
    typealias Attribute = DistinguishedNameValue.Attribute

    /// A certificate's subject as the front end reads it (ASN.1 order: C, O, CN).
    let acme = DistinguishedNameValue(rdns: [
        [Attribute(type: "2.5.4.6", value: "DE")], [Attribute(type: "2.5.4.10", value: "Acme, Inc.")], [Attribute(type: "2.5.4.3", value: "portal")],
    ])

    @Test("spellings of one name parse to the same RDNs", arguments: [
        #"CN=portal,O=Acme\, Inc.,C=DE"#, #"cn=portal, o=Acme\2C Inc. , c=de"#, #"2.5.4.3=Portal;2.5.4.10=ACME\, INC.;2.5.4.6=DE"#,
        #"CN = portal , O = Acme\,  Inc. , C = DE"#,
    ])
    func sameName(text: String) throws {
        #expect(try DistinguishedNameValue.parse(rfc4514: text) == acme)
    }

    @Test("other names are not equal: order, an unescaped comma, another attribute, a value with a comma inside")
    func otherNames() throws {
        #expect(try DistinguishedNameValue.parse(rfc4514: #"C=DE,O=Acme\, Inc.,CN=portal"#) != acme, "RDN order matters")
        #expect(try DistinguishedNameValue.parse(rfc4514: #"CN=portal,OU=Acme\, Inc.,C=DE"#) != acme)
        #expect(try DistinguishedNameValue.parse(rfc4514: "CN=portal,O=Acme Inc.,C=DE") != acme)
        // "CN=a,O=b" (two RDNs) is not CN "a,O=b" (one).
        let twoRDNs = try DistinguishedNameValue.parse(rfc4514: "CN=a,O=b")
        let oneRDN = try DistinguishedNameValue.parse(rfc4514: #"CN=a\,O=b"#)
        #expect(twoRDNs != oneRDN)
        #expect(oneRDN.rdns.count == 1 && oneRDN.rdns[0][0].value == "a,o=b")
        #expect(throws: DistinguishedNameValue.ParseError.self) { try DistinguishedNameValue.parse(rfc4514: "CN=portal,O=Acme, Inc.") }
        #expect(throws: DistinguishedNameValue.ParseError.self) { try DistinguishedNameValue.parse(rfc4514: "XYZ=1") }
        #expect(throws: DistinguishedNameValue.ParseError.self) { try DistinguishedNameValue.parse(rfc4514: "CN=a,") }
    }

    @Test("a multi-valued RDN is a set; spaces inside a value count once, at its ends not at all")
    func multiValued() throws {
        #expect(try DistinguishedNameValue.parse(rfc4514: "CN=x+UID=y,O=z") == (try DistinguishedNameValue.parse(rfc4514: "UID=y+CN=x,O=z")))
        #expect(try DistinguishedNameValue.parse(rfc4514: "CN=x+UID=y") != (try DistinguishedNameValue.parse(rfc4514: "CN=x,UID=y")))
        #expect(try DistinguishedNameValue.parse(rfc4514: "CN=a  b") == (try DistinguishedNameValue.parse(rfc4514: "CN=a b")))
        #expect(try DistinguishedNameValue.parse(rfc4514: "CN=ab") != (try DistinguishedNameValue.parse(rfc4514: "CN=a b")))
    }

    @Test("SANs are kept apart by kind, and compared as their kind says")
    func alternativeNames() {
        #expect(AlternativeName.dns("Portal.Example.TEST.").normalized == AlternativeName.dns("portal.example.test").normalized)
        #expect(AlternativeName.email("Ops@EXAMPLE.test").normalized == AlternativeName.email("Ops@example.test").normalized)
        #expect(AlternativeName.email("Ops@example.test").normalized != AlternativeName.email("ops@example.test").normalized, "the local part is as written")
        #expect(AlternativeName.dns("ops@example.test").normalized != AlternativeName.email("ops@example.test").normalized)
        #expect(AlternativeName.inferred("10.0.0.1") == .ip([10, 0, 0, 1]))
        #expect(AlternativeName.inferred("::1") == .ip([UInt8](repeating: 0, count: 15) + [1]))
        #expect(AlternativeName.inferred("spiffe://acme/portal") == .uri("spiffe://acme/portal"))
        #expect(AlternativeName.inferred("ops@example.test") == .email("ops@example.test"))
        #expect(AlternativeName.inferred("portal.example.test") == .dns("portal.example.test"))
        #expect(AlternativeName.inferred("1::2::3") == .dns("1::2::3") && AlternativeName.inferred("256.1.1.1") == .dns("256.1.1.1"))
        #expect(AlternativeName.ip(IPAddress("::ffff:10.0.0.1")?.bytes ?? []).normalized == AlternativeName.ip([10, 0, 0, 1]).normalized)
    }

    @Test("the directory finds a caller by parsed subject or by a SAN of the right kind")
    func directory() throws {
        var bySubject = CallerRecord(id: "portal", keyHash: nil, roles: [], scopes: [])
        bySubject.certificate = CertificateBinding(subject: try DistinguishedNameValue.parse(rfc4514: #"CN=portal,O=Acme\, Inc.,C=DE"#))
        var byMail = CallerRecord(id: "mail", keyHash: nil, roles: [], scopes: [])
        byMail.certificate = CertificateBinding(alternativeName: .email("ops@example.test"))
        let directory = CallerDirectory([bySubject, byMail])
        #expect(directory.authenticate(certificate: PeerCertificate(subject: acme, alternativeNames: []))?.id == "portal")
        let stranger = DistinguishedNameValue(rdns: [[Attribute(type: "2.5.4.3", value: "x")]])
        #expect(directory.authenticate(certificate: PeerCertificate(subject: stranger, alternativeNames: [.email("ops@EXAMPLE.TEST")]))?.id == "mail")
        #expect(directory.authenticate(certificate: PeerCertificate(subject: stranger, alternativeNames: [.dns("ops@example.test")])) == nil)
    }
}
