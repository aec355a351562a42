public import Foundation
import NIOCore
public import NIOSSL
import SwiftASN1
public import X509

/// A certificate revocation list (RFC 5280 §5): who issued it and the serial numbers it revokes.
/// Only what refusing a revoked client certificate needs is read; the list's signature is
/// checked against its issuer's key when it is loaded (``ClientCertificateCheck/load(caFile:crlFile:)``).
public struct RevocationList: Sendable {
    public var issuer: DistinguishedName
    /// Serial numbers without leading zero bytes.
    public var revoked: Set<[UInt8]>
    /// The signed part, its algorithm and its signature, for checking against the issuer.
    var signedBytes: [UInt8]
    var signatureAlgorithm: ASN1ObjectIdentifier
    var signature: [UInt8]

    /// Parses one DER `CertificateList`.
    public init(derEncoded bytes: [UInt8]) throws {
        let root = try DER.parse(bytes)
        var parsed: (issuer: DistinguishedName, revoked: Set<[UInt8]>, signed: [UInt8], algorithm: ASN1ObjectIdentifier, signature: [UInt8])?
        try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbs = nodes.next(), let algorithmNode = nodes.next(), let signatureNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "a CertificateList has three parts")
            }
            var issuer: DistinguishedName?
            var revoked = Set<[UInt8]>()
            try DER.sequence(tbs, identifier: .sequence) { fields in
                var field = fields.next()
                if field?.identifier == .integer { field = fields.next() }  // version
                guard field?.identifier == .sequence else { throw ASN1Error.invalidASN1Object(reason: "no signature algorithm in tbsCertList") }
                guard let issuerNode = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "no issuer") }
                issuer = try DistinguishedName(derEncoded: issuerNode)
                _ = fields.next()  // thisUpdate
                field = fields.next()
                if let time = field, time.identifier == .utcTime || time.identifier == .generalizedTime { field = fields.next() }  // nextUpdate
                if let list = field, list.identifier == .sequence {
                    guard case .constructed(let entries) = list.content else { throw ASN1Error.invalidASN1Object(reason: "revokedCertificates") }
                    for entry in entries {
                        try DER.sequence(entry, identifier: .sequence) { parts in
                            guard let serial = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "a revoked entry without a serial") }
                            revoked.insert(Self.trimmed(Array(try ArraySlice<UInt8>(derEncoded: serial))))
                            while parts.next() != nil {}  // revocation date, entry extensions
                        }
                    }
                    field = fields.next()
                }
                while field != nil { field = fields.next() }  // crlExtensions
            }
            let algorithm = try DER.sequence(algorithmNode, identifier: .sequence) { parts -> ASN1ObjectIdentifier in
                guard let oid = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "an empty algorithm identifier") }
                while parts.next() != nil {}
                return try ASN1ObjectIdentifier(derEncoded: oid)
            }
            let signature = try ASN1BitString(derEncoded: signatureNode)
            guard let issuer else { throw ASN1Error.invalidASN1Object(reason: "no issuer") }
            parsed = (issuer, revoked, Array(tbs.encodedBytes), algorithm, Array(signature.bytes))
        }
        guard let parsed else { throw ASN1Error.invalidASN1Object(reason: "not a CertificateList") }
        self.issuer = parsed.issuer
        self.revoked = parsed.revoked
        self.signedBytes = parsed.signed
        self.signatureAlgorithm = parsed.algorithm
        self.signature = parsed.signature
    }

    /// Whether `issuerCertificate`'s key signed this list.
    func isSigned(by issuerCertificate: Certificate) -> Bool {
        let algorithms: [ASN1ObjectIdentifier: Certificate.SignatureAlgorithm] = [
            [1, 2, 840, 10045, 4, 3, 2]: .ecdsaWithSHA256, [1, 2, 840, 10045, 4, 3, 3]: .ecdsaWithSHA384, [1, 2, 840, 10045, 4, 3, 4]: .ecdsaWithSHA512,
            [1, 2, 840, 113549, 1, 1, 11]: .sha256WithRSAEncryption, [1, 2, 840, 113549, 1, 1, 12]: .sha384WithRSAEncryption,
            [1, 2, 840, 113549, 1, 1, 13]: .sha512WithRSAEncryption, [1, 3, 101, 112]: .ed25519,
        ]
        guard issuerCertificate.subject == issuer, let algorithm = algorithms[signatureAlgorithm] else { return false }
        return issuerCertificate.publicKey.isValidSignature(signature, for: signedBytes, signatureAlgorithm: algorithm)
    }

    static func trimmed(_ serial: [UInt8]) -> [UInt8] {
        Array(serial.drop(while: { $0 == 0 }))
    }
}

/// Client certificates verified by the gateway itself, when `listen.tls.crlFile` is set:
/// BoringSSL (through NIOSSL) offers no revocation lists, so the handshake's verification is
/// replaced by this one — the chain to a CA of `listen.tls.clientCAFile` (swift-certificates'
/// RFC 5280 verifier, at the time of the handshake) and then no certificate of the chain below
/// the CA in its issuer's revocation list. A refused certificate fails the handshake, as an
/// untrusted one does. Without a CRL file the default verification runs and this is not used.
public final class ClientCertificateCheck: Sendable {
    let roots: [Certificate]
    let lists: [RevocationList]

    init(roots: [Certificate], lists: [RevocationList]) {
        self.roots = roots
        self.lists = lists
    }

    /// Why a CRL file was not taken.
    public struct LoadError: Error, Sendable {
        public var message: String
    }

    /// Reads the client CAs and the CRLs (PEM `X509 CRL` blocks, or one DER list); every list must
    /// be signed by one of the CAs.
    public static func load(caFile: String, crlFile: String) throws(LoadError) -> ClientCertificateCheck {
        let roots: [Certificate]
        do {
            let pem = try String(contentsOfFile: caFile, encoding: .utf8)
            roots = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
        } catch {
            throw LoadError(message: "the CA certificates in \(caFile) could not be read (\(error))")
        }
        guard let data = FileManager.default.contents(atPath: crlFile) else { throw LoadError(message: "\(crlFile) cannot be read") }
        var lists: [RevocationList] = []
        do {
            if let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN") {
                for document in try PEMDocument.parseMultiple(pemString: text) where document.discriminator == "X509 CRL" {
                    lists.append(try RevocationList(derEncoded: document.derBytes))
                }
            } else {
                lists.append(try RevocationList(derEncoded: Array(data)))
            }
        } catch {
            throw LoadError(message: "\(crlFile) holds no readable certificate revocation list (\(error))")
        }
        guard !lists.isEmpty else { throw LoadError(message: "\(crlFile) holds no X509 CRL") }
        for list in lists where !roots.contains(where: { list.isSigned(by: $0) }) {
            throw LoadError(message: "the revocation list of \(list.issuer) in \(crlFile) is not signed by a CA of \(caFile)")
        }
        return ClientCertificateCheck(roots: roots, lists: lists)
    }

    /// Whether `chain` (the peer's, leaf first) is trusted and not revoked, now.
    public func verify(_ chain: [NIOSSLCertificate]) async -> NIOSSLVerificationResult {
        let parsed = chain.compactMap { certificate -> Certificate? in
            guard let der = try? certificate.toDERBytes() else { return nil }
            return try? Certificate(derEncoded: der)
        }
        guard parsed.count == chain.count, let leaf = parsed.first else { return .failed }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(validationTime: Date()) }
        guard case .validCertificate(let validated) = await verifier.validate(leaf: leaf, intermediates: CertificateStore(Array(parsed.dropFirst()))) else {
            return .failed
        }
        if let usage = try? leaf.extensions.extendedKeyUsage, !usage.contains(.clientAuth), !usage.contains(.any) { return .failed }
        for certificate in validated.dropLast() where isRevoked(certificate) { return .failed }
        return .certificateVerified
    }

    func isRevoked(_ certificate: Certificate) -> Bool {
        let serial = RevocationList.trimmed(Array(certificate.serialNumber.bytes))
        return lists.contains { $0.issuer == certificate.issuer && $0.revoked.contains(serial) }
    }
}
