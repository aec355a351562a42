/// A bound on how deeply a configuration's YAML nests, checked on the text before it is parsed
/// (the parser recurses per level, so a file nesting thousands of levels deep would exhaust the
/// stack). Conservative: it may count a level more than the parser would (it does not know every
/// YAML rule), never fewer, and only files far deeper than any configuration are refused.
public enum YAMLNesting {
    public static let limit = 64

    /// The first line (1-based) at which the nesting may pass `limit`, or nil.
    public static func lineDeeperThan(_ limit: Int, in text: String) -> Int? {
        var indents: [Int] = []  // the block indentation levels open above this line
        var flow = 0  // open [ and { (they may span lines)
        var line = 0
        for raw in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            let bytes = Array(raw)
            var index = 0
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            let indent = index
            let rest = bytes[index...]
            if flow == 0, !rest.isEmpty, rest.first != UInt8(ascii: "#"), rest.first != UInt8(ascii: "\r") {
                while let last = indents.last, last >= indent { indents.removeLast() }
                indents.append(indent)
            }
            // Block entries opened on this line: "- - - x" nests three deep, and so do explicit
            // keys and values ("? ? x", ": : x").
            var dashes = 0
            while index + 1 < bytes.count, [UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":")].contains(bytes[index]),
                bytes[index + 1] == UInt8(ascii: " ")
            {
                dashes += 1
                index += 2
                while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            }
            // Flow collections, outside quoted scalars and comments. A quote opens a quoted scalar
            // only where a scalar starts (after `[`, `{`, `,`, `:`, `-`, `?` or at the line's
            // start); inside a plain scalar (`b'c`) it is a character like any other.
            var quote: UInt8?
            var deepest = flow
            var scalarStart = true
            while index < bytes.count {
                let byte = bytes[index]
                if let open = quote {
                    if byte == UInt8(ascii: "\\"), open == UInt8(ascii: "\"") {
                        index += 1
                    } else if byte == open {
                        quote = nil
                        scalarStart = false
                    }
                } else if byte == UInt8(ascii: " ") {
                    // Spaces keep whether a scalar may start.
                } else if (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")) && scalarStart {
                    quote = byte
                } else if byte == UInt8(ascii: "#"), index == 0 || bytes[index - 1] == UInt8(ascii: " ") {
                    break
                } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                    flow += 1
                    deepest = max(deepest, flow)
                    scalarStart = true
                } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                    flow = max(0, flow - 1)
                    scalarStart = false
                } else {
                    scalarStart = [UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "?")].contains(byte)
                }
                index += 1
            }
            if indents.count + dashes + deepest > limit { return line }
        }
        return nil
    }
}
