/// A chat command typed as a line starting with `/`.
public enum ChatSlashCommand: Sendable, Equatable {
    /// `/agent NAME` (nil: show the current agent).
    case agent(String?)
    /// `/route auto|internal|external` (nil: show the current route).
    case route(RoutePreference?)
    /// `/model ID[,ID…]`: the external chain; `/model auto` is the empty chain (free catalog
    /// models); nil: show the current chain.
    case model([String]?)
    /// `/stats`: this session's turns, routes, tokens, cost and mean score.
    case stats
    /// `/history [N]`: the last N exchanges (default 10).
    case history(Int)
    /// `/new`: archive this session and start it afresh.
    case new
    /// `/help`: the commands.
    case help
    /// `/exit` (or `/quit`).
    case exit

    /// Every command with its arguments, for help and errors.
    public static let usage = ["/agent NAME", "/route auto|internal|external", "/model ID[,ID…]|auto", "/stats", "/history [N]", "/new", "/help", "/exit"]

    /// How many exchanges `/history` shows when not told.
    public static let defaultHistory = 10
}

/// One line of chat input: a message, a command, or a command that cannot be understood.
public enum ChatLine: Sendable, Equatable {
    /// Text for the agent (trimmed; empty for a blank line).
    case message(String)
    /// A command to run between messages.
    case command(ChatSlashCommand)
    /// A line starting with `/` that is no valid command; the error says what was expected.
    case invalid(String)

    /// Reads one input line. A line starting with `//` is a message starting with `/`; blank
    /// lines are an empty message (the caller skips them).
    public static func parse(_ line: String) -> ChatLine {
        let trimmed = trim(line)
        guard trimmed.hasPrefix("/") else { return .message(trimmed) }
        if trimmed.hasPrefix("//") { return .message(String(trimmed.dropFirst())) }
        let words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let name = words[0].lowercased()
        let rest = Array(words.dropFirst())
        let argument = rest.isEmpty ? nil : rest.joined(separator: " ")
        func noArgument(_ command: ChatSlashCommand) -> ChatLine {
            argument == nil ? .command(command) : .invalid("\(name) takes no argument")
        }
        switch name {
        case "/agent":
            if let argument, rest.count > 1 { return .invalid("/agent takes one name, found \"\(argument)\"") }
            return .command(.agent(argument))
        case "/route":
            guard let argument else { return .command(.route(nil)) }
            guard let route = RoutePreference(rawValue: argument.lowercased()) else {
                return .invalid("/route takes auto, internal or external, found \"\(argument)\"")
            }
            return .command(.route(route))
        case "/model", "/models":
            guard let argument else { return .command(.model(nil)) }
            if argument.lowercased() == "auto" { return .command(.model([])) }
            let chain = argument.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            return .command(.model(chain))
        case "/stats": return noArgument(.stats)
        case "/history":
            guard let argument else { return .command(.history(ChatSlashCommand.defaultHistory)) }
            guard let n = Int(argument), n >= 1 else { return .invalid("/history takes a positive number of exchanges, found \"\(argument)\"") }
            return .command(.history(n))
        case "/new": return noArgument(.new)
        case "/help", "/?": return noArgument(.help)
        case "/exit", "/quit": return noArgument(.exit)
        default:
            let names = ["/agent", "/route", "/model", "/stats", "/history", "/new", "/help", "/exit"]
            let hint = Suggestion.closest(to: name, in: names).map { " (did you mean \($0)?)" } ?? ""
            return .invalid("unknown command \(words[0])\(hint); commands: \(ChatSlashCommand.usage.joined(separator: ", "))")
        }
    }

    private static func trim(_ line: String) -> String {
        var s = Substring(line)
        while let c = s.last, c.isWhitespace { s.removeLast() }
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        return String(s)
    }
}
