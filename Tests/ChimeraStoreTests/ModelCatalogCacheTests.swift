import ChimeraCore
import Foundation
import Testing
@testable import ChimeraStore
#if canImport(Glibc)
import Glibc
#endif

/// A `/models` body in OpenRouter's shape (shared/openrouter-api.md §6.1).
private let openRouterBody = Array("""
{"data":[
  {"id":"openai/gpt-4o-mini","name":"OpenAI: GPT-4o-mini","context_length":128000,
   "pricing":{"prompt":"0.00000015","completion":"0.0000006","request":"0","image":"0.000217"},
   "top_provider":{"context_length":128000,"max_completion_tokens":16384,"is_moderated":true},
   "supported_parameters":["max_tokens","tools"]},
  {"id":"meta-llama/llama-3.3-70b-instruct:free","name":"Llama (free)","context_length":131072,
   "pricing":{"prompt":"0","completion":"0"}},
  {"id":"openrouter/auto","name":"Auto Router","context_length":2000000,"pricing":{"prompt":"-1","completion":"-1"}}
],"total_count":3,"links":{"next":null}}
""".utf8)

private let otherBody = Array(#"{"data":[{"id":"local/qwen","context_length":32768,"pricing":{"prompt":"0","completion":"0"}}]}"#.utf8)

@Suite struct ModelCatalogCacheTests {
    @Test func storeThenLoad_roundTrip_pricesExact() throws {
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let cache = try ModelCatalogCache(path: dir + "/catalog.sqlite")
            #expect(try cache.load(baseURL: "https://openrouter.ai/api/v1") == nil)
            try cache.store(baseURL: "https://openrouter.ai/api/v1", body: openRouterBody, at: 1_700_000_000_123)
            let loaded = try #require(try cache.load(baseURL: "https://openrouter.ai/api/v1"))
            #expect(loaded.fetchedAt == 1_700_000_000_123)
            #expect(loaded.models == (try ModelCatalogDecoder.decode(openRouterBody)))
            let mini = try #require(loaded.models.first { $0.id == "openai/gpt-4o-mini" })
            #expect(mini.promptPrice?.text == "0.00000015")
            #expect(mini.promptPrice?.perMillionText == "0.15")
            #expect(mini.completionPrice?.perMillionText == "0.6")
            #expect(mini.contextLength == 128_000)
            #expect(mini.maxCompletionTokens == 16_384)
            #expect(loaded.models.first { $0.id == "openrouter/auto" }?.promptPrice?.isDynamic == true)
            #expect(loaded.models.filter(\.isFree).map(\.id) == ["meta-llama/llama-3.3-70b-instruct:free"])
            // A trailing slash names the same provider.
            #expect(try cache.load(baseURL: "https://openrouter.ai/api/v1/")?.fetchedAt == 1_700_000_000_123)
        }
    }

    @Test func twoBaseURLs_areKeptApart_andStoreReplaces() throws {
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let cache = try ModelCatalogCache(path: dir + "/catalog.sqlite")
            try cache.store(baseURL: "https://openrouter.ai/api/v1", body: openRouterBody, at: 1_000)
            try cache.store(baseURL: "http://127.0.0.1:11434/v1", body: otherBody, at: 2_000)
            #expect(try cache.load(baseURL: "https://openrouter.ai/api/v1")?.models.count == 3)
            #expect(try cache.load(baseURL: "http://127.0.0.1:11434/v1")?.models.map(\.id) == ["local/qwen"])
            #expect(try cache.load(baseURL: "http://127.0.0.1:11434/v1")?.fetchedAt == 2_000)
            #expect(try cache.load(baseURL: "http://127.0.0.1:9999/v1") == nil)

            try cache.store(baseURL: "https://openrouter.ai/api/v1", body: otherBody, at: 3_000)
            let replaced = try #require(try cache.load(baseURL: "https://openrouter.ai/api/v1"))
            #expect(replaced.models.map(\.id) == ["local/qwen"])
            #expect(replaced.fetchedAt == 3_000)
            #expect(try cache.load(baseURL: "http://127.0.0.1:11434/v1")?.fetchedAt == 2_000, "the other entry is untouched")
        }
    }

    @Test func reopen_persists_fileIsMode0600_inNewDirectories0700() throws {
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let path = dir + "/home/nested/" + ModelCatalogCache.fileName
            do {
                let cache = try ModelCatalogCache(path: path)
                try cache.store(baseURL: "https://openrouter.ai/api/v1", body: openRouterBody, at: 42)
            }
            #expect(try mode(of: path) == 0o600)
            #expect(try mode(of: dir + "/home/nested") == 0o700)
            let reopened = try ModelCatalogCache(path: path)
            let loaded = try #require(try reopened.load(baseURL: "https://openrouter.ai/api/v1"))
            #expect(loaded.fetchedAt == 42)
            #expect(loaded.models.count == 3)
            // Two handles on one file (two processes) see each other's writes.
            let second = try ModelCatalogCache(path: path)
            try second.store(baseURL: "x", body: otherBody, at: 7)
            #expect(try reopened.load(baseURL: "x")?.fetchedAt == 7)
        }
    }

    @Test func store_refusesBodiesThatAreNotAModelList_keepingTheCache() throws {
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let cache = try ModelCatalogCache(path: dir + "/catalog.sqlite")
            try cache.store(baseURL: "u", body: openRouterBody, at: 1)
            for bad in ["not json", #"{"error":{"code":401,"message":"User not found."}}"#, #"{"object":"list"}"#] {
                #expect(throws: ModelCatalogCacheError.self) { try cache.store(baseURL: "u", body: Array(bad.utf8), at: 2) }
            }
            #expect(try cache.load(baseURL: "u")?.fetchedAt == 1)
        }
    }

    @Test func bodyForModels_decodesToTheSameModels() throws {
        let models = try ModelCatalogDecoder.decode(openRouterBody) + [
            ModelInfo(id: "x/no-prices"),
            ModelInfo(id: "x/exp", name: "Quote \" and \\ ünïcode", contextLength: 10, promptPrice: USDPrice("2.5e-06"),
                      completionPrice: USDPrice("0.00001"), requestPrice: USDPrice("0.001"), supportedParameters: ["seed"]),
        ]
        let body = ModelCatalogCache.body(for: models)
        #expect(try ModelCatalogDecoder.decode(body) == models)
        #expect(String(decoding: body, as: UTF8.self).contains(#""prompt":"0.0000025""#), "prices are stored as exact strings")
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let cache = try ModelCatalogCache(path: dir + "/catalog.sqlite")
            try cache.store(baseURL: "u", body: body, at: 5)
            #expect(try cache.load(baseURL: "u")?.models == models)
        }
    }

    @Test func openFailure_namesTheFile() throws {
        try withTemporaryDirectory(prefix: "catalog") { dir in
            let blocker = dir + "/file"
            #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
            let error = #expect(throws: ModelCatalogCacheError.self) { try ModelCatalogCache(path: blocker + "/catalog.sqlite") }
            #expect(error?.description.contains(blocker) == true, "\(String(describing: error))")
        }
    }
}
