import ChimeraCore
import ChimeraOpenRouter
import Testing
@testable import ChimeraRuntime

@Suite struct ProviderRoutesTests {
    func route(_ name: String) -> ProviderRoute {
        ProviderRoute(name: name, endpoint: ProviderEndpoint(name: name, baseURL: "http://127.0.0.1:1/v1"), timeouts: CallTimeouts(), broker: nil)
    }

    @Test func prefixedIds_goToTheirProvider_everythingElseToOpenRouter() {
        let routes = ProviderRoutes(openRouter: route("openrouter"), others: [route("local"), route("openai")])
        func resolved(_ id: String) -> String {
            let (r, upstream) = routes.resolve(id)
            return r.name + " " + upstream
        }
        #expect(resolved("local/llama3.2:3b") == "local llama3.2:3b")
        #expect(resolved("local/org/model") == "local org/model", "only the first segment names the provider")
        #expect(resolved("openai/gpt-4o-mini") == "openai gpt-4o-mini", "a provider named like a vendor takes its ids")
        #expect(resolved("meta-llama/llama-3.3-70b-instruct:free") == "openrouter meta-llama/llama-3.3-70b-instruct:free")
        #expect(resolved("openrouter/auto") == "openrouter openrouter/auto", "OpenRouter's own router ids are not prefixes")
        #expect(resolved("local/") == "openrouter local/", "no model after the prefix: not the provider's")
        #expect(resolved("gpt-4o") == "openrouter gpt-4o")
        #expect(routes.resolve("local/x").route.qualified("x") == "local/x")
        #expect(routes.openRouter.qualified("a/b:free") == "a/b:free")
    }
}
