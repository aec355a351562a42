public import HTTPTransport
/// An ``UpstreamTransport`` for one upstream: a shared ``CurlClient`` plus that upstream's
/// ``TransferOptions``. Cheap to copy; every transport of a process should share one client,
/// so that connections, DNS answers and TLS sessions are shared.
public struct CurlTransport: UpstreamTransport {
    public let client: CurlClient
    public let options: TransferOptions

    public init(client: CurlClient, options: TransferOptions) {
        self.client = client
        self.options = options
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        try await client.perform(request, options: options)
    }
}
