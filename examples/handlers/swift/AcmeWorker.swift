import ChimeraRuntime

/// A worker binary of your own: two Swift handlers served over Chimera's worker protocol.
///
/// Build it (`swift build --product chimera-example-worker`), print its config entries
/// (`.build/debug/chimera-example-worker --describe`), paste them into the config's `handlers`,
/// and the coordinator runs it like any other handler:
///
///     echo "Hello, Wörld!" | chimera exec --handler acme.slugify
///     chimera task --kind wordfreq --route internal "the cat and the hat"
@main
struct AcmeWorker {
    static func main() {
        ChimeraWorker.main(handlers: [Slugify(), WordFrequency()])
    }
}
