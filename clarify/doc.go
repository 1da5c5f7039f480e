// Package clarify answers InvokeEndpoint on an endpoint whose config has an
// ExplainerConfig.ClarifyExplainerConfig: SageMaker Clarify's online
// explanations.
//
// It owns everything between the client's request and Clarify's JSON
// answer: the configuration (ParseConfig, with the checks botocore's shapes
// cannot make: JMESPath expressions that compile, exactly one baseline, no
// text features yet), the SHAP baseline (inline, or fetched once through the
// caller's Fetch), the per-record EnableExplanations decision (a JMESPath
// boolean evaluated on that record's model output), Kernel SHAP itself
// (coalitions enumerated and sampled as the open-source shap library's
// KernelExplainer does, the synthetic data set predicted by the model in
// batches bounded by MaxRecordCount and MaxPayloadInMB and spread across the
// variant's instances, and the constrained weighted least squares solved
// here without a linear-algebra dependency) and the response layout.
//
// The caller (the invoke path) owns routing: it hands Explain the request and
// one Predictor per instance, and maps the errors by KindOf: KindBadRequest
// (the request, or an EnableExplanations result that is not a boolean),
// KindModelOutput (an answer the explainer cannot read), KindBaseline (the
// baseline could not be fetched or read) and KindTimeout (the caller's 60 s
// deadline passed; it also matches context.DeadlineExceeded). A Predictor's
// own error comes back unchanged, so the caller's ModelError passes through.
package clarify
