/// A fixed-size set of key indices as 64-bit words: membership in O(1), and "the next member
/// after i" in O(n/64) — how selection skips cooling and spent keys without visiting each key.
struct KeyBitSet: Sendable {
    private var words: [UInt64]
    let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        words = Array(repeating: 0, count: (capacity + 63) / 64)
    }

    func contains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    mutating func set(_ i: Int, _ member: Bool) {
        let mask: UInt64 = 1 << UInt64(i & 63)
        let was = words[i >> 6] & mask != 0
        guard was != member else { return }
        if member { words[i >> 6] |= mask; count += 1 } else { words[i >> 6] &= ~mask; count -= 1 }
    }

    /// The first member at or after `start`, wrapping around to 0; nil when empty.
    func next(from start: Int) -> Int? {
        guard count > 0, capacity > 0 else { return nil }
        let begin = start >= capacity || start < 0 ? 0 : start
        var w = begin >> 6
        var word = words[w] & (~0 << UInt64(begin & 63))
        for _ in 0...words.count {
            if word != 0 {
                let i = w << 6 + word.trailingZeroBitCount
                if i < capacity { return i }
            }
            w += 1
            if w == words.count { w = 0 }
            word = words[w]
        }
        return nil
    }

    /// Every member in ascending order.
    func members() -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(count)
        for (w, var word) in words.enumerated() {
            while word != 0 {
                out.append(w << 6 + word.trailingZeroBitCount)
                word &= word - 1
            }
        }
        return out
    }
}
