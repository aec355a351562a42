/// One child's answer in a fan-out: the position of its input, and what it produced.
///
/// A named struct on purpose. With Swift 6.3.1 at `-O`, a task group whose child result type is a
/// tuple sometimes hands the parent a corrupted tuple (`docs/architecture.md`, "Values across
/// task boundaries"). Every value that crosses a task boundary is a named `Sendable` type.
public struct Indexed<Value: Sendable>: Sendable {
    /// Position of the input the child worked on.
    public let index: Int
    /// What the child produced.
    public let value: Value

    public init(index: Int, value: Value) {
        self.index = index
        self.value = value
    }
}

/// Runs `operation` on every element, each in its own child task, at most `width` at once (a
/// finished child makes room for the next element), and returns the results in the elements'
/// order (not in the order they finished). Waits for every child; a
/// child that must not fail the others reports its failure in `Value` (for example a `Result`).
/// Make `Value` say which input it belongs to rather than pairing results with elements by
/// position: should a child's answer ever arrive with an index out of range, it is dropped, not
/// used to subscript anything.
///
/// The one place the gateway fans out: the organization accounts of a VB365 upstream and the
/// upstreams of `/readyz` go through it, so the rule above is kept in one place.
public func fanOut<Element: Sendable, Value: Sendable>(
    _ elements: [Element], width: Int = .max, _ operation: @escaping @Sendable (Element) async -> Value
) async -> [Value] {
    guard elements.count > 1, width > 1 else {
        var single: [Value] = []
        for element in elements { single.append(await operation(element)) }
        return single
    }
    return await withTaskGroup(of: Indexed<Value>.self) { group in
        var next = 0
        func start() {
            let index = next
            let element = elements[index]
            next += 1
            group.addTask { Indexed(index: index, value: await operation(element)) }
        }
        while next < elements.count, next < width { start() }
        var slots = [Value?](repeating: nil, count: elements.count)
        for await answer in group {
            if slots.indices.contains(answer.index) { slots[answer.index] = answer.value }
            if next < elements.count { start() }
        }
        return slots.compactMap { $0 }
    }
}
