// Command model-server is the smallest model server that sagehost (and
// Amazon SageMaker) can host. It shows the model container contract that
// every image or executable given as a model's Image must follow:
//
//   - The platform starts it with the single argument "serve".
//   - It serves HTTP on the port in SAGEMAKER_BIND_TO_PORT (8080 when unset),
//     on all interfaces. It may open more ports only inside
//     SAGEMAKER_SAFE_PORT_RANGE ("first-last", inclusive).
//   - GET /ping answers 200 once the model is loaded. The platform polls it
//     after start and sends no traffic until it passes; a container that
//     never passes fails the endpoint.
//   - POST /invocations gets the client's payload as is, with the client's
//     Content-Type and Accept, and X-Amzn-SageMaker-Custom-Attributes when
//     the client sent it. The status, Content-Type, body and
//     X-Amzn-SageMaker-Custom-Attributes of the answer go back to the
//     client; a non-2xx answer reaches it as a ModelError. It must answer
//     within 60 seconds. Streaming answers use chunked transfer encoding.
//   - The model data (the extracted ModelDataUrl archive) is in the
//     directory SM_MODEL_DIR names (/opt/ml/model in a container); treat it
//     as read-only.
//   - The model's Environment reaches it as environment variables, and
//     nothing else from the host does.
//   - Whatever it writes to stdout and stderr is its log.
//   - To stop it the platform sends SIGTERM, then SIGKILL 30 seconds later.
//
// This server has no model: /invocations answers with a JSON report of what
// it received (headers, body, environment, model files), which makes it handy
// for trying sagehost out. Build it and give the binary's absolute path as
// the model's Image with the process backend:
//
//	go build -o /tmp/model-server ./examples/model-server
//	aws sagemaker create-model --model-name demo \
//	    --primary-container Image=/tmp/model-server \
//	    --execution-role-arn arn:aws:iam::000000000000:role/demo
//
// Knobs in a JSON request body make it misbehave on purpose, for example
// {"testmodel": {"status": 500, "message": "boom"}}; see package
// internal/testmodel for the full list.
package main

import (
	"fmt"
	"os"

	"github.com/sagehost/sagehost/internal/testmodel"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: model-server serve")
		os.Exit(2)
	}
	testmodel.Main()
}
