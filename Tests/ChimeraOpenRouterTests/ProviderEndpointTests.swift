import ChimeraCore
import ChimeraOpenRouter
import Testing

@Suite struct ProviderEndpointTests {
    @Test func baseURL_precedence_flagThenEnvironmentThenConfigThenPublic() {
        var settings = OpenRouterSettings()
        settings.baseURL = "http://config/api/v1"
        settings.referer = "https://example.org"
        let env = ["OPENROUTER_BASE_URL": "http://env/api/v1"]
        #expect(ProviderEndpoint.openRouter(flag: "http://flag/api/v1/", settings: settings, environment: env).baseURL == "http://flag/api/v1")
        #expect(ProviderEndpoint.openRouter(flag: nil, settings: settings, environment: env).baseURL == "http://env/api/v1")
        #expect(ProviderEndpoint.openRouter(flag: nil, settings: settings, environment: ["OPENROUTER_BASE_URL": ""]).baseURL == "http://config/api/v1")
        #expect(ProviderEndpoint.openRouter(flag: nil, settings: OpenRouterSettings(), environment: [:]).baseURL == ProviderEndpoint.openRouterURL)
        let headers = ProviderEndpoint.openRouter(flag: nil, settings: settings, environment: [:]).headers
        #expect(headers == [HTTPHeaderPair("HTTP-Referer", "https://example.org"), HTTPHeaderPair("X-OpenRouter-Title", "Chimera")])
    }

    @Test func timeouts_comeFromTheSettings() {
        var settings = TimeoutSettings()
        settings.connectMs = 1
        settings.firstByteMs = 2
        settings.idleMs = 3
        settings.totalMs = 4
        let t = CallTimeouts(settings)
        #expect([t.connectMs, t.firstByteMs, t.idleMs, t.totalMs] == [1, 2, 3, 4])
    }
}
