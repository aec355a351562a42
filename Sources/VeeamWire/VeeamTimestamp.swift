/// A timestamp as Veeam servers write it, parsed without losing precision.
///
/// .NET writes up to seven fractional digits (`2020-05-29T10:29:05.5413083Z`); some examples
/// carry no fraction and no zone (`2017-04-05T08:04:55`, read as UTC); VSPC may send an offset
/// (`2026-10-01T12:00:00+02:00`). ``rfc3339UTC`` gives the instant in UTC with exactly the
/// fractional digits the upstream sent.
public struct VeeamTimestamp: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The text as received.
    public let original: String
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public let epochSeconds: Int64
    /// The fractional digits as sent ("5413083"), possibly empty.
    public let fractionDigits: String
    /// True when the text carried no zone and was read as UTC.
    public let zoneAssumed: Bool

    /// Parses the forms above; returns nil for anything else.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2)
        else { return nil }
        guard (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = ""
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            guard index > start, index - start <= 9 else { return nil }
            fraction = String(decoding: bytes[start..<index], as: UTF8.self)
        }
        var offsetSeconds = 0
        var assumed = false
        if index == bytes.count {
            assumed = true
        } else if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            index += 1
        } else if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let offsetHours = number(2), expect(":"), let offsetMinutes = number(2), offsetHours < 24, offsetMinutes < 60 else {
                return nil
            }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        let epochSeconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        // In UTC the instant must still have a four-digit year (0000-01-01 … 9999-12-31): an
        // offset can carry a local 0000-01-01 or 9999-12-31 outside, where RFC 3339 cannot write it.
        guard (Self.firstEpochSecond...Self.lastEpochSecond).contains(epochSeconds) else { return nil }
        self.original = text
        self.epochSeconds = epochSeconds
        self.fractionDigits = fraction
        self.zoneAssumed = assumed
    }

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z in seconds since the epoch: what RFC 3339 can write.
    static let firstEpochSecond = Int64(daysFromCivil(year: 0, month: 1, day: 1)) * 86_400
    static let lastEpochSecond = Int64(daysFromCivil(year: 9999, month: 12, day: 31)) * 86_400 + 86_399

    /// Milliseconds since 1970-01-01T00:00:00Z as a timestamp with three fractional digits (what
    /// the gateway stamps its own answers with, e.g. `fetchedAt`).
    public init(epochMilliseconds: Int64) {
        let seconds = epochMilliseconds.floorDivided(by: 1000)
        let milliseconds = Int(epochMilliseconds - seconds * 1000)
        self.epochSeconds = seconds
        self.fractionDigits = (milliseconds < 100 ? "0" : "") + (milliseconds < 10 ? "0" : "") + String(milliseconds)
        self.zoneAssumed = false
        self.original = ""
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the same instant in UTC, with the upstream's digits.
    public var rfc3339UTC: String {
        let days = Int(epochSeconds.floorDivided(by: 86_400))
        let secondsOfDay = Int(epochSeconds - Int64(days) * 86_400)
        let (year, month, day) = Self.civilFromDays(days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var out = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
        out += "\(pad(secondsOfDay / 3600, 2)):\(pad(secondsOfDay / 60 % 60, 2)):\(pad(secondsOfDay % 60, 2))"
        if !fractionDigits.isEmpty { out += "." + fractionDigits }
        return out + "Z"
    }

    public var description: String { rfc3339UTC }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = VeeamTimestamp(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a timestamp: \(text.prefix(40))"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339UTC)
    }

    public static func == (lhs: VeeamTimestamp, rhs: VeeamTimestamp) -> Bool {
        lhs.epochSeconds == rhs.epochSeconds && lhs.fractionDigits == rhs.fractionDigits
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(epochSeconds)
        hasher.combine(fractionDigits)
    }

    // Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
