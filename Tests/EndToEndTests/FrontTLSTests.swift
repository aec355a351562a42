import CurlHTTP
import Foundation
import GatewayConfig
import GatewayHTTP
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

/// PEM files of generated TLS material in a directory: the front end's certificate and key, the
/// CA that signed it (which also issues the client certificates below).
struct FrontTLSFiles {
    let directory: String
    let material: TLSMaterial
    var certificate: String { directory + "/front.crt" }
    var key: String { directory + "/front.key" }
    var ca: String { directory + "/front-ca.crt" }

    init(directory: String, material: TLSMaterial? = nil) throws {
        self.directory = directory
        self.material = try material ?? TLSMaterial.generate(commonName: "Front CA \(UUID().uuidString.prefix(8))")
        try write()
    }

    /// Writes the material's files (again), as an operator renewing a certificate would.
    func write() throws {
        try Data(material.serverCertificatePEM.utf8).write(to: URL(fileURLWithPath: certificate))
        try Data(material.serverPrivateKeyPEM.utf8).write(to: URL(fileURLWithPath: key))
        try material.writeCA(to: ca)
    }

    /// A client certificate from this CA, written to `name.crt` and `name.key`; the TLS options
    /// that present it.
    func client(_ name: String, commonName: String, organization: String = "VeeamGateway", dnsNames: [String] = [], emails: [String] = []) throws -> TransferOptions.TLS {
        let issued = try material.issueClientCertificate(commonName: commonName, organization: organization, dnsNames: dnsNames, emails: emails)
        let certificatePath = directory + "/\(name).crt"
        let keyPath = directory + "/\(name).key"
        try Data(issued.certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePath))
        try Data(issued.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: keyPath))
        return .init(caFile: ca, clientCertificateFile: certificatePath, clientKeyFile: keyPath)
    }

    func listen(clientCA: Bool = false) -> String {
        "tls: { certificateFile: \(certificate), keyFile: \(key)\(clientCA ? ", clientCAFile: \(ca)" : "") }"
    }
}

@Suite("End to end: HTTPS on the front end (listen.tls), HTTP/2 by ALPN, client certificates")
struct FrontTLSTests {
    let cloudTenantPath = "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"

    @Test("HTTPS with HTTP/1.1 and HTTP/2: the same answers, hits answered by the hot path behind TLS; plain HTTP and untrusting clients get nothing")
    func httpsServes() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: files.listen(), frontCAFile: files.ca) { gw in
                #expect(gw.baseURL.hasPrefix("https://"))
                var http1 = gw
                http1.callerOptions.httpVersion = .http1
                let miss = try await http1.get(cloudTenantPath)
                #expect(miss.status == 200, "\(miss.text)")
                #expect(miss.info.httpVersion == "1.1")
                let hitsBefore = try await hotPathOK(gw)
                let hit = try await http1.get(cloudTenantPath)
                #expect(hit.status == 200)
                #expect(hit.header("x-cache") == "HIT")
                #expect(try await hotPathOK(gw) == hitsBefore + 1, "the hit was answered by the hot path, behind TLS")

                // A new client (libcurl would reuse the HTTP/1.1 connection above).
                var http2 = gw
                http2 = RunningGateway(
                    baseURL: gw.baseURL, client: try CurlClient(), upstreamClient: gw.upstreamClient, state: gw.state, logs: gw.logs, clock: gw.clock, configPath: gw.configPath)
                http2.callerOptions = gw.callerOptions
                defer { Task { [client = http2.client] in await client.shutdown() } }
                let overHTTP2 = try await http2.get(cloudTenantPath)
                #expect(overHTTP2.info.httpVersion == "2")
                #expect(overHTTP2.status == 200)
                #expect(overHTTP2.body == hit.body)
                #expect(overHTTP2.header("etag") == hit.header("etag"))
                let refusedOverHTTP2 = try await http2.get(cloudTenantPath, key: TestKeys.companyOwner)
                #expect(refusedOverHTTP2.info.httpVersion == "2")
                #expect(refusedOverHTTP2.status == 403)
                #expect(refusedOverHTTP2.header("content-type") == "application/problem+json")

                // Plain HTTP on the TLS port, and a client that does not trust the certificate.
                let plainURL = gw.baseURL.replacingOccurrences(of: "https://", with: "http://") + cloudTenantPath
                let plain = try? await gw.client.perform(
                    UpstreamRequest(url: plainURL, headers: [("X-API-Key", TestKeys.portalAdmin)]), options: TransferOptions(totalTimeout: .seconds(5)))
                #expect(plain == nil || plain?.status != 200)
                let untrusting = try? await gw.client.perform(
                    UpstreamRequest(url: gw.baseURL + cloudTenantPath, headers: [("X-API-Key", TestKeys.portalAdmin)]),
                    options: TransferOptions(totalTimeout: .seconds(5)))
                #expect(untrusting == nil, "a client verifying against the system CAs must not get through")
                #expect(try await gw.get("/healthz").status == 200, "the gateway still serves")
            }
        }
    }

    @Test("client certificates: a certificate bound to a caller (by subject or SAN) authenticates; unbound → 401; another CA's → no handshake")
    func clientCertificates() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        let callers = """
              - id: portal-app
                certificate: { subject: "CN=portal-app,O=VeeamGateway" }
                roles: [PortalAdministrator]
              - id: reports-app
                certificate: { san: reports.example.test }
                roles: [ReadOnlyUser]

            """
        let portal = try files.client("portal", commonName: "portal-app")
        let reports = try files.client("reports", commonName: "someone-else", dnsNames: ["reports.example.test"])
        let stranger = try files.client("stranger", commonName: "stranger")
        let otherDirectory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: otherDirectory) }
        var foreignClient = try FrontTLSFiles(directory: otherDirectory).client("foreign", commonName: "portal-app")
        foreignClient.caFile = files.ca

        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: files.listen(clientCA: true), extraCallers: callers, frontCAFile: files.ca) { gw in
                func get(_ path: String, tls: TransferOptions.TLS, http1: Bool = false, key: String? = nil) async throws -> UpstreamResponse {
                    var options = gw.callerOptions
                    options.tls = tls
                    if http1 { options.httpVersion = .http1 }
                    let client = try CurlClient()  // a new connection per identity
                    defer { Task { await client.shutdown() } }
                    return try await client.perform(UpstreamRequest(url: gw.baseURL + path, headers: key.map { [("X-API-Key", $0)] } ?? []), options: options)
                }
                for http1 in [true, false] {
                    let byPortal = try await get(cloudTenantPath, tls: portal, http1: http1)
                    #expect(byPortal.status == 200, "portal-app by subject (HTTP/\(http1 ? "1.1" : "2")): \(byPortal.text)")
                    #expect(byPortal.info.httpVersion == (http1 ? "1.1" : "2"))
                    #expect(try await get("/v1/upstreams", tls: portal, http1: http1).status == 200)
                    // reports-app (found by its SAN) is a ReadOnlyUser: seed 004 refuses it a CloudTenant.
                    let byReports = try await get(cloudTenantPath, tls: reports, http1: http1)
                    #expect(byReports.status == 403, "\(byReports.text)")
                    let byStranger = try await get(cloudTenantPath, tls: stranger, http1: http1)
                    #expect(byStranger.status == 401)
                    // A key wins over the certificate it came with.
                    #expect(try await get(cloudTenantPath, tls: reports, http1: http1, key: TestKeys.portalAdmin).status == 200)
                }
                // No certificate: keys work, nothing else does.
                #expect(try await gw.get(cloudTenantPath, key: nil).status == 401)
                #expect(try await gw.get(cloudTenantPath).status == 200)
                // A certificate from a CA the front end does not trust: no handshake at all.
                let foreignAnswer = try? await get(cloudTenantPath, tls: foreignClient)
                #expect(foreignAnswer == nil)
            }
        }
    }

    @Test("certificate bindings are exact: subjects as parsed RDNs, SANs by kind; a Basic Authorization header does not hide the certificate")
    func exactCertificateBindings() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        let callers = """
              - id: portal-app
                certificate: { subject: "cn=Portal-App , o=VeeamGateway" }
                roles: [PortalAdministrator]
              - id: ops-mail
                certificate: { email: ops@example.test }
                roles: [PortalAdministrator]
              - id: comma-app
                certificate: { subject: 'CN=a\\,O=b,O=VeeamGateway' }
                roles: [PortalAdministrator]

            """
        // The same subject spelled otherwise (case, spaces, short names): the same RDNs.
        let portal = try files.client("portal", commonName: "portal-app")
        // An e-mail SAN matches the e-mail binding; a DNS SAN spelled the same does not.
        let mail = try files.client("mail", commonName: "x", emails: ["ops@EXAMPLE.test"])
        let dnsLookalike = try files.client("dns", commonName: "y", dnsNames: ["ops@example.test"])
        // CN "a,O=b" under O=VeeamGateway, against a certificate CN=a under O=b: one is not the other.
        let comma = try files.client("comma", commonName: "a,O=b")
        let lookalike = try files.client("lookalike", commonName: "a", organization: "b")

        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: files.listen(clientCA: true), extraCallers: callers, frontCAFile: files.ca) { gw in
                func get(tls: TransferOptions.TLS, headers: [(String, String)] = [], http1: Bool) async throws -> UpstreamResponse {
                    var options = gw.callerOptions
                    options.tls = tls
                    if http1 { options.httpVersion = .http1 }
                    let client = try CurlClient()
                    defer { Task { await client.shutdown() } }
                    return try await client.perform(UpstreamRequest(url: gw.baseURL + cloudTenantPath, headers: headers), options: options)
                }
                for http1 in [true, false] {
                    #expect(try await get(tls: portal, http1: http1).status == 200, "subject spelled otherwise")
                    #expect(try await get(tls: mail, http1: http1).status == 200, "e-mail SAN, domain without case")
                    #expect(try await get(tls: dnsLookalike, http1: http1).status == 401, "a DNS SAN is not an e-mail address")
                    #expect(try await get(tls: comma, http1: http1).status == 200, "escaped comma in the CN")
                    #expect(try await get(tls: lookalike, http1: http1).status == 401, "CN=a,O=b is other RDNs")
                    let basic = try await get(tls: portal, headers: [("Authorization", "Basic dXNlcjpwYXNz")], http1: http1)
                    #expect(basic.status == 200, "a Basic header (a browser's, a proxy's) does not hide the certificate: \(basic.text)")
                }
                let noCertificate = try await gw.get(cloudTenantPath, key: nil, headers: [("Authorization", "Basic dXNlcjpwYXNz")])
                #expect(noCertificate.status == 401 && noCertificate.text.contains("auth.required"), "\(noCertificate.text)")
            }
        }
    }

    /// Runs `openssl` with `arguments` in `directory`; its standard output.
    @discardableResult
    func openssl(_ arguments: [String], in directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")) failed")
        return String(decoding: data, as: UTF8.self)
    }

    /// A CRL of `files`' CA (made by `openssl ca -gencrl`, not by the code under test) revoking
    /// the certificates at `revoking` (PEM paths); written to `name` in the directory.
    func revocationList(_ files: FrontTLSFiles, revoking: [String], name: String) throws -> String {
        let directory = files.directory
        let key = try #require(files.material.caPrivateKeyPEM)
        try Data(key.utf8).write(to: URL(fileURLWithPath: directory + "/front-ca.key"))
        var index = ""
        for certificate in revoking {
            let serial = try openssl(["x509", "-noout", "-serial", "-in", certificate], in: directory)
                .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
            index += "R\t300101000000Z\t260101000000Z\t\(serial)\tunknown\t/CN=revoked\n"
        }
        try Data(index.utf8).write(to: URL(fileURLWithPath: directory + "/index.txt"))
        try Data("01\n".utf8).write(to: URL(fileURLWithPath: directory + "/crlnumber"))
        let config = "[ ca ]\ndefault_ca = gw\n[ gw ]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\n"
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/ca.cnf"))
        try openssl(["ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "front-ca.key", "-cert", "front-ca.crt", "-out", name], in: directory)
        return directory + "/" + name
    }

    @Test("listen.tls.crlFile: a revoked client certificate fails the handshake on HTTP/1.1 and HTTP/2; others are served; a CRL from another CA is a config error")
    func revokedClientCertificates() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        let callers = """
              - id: revoked-app
                certificate: { subject: "CN=revoked-app,O=VeeamGateway" }
                roles: [PortalAdministrator]
              - id: kept-app
                certificate: { subject: "CN=kept-app,O=VeeamGateway" }
                roles: [PortalAdministrator]

            """
        let revoked = try files.client("revoked", commonName: "revoked-app")
        let kept = try files.client("kept", commonName: "kept-app")
        let crl = try revocationList(files, revoking: [directory + "/revoked.crt"], name: "clients.crl")
        let listen = "tls: { certificateFile: \(files.certificate), keyFile: \(files.key), clientCAFile: \(files.ca), crlFile: \(crl) }"
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: listen, extraCallers: callers, frontCAFile: files.ca) { gw in
                for http1 in [true, false] {
                    var options = gw.callerOptions
                    if http1 { options.httpVersion = .http1 }
                    options.tls = kept
                    let client = try CurlClient()
                    let byKept = try await client.perform(UpstreamRequest(url: gw.baseURL + cloudTenantPath), options: options)
                    #expect(byKept.status == 200, "a certificate the CRL does not list: \(byKept.text)")
                    options.tls = revoked
                    let byRevoked = try? await client.perform(UpstreamRequest(url: gw.baseURL + cloudTenantPath), options: options)
                    #expect(byRevoked == nil, "a revoked certificate gets no handshake (got \(byRevoked?.status ?? 0))")
                    await client.shutdown()
                }
                #expect(try await gw.get(cloudTenantPath).status == 200, "keys still work")
                // The gateway's own chain check still refuses another CA's certificate.
                let strangerDirectory = try makeTemporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: strangerDirectory) }
                var foreign = try FrontTLSFiles(directory: strangerDirectory).client("foreign", commonName: "kept-app")
                foreign.caFile = files.ca
                var options = gw.callerOptions
                options.tls = foreign
                let client = try CurlClient()
                let byForeign = try? await client.perform(UpstreamRequest(url: gw.baseURL + cloudTenantPath), options: options)
                #expect(byForeign == nil, "another CA's certificate gets no handshake")
                await client.shutdown()
            }
        }
        // A CRL signed by another CA: refused at load, naming the key.
        let otherDirectory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: otherDirectory) }
        let other = try FrontTLSFiles(directory: otherDirectory)
        let foreignCRL = try revocationList(other, revoking: [], name: "foreign.crl")
        let settings = GatewayConfiguration.FrontTLSSettings(
            certificateFile: files.certificate, keyFile: files.key, clientCAFile: files.ca, crlFile: foreignCRL)
        #expect {
            _ = try FrontTLS.clientCheck(settings, file: "gateway.yaml")
        } throws: { error in
            (error as? ConfigError)?.key == "listen.tls.crlFile" && "\(error)".contains("not signed by a CA")
        }
    }

    @Test("connections that never finish the TLS handshake are closed at the head deadline")
    func silentHandshakes() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        try await withSimulator { sim in
            try await withGateway(
                vb365: sim, vspc: sim, listen: files.listen() + ", idleTimeout: 3s, requestHeadTimeout: 1s", frontCAFile: files.ca
            ) { gw in
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                let closed = try await RawConnection.onThread { () throws -> Int in
                    var fds: [Int32] = []
                    for index in 0..<100 {
                        let fd = try RawConnection.connect(port: port)
                        // Half send nothing; half the first bytes of a ClientHello, then stop.
                        if index % 2 == 1 { try RawConnection.send(fd, [0x16, 0x03, 0x01, 0x02, 0x00]) }
                        fds.append(fd)
                    }
                    usleep(2_000_000)  // the deadline (1 s) and a second
                    let count = fds.filter { fd in
                        var byte: UInt8 = 0
                        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
                    }.count
                    for fd in fds { close(fd) }
                    return count
                }
                #expect(closed == 100, "\(closed) of 100 silent or stalled handshakes closed within the deadline and a second")
                #expect(try await gw.get("/healthz").status == 200, "the gateway still serves")
            }
        }
    }

    func hotPathOK(_ gateway: RunningGateway) async throws -> Int {
        let text = try await gateway.get("/metrics", key: nil).text
        let line = text.split(separator: "\n").first { $0.hasPrefix("veeam_gateway_hot_path_responses_total{") && $0.contains("\"200\"") }
        return line.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }.map { Int($0) } ?? 0
    }
}
