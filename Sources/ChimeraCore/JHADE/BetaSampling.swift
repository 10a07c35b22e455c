#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Beta sampling through two Gamma draws (Marsaglia and Tsang), for Thompson sampling.
enum Beta {
    static func sample(alpha: Double, beta: Double, using rng: inout SplitMix64) -> Double {
        let x = gamma(alpha, &rng)
        let y = gamma(beta, &rng)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    static func gamma(_ shape: Double, _ rng: inout SplitMix64) -> Double {
        if shape < 1 {
            // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
            return gamma(shape + 1, &rng) * pow(max(rng.unit(), .leastNonzeroMagnitude), 1 / shape)
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                // Box–Muller for a standard normal.
                let u1 = max(rng.unit(), .leastNonzeroMagnitude), u2 = rng.unit()
                x = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = max(rng.unit(), .leastNonzeroMagnitude)
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }
}

/// Standard normal draws (Box–Muller), for Thompson sampling of a mean score.
public enum StandardNormal {
    /// One draw.
    public static func sample(using rng: inout SplitMix64) -> Double {
        let u1 = max(rng.unit(), .leastNonzeroMagnitude), u2 = rng.unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
