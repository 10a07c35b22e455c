/// An exact decimal price in USD (per token, per request…), parsed from OpenRouter's strings
/// without floating point, so that `"0.0000025"` per token is exactly `2.5` per million.
///
/// `text` is the canonical plain decimal (`"0.0000025"`, `"0"`, `"-1"`): no exponent, no
/// leading or trailing zeros, so equal prices have equal text. Negative prices are refused,
/// except `-1`, the sentinel OpenRouter uses for dynamically priced routers (`openrouter/auto`).
public struct USDPrice: Sendable, Equatable, CustomStringConvertible {
    /// The canonical decimal text.
    public let text: String
    /// The value's magnitude; the sign is ``isDynamic``.
    fileprivate let amount: ExactDecimal
    private let negative: Bool

    /// Parses a decimal (`"0.0000025"`, `"15"`, `"2.5e-06"`, `" 0 "`); nil for anything else, and
    /// for negative values other than `-1`.
    public init?(_ text: String) {
        guard let (negative, amount) = ExactDecimal.parse(text) else { return nil }
        if negative && !amount.isZero {
            guard amount == ExactDecimal(digits: [1], scale: 0) else { return nil }
            self.negative = true
        } else {
            self.negative = false
        }
        self.amount = amount
        self.text = (self.negative ? "-" : "") + amount.text
    }

    /// The `"-1"` sentinel: the price depends on the model the router picks.
    public var isDynamic: Bool { negative }

    /// A price of exactly zero.
    public var isZero: Bool { amount.isZero }

    public var description: String { text }

    /// The price of `n` units (tokens, requests), computed exactly and rounded once to a Double,
    /// for cost estimates. Zero for a dynamic price or a non-positive `n`.
    public func cost(forUnits n: Int) -> Double {
        guard !negative, n > 0 else { return 0 }
        return amount.multiplied(by: n).doubleValue
    }

    /// The price of a million units as exact decimal text: `"0.0000025"` gives `"2.5"`.
    /// For the dynamic sentinel it is `"-1000000"`; check ``isDynamic`` first.
    public var perMillionText: String { (negative ? "-" : "") + amount.shifted(by: 6).text }

    /// The price of a million units (what OpenRouter's web pages show); see ``perMillionText``.
    public var perMillion: Double { Double(perMillionText) ?? 0 }
}

/// One model from `GET /models`.
public struct ModelInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The model's context window in tokens (`context_length`, else `top_provider.context_length`).
    public var contextLength: Int?
    /// `top_provider.max_completion_tokens`.
    public var maxCompletionTokens: Int?
    /// USD per prompt token.
    public var promptPrice: USDPrice?
    /// USD per completion token.
    public var completionPrice: USDPrice?
    /// USD per request.
    public var requestPrice: USDPrice?
    public var supportedParameters: [String]
    /// The id ends with `:free`, or prompt and completion prices are both zero.
    public var isFree: Bool

    /// `isFree` defaults to what the id and prices say.
    public init(
        id: String, name: String? = nil, contextLength: Int? = nil, maxCompletionTokens: Int? = nil,
        promptPrice: USDPrice? = nil, completionPrice: USDPrice? = nil, requestPrice: USDPrice? = nil,
        supportedParameters: [String] = [], isFree: Bool? = nil
    ) {
        self.id = id
        self.name = name ?? id
        self.contextLength = contextLength
        self.maxCompletionTokens = maxCompletionTokens
        self.promptPrice = promptPrice
        self.completionPrice = completionPrice
        self.requestPrice = requestPrice
        self.supportedParameters = supportedParameters
        self.isFree = isFree ?? (id.hasSuffix(":free") || (promptPrice?.isZero == true && completionPrice?.isZero == true))
    }
}

/// Decodes the body of `GET /models`.
public enum ModelCatalogDecoder {
    /// The models of `{"data": [...]}` (or a bare array). Lenient: unknown fields are ignored,
    /// entries without a string `id` are skipped, prices may be strings or numbers, and a price
    /// that is not a decimal is left out. A body that is not JSON, has no list, or carries an
    /// `error` throws.
    public static func decode(_ body: [UInt8]) throws(ExternalError) -> [ModelInfo] {
        let json = try CatalogJSON.parse(body)
        let list: [JSONValue]
        if case .array(let items)? = json["data"] {
            list = items
        } else if case .array(let items) = json {
            list = items
        } else {
            throw ExternalError(kind: .malformedResponse, message: "the models response has no `data` array")
        }
        return list.compactMap { entry -> ModelInfo? in
            guard let id = entry["id"]?.stringValue, !id.isEmpty else { return nil }
            let pricing = entry["pricing"]
            var parameters: [String] = []
            if case .array(let names)? = entry["supported_parameters"] { parameters = names.compactMap(\.stringValue) }
            return ModelInfo(
                id: id,
                name: entry["name"]?.stringValue,
                contextLength: CatalogJSON.int(entry["context_length"]) ?? CatalogJSON.int(entry["top_provider"]?["context_length"]),
                maxCompletionTokens: CatalogJSON.int(entry["top_provider"]?["max_completion_tokens"]),
                promptPrice: CatalogJSON.price(pricing?["prompt"]),
                completionPrice: CatalogJSON.price(pricing?["completion"]),
                requestPrice: CatalogJSON.price(pricing?["request"]),
                supportedParameters: parameters
            )
        }
    }
}

/// What `GET /key` says about the calling key and its account.
public struct KeyInfo: Sendable, Equatable {
    /// Usually the masked key, e.g. `sk-or-v1-au7...890`.
    public var label: String?
    public var isFreeTier: Bool?
    /// The key's spending cap in USD; nil means no cap.
    public var limit: Double?
    public var limitRemaining: Double?
    /// USD spent with this key.
    public var usage: Double?
    /// `free_model_daily_requests.limit`: the account's daily `:free` cap (50 or 1000).
    public var freeDailyLimit: Int?
    public var freeDailyRemaining: Int?
    /// Requests counted against the account today (UTC).
    public var freeDailyUsed: Int?

    public init(
        label: String? = nil, isFreeTier: Bool? = nil, limit: Double? = nil, limitRemaining: Double? = nil, usage: Double? = nil,
        freeDailyLimit: Int? = nil, freeDailyRemaining: Int? = nil, freeDailyUsed: Int? = nil
    ) {
        self.label = label
        self.isFreeTier = isFreeTier
        self.limit = limit
        self.limitRemaining = limitRemaining
        self.usage = usage
        self.freeDailyLimit = freeDailyLimit
        self.freeDailyRemaining = freeDailyRemaining
        self.freeDailyUsed = freeDailyUsed
    }
}

/// Decodes the body of `GET /key` (and the legacy `GET /auth/key`, which has fewer fields).
public enum KeyInfoDecoder {
    /// The fields of `{"data": {...}}` (or a bare object); absent and null fields are nil.
    public static func decode(_ body: [UInt8]) throws(ExternalError) -> KeyInfo {
        let json = try CatalogJSON.parse(body)
        let data = json["data"] ?? json
        guard case .object = data else {
            throw ExternalError(kind: .malformedResponse, message: "the key response has no `data` object")
        }
        func bool(_ key: String) -> Bool? {
            if case .bool(let flag)? = data[key] { return flag }
            return nil
        }
        let daily = data["free_model_daily_requests"]
        return KeyInfo(
            label: data["label"]?.stringValue,
            isFreeTier: bool("is_free_tier"),
            limit: data["limit"]?.numberValue,
            limitRemaining: data["limit_remaining"]?.numberValue,
            usage: data["usage"]?.numberValue,
            freeDailyLimit: CatalogJSON.int(daily?["limit"]),
            freeDailyRemaining: CatalogJSON.int(daily?["remaining"]),
            freeDailyUsed: CatalogJSON.int(daily?["used"])
        )
    }
}

/// Estimates cost from catalog prices when a paid call's usage has no cost (marked as an estimate).
public enum CostEstimator {
    /// `usage` with `cost` filled in and `costIsEstimate` set, when it had no cost and the model's
    /// prices are known: zero for a free model, else prompt tokens × prompt price + completion
    /// tokens × completion price + the per-request price, summed exactly and rounded once.
    /// Unchanged when usage already has a cost, the model is unknown, or its prices are missing
    /// or dynamic.
    public static func estimate(usage: ChatUsage, model: ModelInfo?) -> ChatUsage {
        guard usage.cost == nil, let model else { return usage }
        var estimated = usage
        if model.isFree {
            estimated.cost = 0
            estimated.costIsEstimate = true
            return estimated
        }
        guard let prompt = model.promptPrice, let completion = model.completionPrice,
              !prompt.isDynamic, !completion.isDynamic else { return usage }
        var total = prompt.amount.multiplied(by: max(0, usage.promptTokens))
            .adding(completion.amount.multiplied(by: max(0, usage.completionTokens)))
        if let request = model.requestPrice, !request.isDynamic {
            total = total.adding(request.amount)
        }
        estimated.cost = total.doubleValue
        estimated.costIsEstimate = true
        return estimated
    }
}

/// Shared readers for the catalog and key bodies.
enum CatalogJSON {
    static func parse(_ body: [UInt8]) throws(ExternalError) -> JSONValue {
        guard let json = try? JSONParser.parse(body).value else {
            throw ExternalError(kind: .malformedResponse, message: "the response body is not JSON: \(ErrorClassifier.snippet(body))")
        }
        if let error = json["error"], error != .null {
            throw ErrorClassifier.classify(error: error, topLevel: json, httpStatus: 200, headers: [], fallbackMessage: "", now: nil)
        }
        return json
    }

    static func int(_ value: JSONValue?) -> Int? { value?.numberValue.flatMap(WireJSON.int) }

    /// A price given as a string (the documented form) or a number (seen in the wild).
    static func price(_ value: JSONValue?) -> USDPrice? {
        switch value {
        case .string(let s)?: return USDPrice(s)
        case .number(let d)? where d.isFinite: return USDPrice("\(d)")
        default: return nil
        }
    }
}

/// A non-negative decimal: `digits × 10^-scale`, kept canonical (no leading zeros, no trailing
/// fractional zeros), so that equality is value equality.
struct ExactDecimal: Sendable, Equatable {
    /// Decimal digits, most significant first; empty for zero.
    private(set) var digits: [UInt8]
    /// How many of the digits are fractional.
    private(set) var scale: Int

    init(digits: [UInt8], scale: Int) {
        self.digits = digits
        self.scale = scale
        normalize()
    }

    var isZero: Bool { digits.isEmpty }

    /// Parses `[+-]digits[.digits][e[+-]digits]`, returning the sign separately.
    static func parse(_ text: String) -> (negative: Bool, amount: ExactDecimal)? {
        var bytes = Array(WireJSON.trimmingSpace(text).utf8)[...]
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var fractional = 0
        var seenPoint = false
        var seenDigit = false
        while let byte = bytes.first {
            if byte >= 0x30 && byte <= 0x39 {
                digits.append(byte - 0x30)
                seenDigit = true
                if seenPoint { fractional += 1 }
            } else if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else {
                break
            }
            bytes = bytes.dropFirst()
        }
        guard seenDigit else { return nil }
        var exponent = 0
        if let e = bytes.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            guard !bytes.isEmpty, bytes.count <= 4, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            exponent = bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            if exponentNegative { exponent = -exponent }
            bytes = bytes[bytes.endIndex...]
        }
        guard bytes.isEmpty, abs(exponent) <= 400 else { return nil }
        return (negative, ExactDecimal(digits: digits, scale: fractional - exponent))
    }

    /// This value times 10^`places`.
    func shifted(by places: Int) -> ExactDecimal { ExactDecimal(digits: digits, scale: scale - places) }

    /// This value times a non-negative integer, exactly (schoolbook multiplication).
    func multiplied(by n: Int) -> ExactDecimal {
        guard n > 0, !isZero else { return ExactDecimal(digits: [], scale: 0) }
        let other = Array(String(n).utf8).map { $0 - 0x30 }
        var product = [Int](repeating: 0, count: digits.count + other.count)
        for (i, a) in digits.enumerated().reversed() {
            for (j, b) in other.enumerated().reversed() {
                product[i + j + 1] += Int(a) * Int(b)
            }
        }
        for k in stride(from: product.count - 1, to: 0, by: -1) {
            product[k - 1] += product[k] / 10
            product[k] %= 10
        }
        return ExactDecimal(digits: product.map { UInt8($0) }, scale: scale)
    }

    /// The exact sum.
    func adding(_ other: ExactDecimal) -> ExactDecimal {
        let scale = max(self.scale, other.scale)
        let a = padded(toScale: scale)
        let b = other.padded(toScale: scale)
        let width = max(a.count, b.count) + 1
        var sum = [UInt8](repeating: 0, count: width)
        var carry: UInt8 = 0
        for k in 0..<width {
            let x = k < a.count ? a[a.count - 1 - k] : 0
            let y = k < b.count ? b[b.count - 1 - k] : 0
            let s = x + y + carry
            sum[width - 1 - k] = s % 10
            carry = s / 10
        }
        return ExactDecimal(digits: sum, scale: scale)
    }

    /// Plain decimal text: `0.0000025`, `15`, `0`.
    var text: String {
        guard !digits.isEmpty else { return "0" }
        var chars = digits.map { Character(Unicode.Scalar($0 + 0x30)) }
        guard scale > 0 else { return String(chars) }
        if chars.count <= scale { chars.insert(contentsOf: repeatElement("0", count: scale - chars.count + 1), at: 0) }
        chars.insert(".", at: chars.count - scale)
        return String(chars)
    }

    /// The nearest Double (the standard library's decimal conversion rounds correctly).
    var doubleValue: Double { Double(text) ?? 0 }

    /// The digits scaled up to `target` fractional places (target ≥ scale).
    private func padded(toScale target: Int) -> [UInt8] { digits + [UInt8](repeating: 0, count: target - scale) }

    private mutating func normalize() {
        if scale < 0 {
            digits.append(contentsOf: repeatElement(0, count: -scale))
            scale = 0
        }
        let leading = digits.prefix(while: { $0 == 0 }).count
        digits.removeFirst(leading)
        while scale > 0, digits.last == 0 {
            digits.removeLast()
            scale -= 1
        }
        if digits.isEmpty { scale = 0 }
    }
}
