import Testing
@testable import ChimeraCore

@Suite struct TaskQueueTests {
    @Test func queue_higherPriority_isPoppedFirst() {
        var queue = TaskQueue<String>(capacity: 10)
        queue.push("low", priority: .low)
        queue.push("normal", priority: .normal)
        queue.push("critical", priority: .critical)
        queue.push("high", priority: .high)
        let drained = queue.removeAll()
        #expect(drained == ["critical", "high", "normal", "low"])
        #expect(queue.isEmpty)
    }

    @Test func queue_samePriority_isFIFO() {
        var queue = TaskQueue<Int>(capacity: 100)
        for i in 0..<10 { queue.push(i, priority: .normal) }
        var popped: [Int] = []
        while let next = queue.popFirst() { popped.append(next) }
        #expect(popped == Array(0..<10))
    }

    @Test func queue_interleavedPushes_matchAStableSortByPriority() {
        var rng = SplitMix64(seed: 99)
        var queue = TaskQueue<Int>(capacity: 1_000)
        var submitted: [(id: Int, priority: Int)] = []
        for id in 0..<300 {
            let priority = rng.int(in: 0...3)
            let accepted = queue.push(id, priority: TaskPriority(rawValue: priority))
            #expect(accepted)
            submitted.append((id, priority))
        }
        // Stable: by priority descending, then submission order.
        let expected = submitted.enumerated()
            .sorted { ($0.element.priority, -$0.offset) > ($1.element.priority, -$1.offset) }
            .map(\.element.id)
        let drained = queue.removeAll()
        #expect(drained == expected)
    }

    @Test func queue_popsAndPushesInterleaved_keepPriorityOrder() {
        var queue = TaskQueue<String>(capacity: 10)
        queue.push("n1", priority: .normal)
        queue.push("n2", priority: .normal)
        let first = queue.popFirst()
        #expect(first == "n1")
        queue.push("h1", priority: .high)
        queue.push("n3", priority: .normal)
        let rest = [queue.popFirst(), queue.popFirst(), queue.popFirst(), queue.popFirst()]
        #expect(rest == ["h1", "n2", "n3", nil])
        #expect(queue.count == 0)
    }

    @Test func queue_atCapacity_refusesPushAndKeepsCount() {
        var queue = TaskQueue<Int>(capacity: 3)
        let accepted = [queue.push(1, priority: .low), queue.push(2, priority: .normal)]
        #expect(accepted == [true, true])
        #expect(!queue.isFull)
        let third = queue.push(3, priority: .high)
        #expect(third)
        #expect(queue.isFull)
        let fourth = queue.push(4, priority: .critical)
        #expect(fourth == false)
        #expect(queue.count == 3)
        let drained = queue.removeAll()
        #expect(drained == [3, 2, 1])
    }

    @Test func queue_afterPop_acceptsAgain() {
        var queue = TaskQueue<Int>(capacity: 1)
        let first = queue.push(1, priority: .normal)
        let second = queue.push(2, priority: .normal)
        #expect(first && !second)
        let popped = queue.popFirst()
        #expect(popped == 1)
        let third = queue.push(3, priority: .normal)
        #expect(third)
        let drained = queue.removeAll()
        #expect(drained == [3])
    }

    @Test func queue_pushFront_putsARetriedElementFirstWithinItsLevel() {
        var queue = TaskQueue<String>(capacity: 10)
        queue.push("n1", priority: .normal)
        queue.push("n2", priority: .normal)
        queue.push("h1", priority: .high)
        queue.pushFront("retry", priority: .normal)
        #expect(queue.count == 4)
        let drained = queue.removeAll()
        #expect(drained == ["h1", "retry", "n1", "n2"])
    }

    @Test func queue_pushFront_mayExceedCapacity() {
        var queue = TaskQueue<String>(capacity: 2)
        queue.push("a", priority: .low)
        queue.push("b", priority: .low)
        queue.pushFront("retry", priority: .low)
        #expect(queue.count == 3)
        #expect(queue.isFull)
        let overflow = queue.push("c", priority: .critical)
        #expect(!overflow)
        #expect(queue.count == 3)
        let popped = [queue.popFirst(), queue.popFirst()]
        #expect(popped == ["retry", "a"])
        #expect(queue.isFull == false)
        let accepted = queue.push("d", priority: .low)
        #expect(accepted)
        let drained = queue.removeAll()
        #expect(drained == ["b", "d"])
    }

    @Test func queue_empty_popsNil() {
        var queue = TaskQueue<Int>(capacity: 1)
        #expect(queue.isEmpty)
        let popped = queue.popFirst()
        #expect(popped == nil)
        let all = queue.removeAll()
        #expect(all.isEmpty)
    }

    @Test func priority_namesAndRawValues_areConsistent() {
        for name in ["low", "normal", "high", "critical"] {
            #expect(TaskPriority(name: name)?.description == name)
        }
        #expect(TaskPriority(name: "urgent") == nil)
        #expect(TaskPriority(name: "High") == nil)
        #expect(TaskPriority.low < .normal && .normal < .high && .high < .critical)
    }

    @Test func priority_outOfRangeRawValues_areClamped() {
        #expect(TaskPriority(rawValue: -5) == .low)
        #expect(TaskPriority(rawValue: 99) == .critical)
        var queue = TaskQueue<String>(capacity: 4)
        queue.push("clamped-low", priority: TaskPriority(rawValue: -1))
        queue.push("clamped-high", priority: TaskPriority(rawValue: 1_000))
        let drained = queue.removeAll()
        #expect(drained == ["clamped-high", "clamped-low"])
    }
}
