import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VeeamSimulator

@main
struct VeeamSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veeam-sim",
        abstract: "Simulated Veeam Backup for Microsoft 365 (REST v5–v8) and Veeam Service Provider Console (REST v3) servers over HTTPS.",
        discussion: """
            Users, passwords and records are config/simulator/*.json, built in (see docs/simulator.md); --fixtures reads another directory.
            Without --cert/--key a throwaway CA and server certificate are generated; --write-ca
            writes the CA out so clients can trust it with verification on.
            Loopback callers can read counters and set faults at run time under /_sim/ on either port.
            """
    )

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "VB365 port (0: any free port).") var vb365Port = 4443
    @Option(help: "VSPC port (0: any free port).") var vspcPort = 1280
    @Flag(help: "Do not start the VB365 listener.") var noVb365 = false
    @Flag(help: "Do not start the VSPC listener.") var noVspc = false
    @Option(help: "VSPC dialect: seed (old servers: general, gatewayPool, null throttlingUnit) or 3.6.1 (VSPC 9.1).")
    var dialect: String = "seed"
    @Option(name: .customLong("vb365-api"), help: "VB365 REST version to serve: v5 (the seed's, default), v6, v7 or v8, each as its published spec describes.")
    var vb365API: String = "v5"
    @Option(help: "Access-token lifetime in seconds (expires_in).") var tokenLifetime: Double = 3600
    @Flag(help: "Offer HTTP/2 (ALPN h2) as well as HTTP/1.1.") var http2 = false
    @Flag(help: "gzip answers to requests that accept it.") var gzip = false
    @Option(help: "Fixture directory holding vb365.json and vspc.json (default: the built-in estate, config/simulator).") var fixtures: String?
    @Option(help: "Add N generated organizations and N generated tenants.") var generate = 0
    @Option(help: "Generated tenants (default: as --generate).") var generateTenants: Int?
    @Option(help: "Generated companies (default: as --generate); organization and tenant i belong to company (i-1) % N + 1.") var generateCompanies: Int?
    @Option(help: "VB365 servers VSPC manages: generated organization i is on server (i-1) % N.") var vb365Servers = 1
    @Option(help: "Which of --vb365-servers this process plays as VB365 (0: the one VSPC names by this host).") var vb365Shard = 0
    @Option(help: "Server certificate (PEM). Needs --key.") var cert: String?
    @Option(help: "Server private key (PEM). Needs --cert.") var key: String?
    @Option(help: "Write the generated CA certificate (PEM) to this path.") var writeCa: String?
    @Option(help: "Write the server key's pin (sha256//…) to this path.") var writePin: String?
    @Option(help: "Write the bound ports as JSON ({\"vb365\":N,\"vspc\":N}) to this path once listening.") var writePorts: String?
    @Option(help: "Latency added to every request, in ms (both products).") var latencyMs = 0
    @Option(help: "Share (0…1) of resource requests answered with a server error (VB365 500, VSPC 520).") var errorRate = 0.0
    @Option(help: "Share (0…1) answered with malformed JSON.") var malformedRate = 0.0
    @Option(help: "Share (0…1) whose connection is reset mid-body.") var resetRate = 0.0
    @Option(help: "Share (0…1) answered 429 with retryAfter.") var throttleRate = 0.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func validate() throws {
        guard SimulatorDialect(rawValue: dialect) != nil else {
            throw ValidationError("--dialect must be seed or 3.6.1")
        }
        guard SimulatorVB365API(rawValue: vb365API) != nil else {
            throw ValidationError("--vb365-api must be one of \(SimulatorVB365API.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        guard tokenLifetime > 0, tokenLifetime <= 365 * 86400 else { throw ValidationError("--token-lifetime must be between 0 and a year of seconds") }
        guard (0...600_000).contains(latencyMs) else { throw ValidationError("--latency-ms must be between 0 and 600000") }
        for (name, rate) in [("error", errorRate), ("malformed", malformedRate), ("reset", resetRate), ("throttle", throttleRate)] {
            guard (0...1).contains(rate) else { throw ValidationError("--\(name)-rate must be between 0 and 1") }
        }
    }

    func run() async throws {
        var logger = Logger(label: "veeam-sim")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var loaded = try fixtures.map { try SimulatorFixtures.load(directory: $0) } ?? SimulatorFixtures.builtIn()
        guard vb365Servers >= 1, (0..<vb365Servers).contains(vb365Shard) else {
            throw ValidationError("--vb365-shard must be in 0..<--vb365-servers")
        }
        loaded.generate(count: generate, tenants: generateTenants, companies: generateCompanies, servers: vb365Servers, shard: vb365Shard)
        let tls: TLSMaterial
        if let cert, let key {
            tls = try TLSMaterial.load(certificateFile: cert, keyFile: key)
        } else {
            tls = try TLSMaterial.generate()
        }
        if let writeCa { try tls.writeCA(to: writeCa) }
        if let writePin { try Data((tls.serverPublicKeyPin + "\n").utf8).write(to: URL(fileURLWithPath: writePin)) }

        var configuration = SimulatorConfiguration(fixtures: loaded, tls: tls)
        configuration.host = host
        configuration.vb365Port = noVb365 ? nil : vb365Port
        configuration.vspcPort = noVspc ? nil : vspcPort
        configuration.dialect = SimulatorDialect(rawValue: dialect) ?? .seed
        configuration.vb365API = SimulatorVB365API(rawValue: vb365API) ?? .v5
        configuration.tokenLifetime = .milliseconds(Int64(tokenLifetime * 1000))
        configuration.http2 = http2
        configuration.gzip = gzip
        let faults = SimulatorFaults(latencyMs: latencyMs, errorRate: errorRate, malformedRate: malformedRate, resetRate: resetRate, throttleRate: throttleRate)
        configuration.faults = [.vb365: faults, .vspc: faults]

        let simulator = VeeamSimulator(configuration: configuration, logger: logger)
        let announce = Announcer(simulator: simulator, writePorts: writePorts, logger: logger, fixtures: loaded)
        let group = ServiceGroup(
            configuration: .init(services: [simulator, announce], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

/// Prints where the simulator listens once it does, and writes the ports file.
struct Announcer: Service {
    let simulator: VeeamSimulator
    let writePorts: String?
    let logger: Logger
    let fixtures: SimulatorFixtures

    func run() async throws {
        let ports = await simulator.waitUntilReady()
        let host = simulator.configuration.host
        var lines: [String] = []
        if let port = ports[.vb365] {
            let api = simulator.configuration.vb365API.rawValue
            lines.append("VB365 REST \(api) on https://\(host):\(port)/\(api)  (\(fixtures.vb365Organizations.count) organizations)")
        }
        if let port = ports[.vspc] {
            lines.append("VSPC REST v3  on https://\(host):\(port)/api/v3  (\(fixtures.tenants.count) tenants, dialect \(simulator.configuration.dialect.rawValue))")
        }
        lines.append("server key pin: \(simulator.configuration.tls.serverPublicKeyPin)")
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if let writePorts {
            var object: [String: Int] = [:]
            for (product, port) in ports { object[product.rawValue] = port }
            let data = try JSONEncoder().encode(object)
            try data.write(to: URL(fileURLWithPath: writePorts), options: .atomic)
        }
        try? await gracefulShutdown()
    }
}
