import Crypto
public import Foundation
import SwiftASN1
import X509

/// A certificate authority and a server certificate signed by it, made in memory.
///
/// The simulator uses it when it is given no certificate (`--write-ca PATH` writes the CA out
/// so a client can trust it with verification on); tests use it to make trusted and untrusted
/// servers and to compute public-key pins.
public struct TLSMaterial: Sendable {
    /// The CA certificate, PEM.
    public let caCertificatePEM: String
    /// The server certificate, PEM (signed by the CA).
    public let serverCertificatePEM: String
    /// The server's private key, PKCS#8 PEM.
    public let serverPrivateKeyPEM: String
    /// `sha256//…` of the server certificate's public key, for `CURLOPT_PINNEDPUBLICKEY`.
    public let serverPublicKeyPin: String
    /// The CA's private key, PKCS#8 PEM, when this material was generated (it can then issue
    /// client certificates); nil when loaded from files.
    public var caPrivateKeyPEM: String? = nil

    /// A client certificate and its key, PEM.
    public struct ClientCertificate: Sendable {
        public let certificatePEM: String
        public let privateKeyPEM: String
    }

    /// Issues a client certificate (`clientAuth`) signed by this material's CA, with subject
    /// `O=organization, CN=commonName` and the given DNS, e-mail and URI subject alternative names.
    public func issueClientCertificate(
        commonName: String, organization: String = "VeeamGateway", dnsNames: [String] = [], emails: [String] = [], uris: [String] = []
    ) throws -> ClientCertificate {
        guard let caPrivateKeyPEM else { throw CertificateError.noCAKey }
        let caKey = try P256.Signing.PrivateKey(pemRepresentation: caPrivateKeyPEM)
        let caCertificate = try Certificate(pemEncoded: caCertificatePEM)
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let subject = try DistinguishedName {
            OrganizationName(organization)
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(30 * 24 * 3600),
            issuer: caCertificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                let alternativeNames: [GeneralName] = dnsNames.map { .dnsName($0) } + emails.map { .rfc822Name($0) } + uris.map { .uniformResourceIdentifier($0) }
                if !alternativeNames.isEmpty { SubjectAlternativeNames(alternativeNames) }
                AuthorityKeyIdentifier(keyIdentifier: try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        return ClientCertificate(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    public enum CertificateError: Error {
        /// Only generated material knows its CA's key.
        case noCAKey
    }

    /// Makes a new CA and a server certificate for `hosts` (DNS names and IP addresses).
    public static func generate(
        commonName: String = "VeeamGateway simulator CA",
        hosts: [String] = ["localhost", "127.0.0.1", "::1"],
        validity: TimeInterval = 30 * 24 * 3600
    ) throws -> TLSMaterial {
        let now = Date()
        let notBefore = now.addingTimeInterval(-3600)
        let notAfter = now.addingTimeInterval(validity)

        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("VeeamGateway")
            CommonName(commonName)
        }
        let caCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(caKey.publicKey),
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(caKey.publicKey))
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )

        let serverKey = P256.Signing.PrivateKey()
        let serverName = try DistinguishedName {
            OrganizationName("VeeamGateway")
            CommonName(hosts.first ?? "localhost")
        }
        var names: [GeneralName] = []
        for host in hosts {
            if let bytes = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let serverCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(serverKey.publicKey),
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: caName,
            subject: serverName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(keyIdentifier: try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )

        return TLSMaterial(
            caCertificatePEM: try caCertificate.serializeAsPEM().pemString,
            serverCertificatePEM: try serverCertificate.serializeAsPEM().pemString,
            serverPrivateKeyPEM: serverKey.pemRepresentation,
            serverPublicKeyPin: publicKeyPin(spkiDER: serverKey.publicKey.derRepresentation),
            caPrivateKeyPEM: caKey.pemRepresentation
        )
    }

    /// Loads a server certificate and key from PEM files (no CA is known then).
    public static func load(certificateFile: String, keyFile: String) throws -> TLSMaterial {
        let certificatePEM = try String(contentsOfFile: certificateFile, encoding: .utf8)
        let keyPEM = try String(contentsOfFile: keyFile, encoding: .utf8)
        let certificate = try Certificate(pemEncoded: certificatePEM)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        return TLSMaterial(
            caCertificatePEM: certificatePEM,
            serverCertificatePEM: certificatePEM,
            serverPrivateKeyPEM: keyPEM,
            serverPublicKeyPin: publicKeyPin(spkiDER: Data(serializer.serializedBytes))
        )
    }

    /// `sha256//` + base64(SHA-256(SubjectPublicKeyInfo DER)), libcurl's pin format.
    public static func publicKeyPin(spkiDER: Data) -> String {
        "sha256//" + Data(SHA256.hash(data: spkiDER)).base64EncodedString()
    }

    /// Writes the CA certificate (PEM) to `path`.
    public func writeCA(to path: String) throws {
        try Data(caCertificatePEM.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private static func ipAddressBytes(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            let bytes = parts.compactMap { UInt8($0) }
            return bytes.count == 4 ? bytes : nil
        }
        if host == "::1" { return Array(repeating: 0, count: 15) + [1] }
        return nil
    }
}
