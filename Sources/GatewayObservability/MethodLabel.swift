/// The method of a request as metrics, the status board and the access log record it: one of
/// the methods HTTP defines (RFC 9110 and PATCH), else `other`. HTTP/1's parser refuses made-up
/// methods, but an HTTP/2 `:method` is any token the peer chooses; recording it as sent would
/// make a series, a board row and a log field per invented name.
public enum MethodLabel {
    /// The methods recorded under their own name.
    public static let known: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]

    /// `method` when it is one of ``known``, else `other`.
    public static func label(_ method: String) -> String {
        // GET first: nearly every request is one, and it costs one comparison.
        if method == "GET" || known.contains(method) { return method }
        return "other"
    }
}
