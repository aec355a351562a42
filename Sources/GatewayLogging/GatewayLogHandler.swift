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
        fileprivate var line: [UInt8]
        fileprivate let format: Format

        public mutating func add(_ key: String, _ value: String) {
            switch format {
            case .text:
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(UInt8(ascii: "="))
                GatewayLogHandler.appendText(value, to: &line)
            case .json:
                switch key {
                case "timestamp", "level", "label", "message": return  // the line's own members
                default: break
                }
                line.append(UInt8(ascii: ","))
                GatewayLogHandler.appendJSONString(key, to: &line)
                line.append(UInt8(ascii: ":"))
                GatewayLogHandler.appendJSONString(value, to: &line)
            }
        }
    }

    /// One line: the timestamp, level, label and message, then the fields `addFields` adds, in
    /// its order. The only place a line is formatted (handler events and access lines alike).
    /// Made as bytes, one string at the end: an access line is made on the event loop for every
    /// request when the log level is `info`.
    public static func line(format: Format, label: String, level: Logger.Level, message: String, _ addFields: (inout Fields) -> Void) -> String {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .text:
            appendTimestamp(to: &line)
            line.append(0x20)
            line.append(contentsOf: level.rawValue.utf8)
            line.append(0x20)
            line.append(contentsOf: label.utf8)
            line.append(UInt8(ascii: ":"))
            line.append(0x20)
            line.append(contentsOf: message.utf8)
        case .json:
            line.append(contentsOf: #"{"timestamp":""#.utf8)
            appendTimestamp(to: &line)
            line.append(contentsOf: #"","level":""#.utf8)
            line.append(contentsOf: level.rawValue.utf8)
            line.append(contentsOf: #"","label":"#.utf8)
            appendJSONString(label, to: &line)
            line.append(contentsOf: #","message":"#.utf8)
            appendJSONString(message, to: &line)
        }
        var fields = Fields(line: line, format: format)
        line = []
        addFields(&fields)
        if format == .json { fields.line.append(UInt8(ascii: "}")) }
        return String(decoding: fields.line, as: UTF8.self)
    }

    /// A metadata value in a text line: as is when it is one plain word, else quoted as a JSON
    /// string, so never a line break (a value cannot forge a second line).
    static func appendText(_ value: String, to line: inout [UInt8]) {
        let plain = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 != 0x22 && $0 != 0x5C && $0 != 0x7F }
        if plain {
            line.append(contentsOf: value.utf8)
        } else {
            appendJSONString(value, to: &line)
        }
    }

    /// A JSON string literal (RFC 8259 escapes; DEL escaped too): the quoting of both formats.
    /// Works on the UTF-8 bytes: every byte of a multi-byte character is 0x80 or above and is
    /// copied as it is.
    static func appendJSONString(_ value: String, to line: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        line.append(0x22)
        for byte in value.utf8 {
            switch byte {
            case 0x22: line.append(contentsOf: [0x5C, 0x22])
            case 0x5C: line.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: line.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: line.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: line.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                line.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                line.append(hex.utf8Start[Int(byte >> 4)])
                line.append(hex.utf8Start[Int(byte & 0x0F)])
            default: line.append(byte)
            }
        }
        line.append(0x22)
    }

    /// Now in UTC, RFC 3339 with microseconds: `2026-11-25T16:01:13.123456Z`.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends now, as ``timestamp()`` writes it.
    static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        line.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        line.append(UInt8(ascii: "."))
        digits(Int(now.tv_nsec) / 1000, 6)
        line.append(UInt8(ascii: "Z"))
    }
}
