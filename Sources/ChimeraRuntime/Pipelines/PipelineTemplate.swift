import ChimeraCore
import Mustache

/// A pipeline template (a step's prompt, a pipeline output): Mustache rendered as plain text over
/// the run's context object (see ``PipelineDefinition``), exactly as the `template.render`
/// handler renders (``TemplateRenderer``): no HTML escaping, whole numbers without a decimal
/// point, `null` and missing names as nothing.
public struct PipelineTemplate: Sendable {
    private let template: MustacheTemplate

    /// Compiles `text`; a malformed template throws ``TaskFailure`` naming the line and column
    /// (`chimera validate` reports those before a run starts).
    public init(_ text: String) throws(TaskFailure) {
        template = try TemplateRenderer.parse(text, field: "template")
    }

    /// Renders over `context` (a JSON object).
    public func render(_ context: JSONValue) -> String {
        template.render(TemplateRenderer.mustacheValue(context))
    }

    /// Renders `text` at once.
    public static func render(_ text: String, _ context: JSONValue) throws(TaskFailure) -> String {
        try PipelineTemplate(text).render(context)
    }
}
