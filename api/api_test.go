package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/apimodel"
	"github.com/sagehost/sagehost/auth"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/store/sqlite"
)

func TestEveryErrorCodeHasAStatus(t *testing.T) {
	for _, code := range sagehost.ErrorCodes() {
		s, ok := statuses[code]
		if !ok {
			t.Errorf("error code %s has no HTTP status", code)
			continue
		}
		for p, st := range s {
			if st < 400 || st > 599 {
				t.Errorf("error code %s: status %d for protocol %d", code, st, p)
			}
		}
	}
	if len(statuses) != len(sagehost.ErrorCodes()) {
		t.Errorf("the status table has %d codes, sagehost.ErrorCodes %d", len(statuses), len(sagehost.ErrorCodes()))
	}
}

func TestEveryServedOperationIsInTheModel(t *testing.T) {
	for _, name := range ControlOperations() {
		if _, ok := apimodel.SageMaker().Operation(name); !ok {
			t.Errorf("operation %s is served but not in the embedded model", name)
		}
	}
	for action, r := range runtimeRoutes {
		op, ok := apimodel.Runtime().Operation(r.op)
		if !ok || !strings.HasSuffix(op.RequestURI, "/"+action) {
			t.Errorf("runtime route %s: operation %s %+v", action, r.op, op)
		}
	}
	// And the other way: every operation of the embedded models is served.
	served := map[string]bool{}
	for _, name := range ControlOperations() {
		served[name] = true
	}
	for _, r := range runtimeRoutes {
		served[r.op] = true
	}
	for _, svc := range []*apimodel.Service{apimodel.SageMaker(), apimodel.Runtime()} {
		for _, name := range svc.Operations() {
			if !served[name] {
				t.Errorf("operation %s is in the embedded model but not served", name)
			}
		}
	}
}

func newHandler(t testing.TB) *Handler {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.NewKeyring(auth.DevCredential)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &Handler{
		Auth:    &auth.Verifier{Keys: keys, Service: "sagemaker"},
		Control: &control.Service{Store: db, Logger: log},
		Router:  invoke.NewRouter(time.Second, log),
		Logger:  log,
	}
}

func sign(t testing.TB, req *http.Request, body []byte) {
	h := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: auth.DevCredential.AccessKeyID, SecretAccessKey: auth.DevCredential.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(h[:]), "sagemaker", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// FuzzServeHTTP sends signed requests with arbitrary targets, paths,
// headers and bodies: every answer must be a well-formed AWS response, and
// no input may cause an internal failure (a panic turns into one).
func FuzzServeHTTP(f *testing.F) {
	seeds := []struct{ method, path, target, header, body string }{
		{"POST", "/", "SageMaker.CreateModel", "", `{"ModelName":"m","PrimaryContainer":{"Image":"/bin/true"}}`},
		{"POST", "/", "SageMaker.CreateEndpointConfig", "", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":1,"InstanceType":"ml.m5.large"}]}`},
		{"POST", "/", "SageMaker.CreateEndpoint", "", `{"EndpointName":"e","EndpointConfigName":"c"}`},
		{"POST", "/", "SageMaker.ListModels", "", `{"MaxResults":1,"NextToken":"eyJhIjoieCJ9"}`},
		{"POST", "/", "SageMaker.AddTags", "", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:000000000000:model/m","Tags":[{"Key":"a","Value":"b"}]}`},
		{"POST", "/", "SageMaker.UpdateEndpointWeightsAndCapacities", "", `{"EndpointName":"e","DesiredWeightsAndCapacities":[{"VariantName":"v","DesiredWeight":0}]}`},
		{"POST", "/", "SageMaker.DescribeEndpoint", "", `{"EndpointName":"e"}`},
		{"POST", "/endpoints/e/invocations", "", "X-Amzn-SageMaker-Target-Variant: v", `{}`},
		{"POST", "/endpoints/%ZZ/invocations", "", "X-Amzn-SageMaker-Custom-Attributes: \x01", ``},
		{"GET", "/endpoints/e/async-invocations", "", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.target, s.header, s.body)
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, method, path, target, header, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, bytes.NewReader([]byte(body)))
		if err != nil {
			return // not a request a client could send
		}
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		if name, value, ok := strings.Cut(header, ":"); ok {
			req.Header[http.CanonicalHeaderKey(strings.TrimSpace(name))] = []string{strings.TrimSpace(value)}
		}
		sign(t, req, []byte(body))
		req.RequestURI = req.URL.RequestURI()
		req.Body = io.NopCloser(bytes.NewReader([]byte(body)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != 501 && w.Code != 503 {
			t.Fatalf("%s %s target %q header %q body %q: status %d %s", method, path, target, header, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			if w.Header().Get("X-Amzn-ErrorType") == "" || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("error without type or JSON body: %d %v %s", w.Code, w.Header(), w.Body)
			}
		}
	})
}

// TestUnimplementedOperation checks the answers to an operation SageMaker has
// but sagehost does not serve, and to a name SageMaker does not know: both
// UnknownOperationException with status 400, told apart by their messages.
func TestUnimplementedOperation(t *testing.T) {
	h := newHandler(t)
	call := func(target string) (int, string, string) {
		body := []byte(`{}`)
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sign(t, req, body)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s: %d %s: %v", target, w.Code, w.Body, err)
		}
		if w.Header().Get("X-Amzn-ErrorType") != e.Type {
			t.Errorf("%s: X-Amzn-ErrorType %q, body __type %q", target, w.Header().Get("X-Amzn-ErrorType"), e.Type)
		}
		return w.Code, e.Type, e.Message
	}

	code, typ, msg := call("SageMaker.CreateTrainingJob")
	if code != http.StatusBadRequest || typ != sagehost.CodeUnknownOperation ||
		!strings.HasPrefix(msg, "sagehost does not implement SageMaker.CreateTrainingJob: it serves the model hosting operations (") ||
		!strings.Contains(msg, "CreateEndpoint, ") {
		t.Errorf("SageMaker.CreateTrainingJob: %d %s %q", code, typ, msg)
	}

	code, typ, msg = call("SageMaker.CreateTrainingJobs")
	if code != http.StatusBadRequest || typ != sagehost.CodeUnknownOperation || msg != `Unrecognized operation "SageMaker.CreateTrainingJobs".` {
		t.Errorf("SageMaker.CreateTrainingJobs: %d %s %q", code, typ, msg)
	}
}

// wholeBody is a body the server read whole, as internal/fastserve's.
type wholeBody struct {
	io.Reader
	b []byte
}

func (w wholeBody) BufferedBody() []byte { return w.b }
func (wholeBody) Close() error           { return nil }

// A body the server already read whole is used as it is (no second copy of
// up to 6 MiB), within the same limits.
func TestReadBodyTakesBufferedBody(t *testing.T) {
	h := &Handler{}
	b := []byte("0123456789")
	r := httptest.NewRequest(http.MethodPost, "/endpoints/x/invocations", nil)
	r.Body, r.ContentLength = wholeBody{bytes.NewReader(b), b}, int64(len(b))
	got, release, err := h.readBody(r, 10)
	if err != nil || &got[0] != &b[0] || len(got) != len(b) {
		t.Fatalf("readBody = %q, %v: want the server's buffer itself", got, err)
	}
	release()
	r.Body = wholeBody{bytes.NewReader(b), b}
	if _, _, err := h.readBody(r, 9); !errors.Is(err, errTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	// Any other body is copied into a pooled buffer.
	r.Body = io.NopCloser(bytes.NewReader(b))
	got, release, err = h.readBody(r, 10)
	if err != nil || string(got) != string(b) || &got[0] == &b[0] {
		t.Fatalf("copied body = %q, %v", got, err)
	}
	release()
}
