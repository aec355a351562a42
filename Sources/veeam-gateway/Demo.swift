import ArgumentParser
import Foundation
import GatewayConfig
import Logging
import ServiceLifecycle
import VeeamSimulator

/// `veeam-gateway demo`: both simulators on free loopback ports with a generated certificate, and
/// a gateway that trusts it (verification on) on 127.0.0.1:8080. Ctrl-C or SIGTERM stops all.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the simulated Veeam servers and a gateway wired to them (config/demo.yaml).")

    @Option(help: "Gateway port.") var port = 8080
    @Option(help: "Demo config file (default: the one built in, config/demo.yaml in the repository).") var config: String?
    @Option(help: "Simulator fixture directory (default: the estate built in, config/simulator in the repository).") var fixtures: String?
    @Option(help: "Log level.") var logLevel = "notice"
    @Option(name: .customLong("vb365-api"), help: "VB365 REST version the simulator serves: v5, v6, v7 or v8 (the gateway finds it: apiVersion auto).")
    var vb365API = "v5"
    @Option(help: "VSPC dialect the simulator speaks: seed or 3.6.1.") var dialect = "seed"

    func validate() throws {
        guard SimulatorVB365API(rawValue: vb365API) != nil else {
            throw ValidationError("--vb365-api must be one of \(SimulatorVB365API.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard SimulatorDialect(rawValue: dialect) != nil else { throw ValidationError("--dialect must be seed or 3.6.1") }
    }

    static let passwordVariables = [
        "backup-admin@abc.onmicrosoft.com": "DEMO_VB365_ABC_PASSWORD",
        "svc-backup@contoso.local": "DEMO_VB365_CONTOSO_PASSWORD",
        "backup@fabrikam-hybrid.onmicrosoft.com": "DEMO_VB365_FABRIKAM_PASSWORD",
        "gateway-svc": "DEMO_VSPC_PASSWORD",
    ]

    func run() async throws {
        let logger = makeLogger(level: logLevel)
        let loaded = try fixtures.map { try SimulatorFixtures.load(directory: $0) } ?? SimulatorFixtures.builtIn()
        // The demo's secrets, from the simulator's own fixtures, as environment variables.
        let accounts = loaded.organizations.map(\.account) + loaded.vspcUsers.map(\.account)
        for account in accounts {
            if let variable = Self.passwordVariables[account.username] { setenv(variable, account.password, 1) }
        }
        setenv("DEMO_TOKEN_KEY", (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(), 1)
        let tls = try TLSMaterial.generate()
        let work = NSTemporaryDirectory() + "veeam-gateway-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let caFile = work + "/simulator-ca.pem"
        try tls.writeCA(to: caFile)
        // Without --config, the built-in configuration, written where a reload can read it again.
        let configFile = config ?? work + "/demo.yaml"
        if config == nil { try Data(PackageResources.demo_yaml).write(to: URL(fileURLWithPath: configFile)) }

        var simulatorConfiguration = SimulatorConfiguration(fixtures: loaded, tls: tls)
        simulatorConfiguration.vb365Port = 0
        simulatorConfiguration.vspcPort = 0
        simulatorConfiguration.vb365API = SimulatorVB365API(rawValue: vb365API) ?? .v5
        simulatorConfiguration.dialect = SimulatorDialect(rawValue: dialect) ?? .seed
        var simLogger = logger
        simLogger.logLevel = .warning
        let simulator = VeeamSimulator(configuration: simulatorConfiguration, logger: simLogger)
        let wiring = DemoGateway(simulator: simulator, configFile: configFile, caFile: caFile, port: port, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [simulator, wiring], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: work)
    }
}

/// Waits for the simulators, points config/demo.yaml at them, runs the gateway, prints how to try it.
struct DemoGateway: Service {
    let simulator: VeeamSimulator
    let configFile: String
    let caFile: String
    let port: Int
    let logger: Logger

    func run() async throws {
        let ports = await simulator.waitUntilReady()
        let vb365 = "https://127.0.0.1:\(ports[.vb365] ?? 0)"
        let vspc = "https://127.0.0.1:\(ports[.vspc] ?? 0)"
        var environment = ProcessInfo.processInfo.environment
        environment["VEEAM_GATEWAY__UPSTREAMS__0__BASEURL"] = vb365
        environment["VEEAM_GATEWAY__UPSTREAMS__0__TLS__CAFILE"] = caFile
        environment["VEEAM_GATEWAY__UPSTREAMS__1__BASEURL"] = vspc
        environment["VEEAM_GATEWAY__UPSTREAMS__1__TLS__CAFILE"] = caFile
        environment["VEEAM_GATEWAY__LISTEN__PORT"] = String(port)
        let configuration = try loadConfiguration(configFile, environment: environment)
        let runner = GatewayRunner(configuration: configuration, logger: logger, port: port) { bound in
            let base = "http://127.0.0.1:\(bound)"
            let names = configuration.upstreams.map(\.name)
            FileHandle.standardOutput.write(Data(
                """

                VeeamGateway demo
                  gateway      \(base)
                  VB365 (sim)  \(vb365)/\(simulator.configuration.vb365API.rawValue)      upstream \(names.first ?? "")
                  VSPC  (sim)  \(vspc)/api/v3   upstream \(names.last ?? "")
                  simulator CA \(caFile) (the gateway verifies with it)

                API keys (config/demo.yaml):
                  demo-portal-admin    PortalAdministrator: every tenant, /v1/upstreams
                  demo-sp-admin        ServiceProviderAdministrator: every tenant
                  demo-company-owner   CompanyOwner: sees no tenant (403 on single reads)
                  demo-abc-app         scoped to abc.onmicrosoft.com: that organization only

                Try:
                  curl -s -H 'X-API-Key: demo-portal-admin' \(base)/v1/tenants
                  curl -s -H 'X-API-Key: demo-sp-admin' '\(base)/v1/tenants?product=vspc&q=alpha'
                  curl -s -H 'Authorization: Bearer demo-abc-app' \(base)/v1/tenants/\(names.first ?? "").cbc52c37-df7f-4b03-98f3-036e7d4b3127
                  curl -s -H 'X-API-Key: demo-portal-admin' \(base)/v1/tenants/\(names.last ?? "").c386d34c-0ab6-4e13-b30a-67fcb05b83e4
                  curl -s -H 'X-API-Key: demo-company-owner' \(base)/v1/tenants/\(names.last ?? "").c386d34c-0ab6-4e13-b30a-67fcb05b83e4
                  curl -s -H 'X-API-Key: demo-portal-admin' \(base)/v1/upstreams
                  curl -s \(base)/readyz
                  curl -s -X POST \(base)/v1/auth/token -d grant_type=client_credentials -d client_id=demo-sp-admin -d client_secret=demo-sp-admin

                Ctrl-C stops.

                """.utf8))
        }
        try await runner.run()
    }
}
