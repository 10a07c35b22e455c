#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension UnsafeRawBufferPointer {
    /// Whether these bytes equal `literal`'s UTF-8, compared with `memcmp`.
    ///
    /// The hot path compares JSON keys this way: the generic `elementsEqual(_:)` over a
    /// `String.UTF8View` is not specialised across modules and showed up in profiles.
    @inlinable
    public func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, literal.utf8Start, count) == 0)
    }

    /// Whether these bytes start with `literal`'s UTF-8.
    @inlinable
    public func hasPrefix(_ literal: StaticString) -> Bool {
        count >= literal.utf8CodeUnitCount && (literal.utf8CodeUnitCount == 0 || memcmp(baseAddress!, literal.utf8Start, literal.utf8CodeUnitCount) == 0)
    }
}
