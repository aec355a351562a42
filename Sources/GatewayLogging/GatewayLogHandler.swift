import Foundation
public import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's log lines (`log.format`): `text` (default), `timestamp level label: message
/// key=value …`, or `json`, one object per line with `timestamp`, `level`, `label`, `message`,
/// then the metadata (request id, route, caller, upstream, code, duration…). Both are formatted
/// by hand (no encoder or date formatter per line) and handed to a ``LogSink``, whose own thread
/// writes them: an access line costs the event loop its formatting and one short lock.
public struct GatewayLogHandler: LogHandler {
    /// The two line formats.
    public enum Format: String, Sendable {
        case text, json
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    private let write: @Sendable (String) -> Void

    /// A handler writing `format` lines to `write` (by default standard error, through
    /// ``LogSink/standardError``).
    public init(label: String, format: Format = .text, write: @escaping @Sendable (String) -> Void = { LogSink.standardError.append($0) }) {
        self.label = label
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata {
            for (key, value) in extra { merged[key] = value }
        }
        let keys = merged.keys.sorted()
        write(
            Self.line(format: format, label: label, level: event.level, message: "\(event.message)") { fields in
                for key in keys {
                    guard let value = merged[key] else { continue }
                    fields.add(key, "\(value)")
                }
            })
    }

    /// Appends `key=value` (text) or `,"key":"value"` (JSON) to a line being made.
    public struct Fields {
        fileprivate var line: String
        fileprivate let format: Format

        public mutating func add(_ key: String, _ value: String) {
            switch format {
            case .text:
                line += " "
                line += key
                line += "="
                GatewayLogHandler.appendText(value, to: &line)
            case .json:
                guard !["timestamp", "level", "label", "message"].contains(key) else { return }
                line += ","
                GatewayLogHandler.appendJSONString(key, to: &line)
                line += ":"
                GatewayLogHandler.appendJSONString(value, to: &line)
            }
        }
    }

    /// One line: the timestamp, level, label and message, then the fields `addFields` adds, in
    /// its order. The only place a line is formatted (handler events and access lines alike).
    public static func line(format: Format, label: String, level: Logger.Level, message: String, _ addFields: (inout Fields) -> Void) -> String {
        var line = ""
        line.reserveCapacity(256)
        switch format {
        case .text:
            line += timestamp()
            line += " "
            line += level.rawValue
            line += " "
            line += label
            line += ": "
            line += message
        case .json:
            line += "{\"timestamp\":\""
            line += timestamp()
            line += "\",\"level\":\""
            line += level.rawValue
            line += "\",\"label\":"
            appendJSONString(label, to: &line)
            line += ",\"message\":"
            appendJSONString(message, to: &line)
        }
        var fields = Fields(line: line, format: format)
        addFields(&fields)
        line = fields.line
        if format == .json { line += "}" }
        return line
    }

    /// A metadata value in a text line: as is when it is one plain word, else quoted as a JSON
    /// string, so never a line break (a value cannot forge a second line).
    static func appendText(_ value: String, to line: inout String) {
        let plain = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 != 0x22 && $0 != 0x5C && $0 != 0x7F }
        if plain {
            line += value
        } else {
            appendJSONString(value, to: &line)
        }
    }

    /// A JSON string literal (RFC 8259 escapes; DEL escaped too): the quoting of both formats.
    static func appendJSONString(_ value: String, to line: inout String) {
        line += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    line += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    line.unicodeScalars.append(scalar)
                }
            }
        }
        line += "\""
    }

    /// Now in UTC, RFC 3339 with microseconds: `2026-11-25T16:01:13.123456Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = ""
        text.reserveCapacity(27)
        func digits(_ value: Int, _ width: Int) {
            let string = String(value)
            if string.count < width { text += String(repeating: "0", count: width - string.count) }
            text += string
        }
        digits(Int(parts.tm_year) + 1900, 4)
        text += "-"
        digits(Int(parts.tm_mon) + 1, 2)
        text += "-"
        digits(Int(parts.tm_mday), 2)
        text += "T"
        digits(Int(parts.tm_hour), 2)
        text += ":"
        digits(Int(parts.tm_min), 2)
        text += ":"
        digits(Int(parts.tm_sec), 2)
        text += "."
        digits(Int(now.tv_nsec) / 1000, 6)
        text += "Z"
        return text
    }
}
