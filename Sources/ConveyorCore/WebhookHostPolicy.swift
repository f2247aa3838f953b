import Foundation

/// Which hosts completion webhooks may call. A submitter chooses a task's `callback_url`, and the broker
/// calls it from inside the network: without a list, anyone who may submit could make it call internal
/// addresses (a metadata service, an admin port). So nothing is allowed until the operator names hosts.
///
/// Entries are host names or IP literals, matched case-insensitively; `*.example.com` matches every
/// subdomain of example.com (not example.com itself); `*` alone allows every host (for a closed network).
/// Only `http` and `https` URLs, without user info, are accepted.
public struct WebhookHostPolicy: Sendable, Hashable {
    public var allowedHosts: [String]

    public init(allowedHosts: [String]) {
        self.allowedHosts = allowedHosts.map { $0.lowercased() }.filter { !$0.isEmpty }
    }

    /// The longest URL accepted.
    public static let maxURLBytes = 2048

    /// Nil when `url` may be called; otherwise why not, as a sentence for the client.
    public func refusal(for url: String) -> String? {
        guard url.utf8.count <= Self.maxURLBytes else { return "must be at most \(Self.maxURLBytes) bytes" }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else { return "must be an http or https URL" }
        guard let host = components.host?.lowercased(), !host.isEmpty else { return "must name a host" }
        guard components.user == nil, components.password == nil else { return "must not carry user info" }
        guard !allowedHosts.isEmpty else {
            return "webhooks are off: no host is allowed (set CONVEYOR_WEBHOOK_HOSTS and CONVEYOR_WEBHOOK_SECRET)"
        }
        guard allows(host: host) else { return "host '\(host)' is not in the allowed webhook hosts" }
        return nil
    }

    func allows(host: String) -> Bool {
        let host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        for entry in allowedHosts {
            if entry == "*" || entry == host { return true }
            if entry.hasPrefix("*."), host.hasSuffix(entry.dropFirst()) { return true }
        }
        return false
    }
}
