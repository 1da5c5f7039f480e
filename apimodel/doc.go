// Package apimodel owns sagehost's copy of Amazon SageMaker's API
// definitions: the botocore service models of the control plane (the hosting
// operations only) and of the runtime, trimmed and embedded, and the input
// validation that follows them the way SageMaker does, with the same error
// codes and Coral-style messages ("1 validation error detected: Value 'abc_'
// at 'endpointName' failed to satisfy constraint: ...").
//
// The embedded files sagemaker.json and sagemaker-runtime.json are generated
// from botocore by internal/cmd/genapimodel, together with
// sagemaker-operations.txt, the names of all of SageMaker's operations (see
// IsSageMakerOperation); regenerate them after a botocore upgrade (the build
// itself never needs botocore). Patterns are Java regular
// expressions; each one RE2 cannot take as it is carries an "re2Pattern" with
// the same meaning, which is what this package compiles, while messages show
// the model's pattern.
package apimodel

//go:generate go run ../internal/cmd/genapimodel -out .
