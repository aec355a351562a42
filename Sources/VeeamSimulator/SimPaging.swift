import Foundation

/// Pages over collections the simulator builds on demand: only the items of the page asked for
/// are built, so a 100,000-organization estate answers a page without building the rest.
enum SimPaging {
    /// The items `offset..<offset+limit` of the concatenation, in order, of `items(element)` over
    /// `elements` (each element contributes the item numbers its range names), and how many items
    /// there are in all. `build` runs for the page's items only.
    static func slice<Element>(
        _ elements: [Element],
        offset: Int,
        limit: Int,
        items: (Element) -> Range<Int>,
        build: (Element, Int) -> JSONValue
    ) -> (page: [JSONValue], total: Int) {
        var total = 0
        var page: [JSONValue] = []
        for element in elements {
            let range = items(element)
            guard !range.isEmpty else { continue }
            let start = total
            total += range.count
            // `total > offset` first: `offset - start` is then smaller than the range's count.
            guard page.count < limit, total > offset else { continue }
            var number = range.lowerBound + max(0, offset - start)
            while number < range.upperBound, page.count < limit {
                page.append(build(element, number))
                number += 1
            }
        }
        return (page, total)
    }

    /// The items `offset..<offset+limit` of `count` items numbered from 0, built by `build`.
    static func indexed(count: Int, offset: Int, limit: Int, build: (Int) -> JSONValue) -> [JSONValue] {
        guard offset < count, limit > 0 else { return [] }
        // `count - offset` first: `offset + limit` may overflow for a huge offset.
        let end = offset + min(limit, count - offset)
        return (offset..<end).map(build)
    }

    /// A page of `first` followed by `extras`: `first` is the page `offset..<offset+limit` of its
    /// own items (and their total); the page is topped up from `extras`, which come after them.
    static func appending(
        _ extras: [JSONValue], to first: (page: [JSONValue], total: Int), offset: Int, limit: Int
    ) -> (page: [JSONValue], total: Int) {
        var page = first.page
        let start = max(0, offset - first.total)
        if page.count < limit, start < extras.count {
            page += extras[start..<(start + min(extras.count - start, limit - page.count))]
        }
        return (page, first.total + extras.count)
    }
}
