import Foundation
import HTTPTransport
import VeeamAPI

/// VSPC's async actions, followed for pass-through: a 202 names the action in `Location`; its
/// status (`GET /asyncActions/{id}`) is polled until it is no longer `running`, then its result
/// (`GET /asyncActions/{id}/result`) is the answer. Only the action's id is taken from
/// `Location` (a UUID), and the gateway's own base URL used: a 202 never sends the gateway
/// elsewhere. Bounded by the caller's deadline and by ``maxPolls``.
public enum AsyncActions {
    static let maxPolls = 100
    static let pollInterval: Duration = .milliseconds(200)

    static func follow(_ accepted: UpstreamResponse, client: VSPCClient, upstream: String) async throws -> UpstreamResponse {
        guard let location = accepted.header("location"), let id = actionID(location) else {
            throw VeeamAPIError(code: .asyncPending, status: 202, upstreamMessage: "a 202 without an async action's Location")
        }
        for poll in 0..<maxPolls {
            let info = try await client.read(["asyncActions", id])
            guard info.status == 200 else { throw VeeamAPIError.from(info) }
            switch status(of: info.body) {
            case "running":
                try await Task.sleep(for: poll == 0 ? .milliseconds(50) : pollInterval)
            case "succeed":
                return try await client.read(["asyncActions", id, "result"])
            case let other:
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "async action \(id) ended \(other ?? "without a status")")
            }
        }
        throw VeeamAPIError(code: .asyncPending, status: 202, upstreamMessage: "async action \(id) still running after \(maxPolls) polls")
    }

    /// The action's id from `…/api/v3/asyncActions/{uuid}`; nil for anything else.
    public static func actionID(_ location: String) -> String? {
        let path = location.split(separator: "?", maxSplits: 1).first.map(String.init) ?? location
        let parts = path.split(separator: "/")
        guard parts.count >= 4, parts[parts.count - 2] == "asyncActions", parts[parts.count - 3] == "v3", parts[parts.count - 4] == "api",
            let id = parts.last, UUID(uuidString: String(id)) != nil
        else { return nil }
        return id.lowercased()
    }

    /// `data.status` of an `AsyncActionInfo` answer.
    static func status(of body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return (object["data"] as? [String: Any])?["status"] as? String
    }
}
