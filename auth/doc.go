// Package auth owns authentication for sagehost: it verifies AWS Signature
// Version 4 on incoming requests (header-signed and presigned), and it holds
// the access keys that requests may be signed with, each bound to an AWS
// account, loaded from an AWS shared-credentials style file that can be
// reloaded while the server runs.
//
// The expected signature is computed with the AWS signer library
// (github.com/aws/smithy-go/aws-http-auth/sigv4) over a copy of the request
// that holds exactly the headers the client said it signed; this package only
// parses what the client sent, checks the credential scope, the clock and the
// payload hash, and compares signatures.
//
// Every error Verify returns is a *sagehost.Error carrying the AWS error code
// and message; which HTTP status each code gets is decided elsewhere.
package auth
