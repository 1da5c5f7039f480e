package server_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/sagehost/sagehost/internal/testmodel"
)

// streamParts invokes an endpoint with InvokeEndpointWithResponseStream and
// collects its parts until the stream ends; it returns the output, the
// parts and the stream's error.
func streamParts(t *testing.T, c clients, in *sagemakerruntime.InvokeEndpointWithResponseStreamInput) (*sagemakerruntime.InvokeEndpointWithResponseStreamOutput, [][]byte, error) {
	t.Helper()
	out, err := c.rt.InvokeEndpointWithResponseStream(ctxT(t), in)
	if err != nil {
		return nil, nil, err
	}
	stream := out.GetStream()
	defer stream.Close()
	var parts [][]byte
	for ev := range stream.Events() {
		p, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		parts = append(parts, p.Value.Bytes)
	}
	return out, parts, stream.Err()
}

func streamInput(endpoint, body string) *sagemakerruntime.InvokeEndpointWithResponseStreamInput {
	return &sagemakerruntime.InvokeEndpointWithResponseStreamInput{EndpointName: aws.String(endpoint),
		ContentType: aws.String("application/json"), Body: []byte(body)}
}

// InvokeEndpointWithResponseStream through aws-sdk-go-v2, on both HTTP
// servers: parts relayed as the container writes them, the API's headers
// both ways, errors before the stream as ordinary errors, and a container
// that stalls or dies mid-answer ending the stream with ModelStreamError.
func TestInvokeEndpointWithResponseStream(t *testing.T) {
	onEachHTTPServer(t, func(t *testing.T, withServer func(*serverConfig)) {
		srv := startServer(t, "", withServer, func(cfg *serverConfig) { cfg.ModelTimeout = 3 * time.Second })
		c := newClients(srv, keyA)
		deploy(t, c, "stream", modelEnv("streamer"))
		ctx := ctxT(t)

		// Chunks reach the client as the container sends them: the first
		// part arrives while the container holds the second back, waiting
		// for the gate this test opens only then.
		gate := filepath.Join(t.TempDir(), "gate")
		in := streamInput("stream", `{"testmodel":{"stream_chunks":3,"chunk_gate":"`+gate+`"}}`)
		in.Accept = aws.String("text/plain")
		in.CustomAttributes = aws.String("trace=1")
		out, err := c.rt.InvokeEndpointWithResponseStream(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ContentType) != "text/plain" || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" ||
			aws.ToString(out.CustomAttributes) != "echo:trace=1" {
			t.Fatalf("content type %q, variant %q, custom attributes %q", aws.ToString(out.ContentType),
				aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
		}
		stream := out.GetStream()
		first, ok := <-stream.Events()
		if !ok {
			t.Fatalf("the stream ended before its first part: %v", stream.Err())
		}
		var got strings.Builder
		got.Write(first.(*rttypes.ResponseStreamMemberPayloadPart).Value.Bytes)
		if want := `{"name":"streamer","chunk":0,"of":3}` + "\n"; got.String() != want {
			t.Fatalf("first part %q, want the first chunk alone %q", got.String(), want)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for ev := range stream.Events() {
			got.Write(ev.(*rttypes.ResponseStreamMemberPayloadPart).Value.Bytes)
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		stream.Close()
		var chunks []testmodel.Chunk
		for _, line := range strings.Split(strings.TrimSuffix(got.String(), "\n"), "\n") {
			var ch testmodel.Chunk
			if err := json.Unmarshal([]byte(line), &ch); err != nil {
				t.Fatalf("line %q of %q: %v", line, got.String(), err)
			}
			chunks = append(chunks, ch)
		}
		if len(chunks) != 3 || chunks[2].Chunk != 2 {
			t.Fatalf("chunks %+v", chunks)
		}

		// A whole answer (Content-Length) is relayed too; the container
		// sees Accept from X-Amzn-SageMaker-Accept and no other header
		// outside the API.
		in = streamInput("stream", `{"hello":1}`)
		in.Accept = aws.String("application/json")
		in.InferenceId = aws.String("inf-1")
		_, parts, err := streamParts(t, c, in)
		if err != nil {
			t.Fatal(err)
		}
		var rep report
		if err := json.Unmarshal(joinParts(parts), &rep); err != nil {
			t.Fatalf("answer %q: %v", joinParts(parts), err)
		}
		if rep.Body != `{"hello":1}` || rep.Accept != "application/json" {
			t.Fatalf("the container got body %q, accept %q", rep.Body, rep.Accept)
		}
		for name := range rep.Headers {
			switch strings.ToLower(name) {
			case "content-type", "accept", "content-length", "x-amzn-sagemaker-inference-id":
			default:
				t.Errorf("the container received header %q, which the API does not define", name)
			}
		}
		_, parts, err = streamParts(t, c, streamInput("stream", `{"testmodel":{"bytes":200000}}`))
		if b := joinParts(parts); err != nil || len(b) != 200000 || strings.Trim(string(b), "x") != "" {
			t.Fatalf("200000-byte answer: %d bytes in %d parts, %v", len(b), len(parts), err)
		}

		// Before the stream starts, errors are the usual ones.
		_, _, err = streamParts(t, c, streamInput("nope", `{}`))
		apiErr(t, err, "ValidationError", "Endpoint nope of account 111111111111 not found.")
		_, _, err = streamParts(t, c, streamInput("stream", `{"testmodel":{"status":503,"message":"model is sad"}}`))
		var me *rttypes.ModelError
		if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 503 || aws.ToString(me.OriginalMessage) != "model is sad" {
			t.Fatalf("want ModelError 503, got %v", err)
		}

		// A container that stalls mid-answer: the parts so far, then
		// ModelInvocationTimeExceeded once the model timeout passes.
		_, parts, err = streamParts(t, c, streamInput("stream", `{"testmodel":{"stream_chunks":2,"chunk_gate":"`+gate+`.never"}}`))
		var se *rttypes.ModelStreamError
		if !errors.As(err, &se) || aws.ToString(se.ErrorCode_) != "ModelInvocationTimeExceeded" ||
			!strings.Contains(se.ErrorMessage(), "did not complete sending the inference response in the allotted time") {
			t.Fatalf("want ModelStreamError ModelInvocationTimeExceeded, got %v", err)
		}
		if string(joinParts(parts)) != `{"name":"streamer","chunk":0,"of":2}`+"\n" {
			t.Fatalf("parts before the timeout: %q", joinParts(parts))
		}

		// A container dying mid-answer: StreamBroken, never a short
		// answer that looks complete.
		_, parts, err = streamParts(t, c, streamInput("stream", `{"testmodel":{"bytes":1048576,"crash_after":300000}}`))
		if !errors.As(err, &se) || aws.ToString(se.ErrorCode_) != "StreamBroken" {
			t.Fatalf("want ModelStreamError StreamBroken, got %v after %d bytes", err, len(joinParts(parts)))
		}
		if n := len(joinParts(parts)); n > 300000 {
			t.Fatalf("%d bytes relayed of the 300000 sent", n)
		}

		// (Counted once the relay has returned, which can be just after the
		// client has read the error event.)
		eventually(t, "sagehost_mid_stream_errors_total reaches 2", func() bool {
			return metric(t, srv, "sagehost_mid_stream_errors_total", `endpoint="stream"`) == 2
		})
	})
}

func joinParts(parts [][]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// A client that hangs up mid-stream ends the relay (and the call to the
// container) at the next part, long before the container would finish.
func TestResponseStreamClientHangsUp(t *testing.T) {
	onEachHTTPServer(t, func(t *testing.T, withServer func(*serverConfig)) {
		srv := startServer(t, "", withServer, func(cfg *serverConfig) { cfg.ModelTimeout = 120 * time.Second })
		c := newClients(srv, keyA)
		deploy(t, c, "hangup", modelEnv("hangup"))
		// 2000 chunks, one every 50 ms: 100 s to finish.
		out, err := c.rt.InvokeEndpointWithResponseStream(ctxT(t), streamInput("hangup", `{"testmodel":{"stream_chunks":2000,"chunk_delay":"50ms"}}`))
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		if _, ok := <-stream.Events(); !ok {
			t.Fatalf("no first part: %v", stream.Err())
		}
		stream.Close() // hang up
		eventually(t, "the relay ends after the client hung up", func() bool {
			return metric(t, srv, "sagehost_model_latency_seconds_count", `endpoint="hangup"`) == 1
		})
	})
}
