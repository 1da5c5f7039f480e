package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func encode(t *testing.T, r Record) string {
	t.Helper()
	var buf bytes.Buffer
	if err := appendRecord(&buf, &r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestRecordExact checks the bytes of a full record against SageMaker's
// documented example layout.
func TestRecordExact(t *testing.T) {
	got := encode(t, Record{
		EventID:     "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		InferenceID: "inf-1",
		// 18:25:49.987 at UTC+1: second precision, UTC, no rounding up.
		Time:   time.Date(2022, 2, 14, 18, 25, 49, 987654321, time.FixedZone("CET", 3600)),
		Input:  &Payload{ContentType: "text/csv", Data: []byte("69,0,153.7,<a>&\n"), Encoding: EncodingCSV},
		Output: &Payload{ContentType: "text/csv; charset=utf-8", Data: []byte("0.0254181120544672"), Encoding: EncodingCSV},
	})
	want := `{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"69,0,153.7,<a>&\n","encoding":"CSV"},` +
		`"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.0254181120544672","encoding":"CSV"}},` +
		`"eventMetadata":{"eventId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","inferenceId":"inf-1","inferenceTime":"2022-02-14T17:25:49Z"},"eventVersion":"0"}` + "\n"
	if got != want {
		t.Errorf("record:\n got %s\nwant %s", got, want)
	}
}

func TestRecordFields(t *testing.T) {
	when := time.Date(2024, 3, 11, 12, 32, 18, 648_000_000, time.UTC)
	binary := []byte{0x00, 0xff, 0xfe, 0x10, 'a', 0x80}
	cases := []struct {
		name    string
		r       Record
		in, out map[string]any // nil: absent
		meta    map[string]any
	}{
		{
			name: "json input and output",
			r: Record{EventID: "e", Time: when,
				Input:  &Payload{ContentType: "application/json", Data: []byte(`{"instances":[1,2]}`), Encoding: EncodingJSON},
				Output: &Payload{ContentType: "application/json", Data: []byte(`{"predictions":[0.5]}`), Encoding: EncodingJSON}},
			in:   map[string]any{"observedContentType": "application/json", "mode": "INPUT", "data": `{"instances":[1,2]}`, "encoding": "JSON"},
			out:  map[string]any{"observedContentType": "application/json", "mode": "OUTPUT", "data": `{"predictions":[0.5]}`, "encoding": "JSON"},
			meta: map[string]any{"eventId": "e", "inferenceTime": "2024-03-11T12:32:18Z"},
		},
		{
			name: "base64 of binary data",
			r: Record{EventID: "e", Time: when,
				Input:  &Payload{ContentType: "application/x-npy", Data: binary, Encoding: EncodingBase64},
				Output: &Payload{ContentType: "application/octet-stream", Data: binary}},
			in:   map[string]any{"observedContentType": "application/x-npy", "mode": "INPUT", "data": base64.StdEncoding.EncodeToString(binary), "encoding": "BASE64"},
			out:  map[string]any{"observedContentType": "application/octet-stream", "mode": "OUTPUT", "data": base64.StdEncoding.EncodeToString(binary), "encoding": "BASE64"},
			meta: map[string]any{"eventId": "e", "inferenceTime": "2024-03-11T12:32:18Z"},
		},
		{
			name: "csv data that is not UTF-8 becomes base64",
			r: Record{EventID: "e", Time: when,
				Input: &Payload{ContentType: "text/csv", Data: binary, Encoding: EncodingCSV}},
			in:   map[string]any{"observedContentType": "text/csv", "mode": "INPUT", "data": base64.StdEncoding.EncodeToString(binary), "encoding": "BASE64"},
			meta: map[string]any{"eventId": "e", "inferenceTime": "2024-03-11T12:32:18Z"},
		},
		{
			name: "only input, with inference id",
			r: Record{EventID: "e", InferenceID: "client-id", Time: when,
				Input: &Payload{ContentType: "text/csv", Data: []byte("1,2"), Encoding: EncodingCSV}},
			in:   map[string]any{"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2", "encoding": "CSV"},
			meta: map[string]any{"eventId": "e", "inferenceId": "client-id", "inferenceTime": "2024-03-11T12:32:18Z"},
		},
		{
			name: "only output, empty body, unknown encoding",
			r: Record{EventID: "e", Time: when,
				Output: &Payload{ContentType: "text/plain", Data: nil, Encoding: "XML"}},
			out:  map[string]any{"observedContentType": "text/plain", "mode": "OUTPUT", "data": "", "encoding": "BASE64"},
			meta: map[string]any{"eventId": "e", "inferenceTime": "2024-03-11T12:32:18Z"},
		},
		{
			name: "target model and inference component",
			r: Record{EventID: "e", Time: when, TargetModel: "houses.tar.gz", InferenceComponent: "llm",
				Input: &Payload{ContentType: "text/csv", Data: []byte("1"), Encoding: EncodingCSV}},
			in:   map[string]any{"observedContentType": "text/csv", "mode": "INPUT", "data": "1", "encoding": "CSV"},
			meta: map[string]any{"eventId": "e", "inferenceTime": "2024-03-11T12:32:18Z", "targetModel": "houses.tar.gz", "inferenceComponentName": "llm"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := encode(t, c.r)
			if bytes.Count([]byte(line), []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("not one line: %q", line)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if len(got) != 3 || got["eventVersion"] != "0" {
				t.Errorf("top level: %s", line)
			}
			cd, _ := got["captureData"].(map[string]any)
			checkObj(t, "endpointInput", cd["endpointInput"], c.in)
			checkObj(t, "endpointOutput", cd["endpointOutput"], c.out)
			if want := map[bool]int{true: 1, false: 0}; len(cd) != want[c.in != nil]+want[c.out != nil] {
				t.Errorf("captureData has %d fields: %s", len(cd), line)
			}
			checkObj(t, "eventMetadata", got["eventMetadata"], c.meta)
		})
	}
}

func checkObj(t *testing.T, name string, got any, want map[string]any) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("%s = %v, want absent", name, got)
		}
		return
	}
	m, ok := got.(map[string]any)
	if !ok {
		t.Errorf("%s = %v, want an object", name, got)
		return
	}
	if len(m) != len(want) {
		t.Errorf("%s has fields %v, want %v", name, m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s.%s = %#v, want %#v", name, k, m[k], v)
		}
	}
}

func TestEncoding(t *testing.T) {
	csv := []string{"text/csv", "Application/X-CSV"}
	jsn := []string{"application/json", "application/jsonlines; charset=utf-8"}
	cases := []struct {
		ct        string
		csv, json []string
		want      string
	}{
		{"text/csv", csv, jsn, EncodingCSV},
		{"text/csv; charset=utf-8", csv, jsn, EncodingCSV},
		{"TEXT/CSV", csv, jsn, EncodingCSV},
		{" text/csv ;header=present", csv, jsn, EncodingCSV},
		{"application/x-csv", csv, jsn, EncodingCSV},
		{"application/json", csv, jsn, EncodingJSON},
		{"application/JSON;charset=UTF-8", csv, jsn, EncodingJSON},
		{"application/jsonlines", csv, jsn, EncodingJSON},
		{"application/x-npy", csv, jsn, EncodingBase64},
		{"text/plain", csv, jsn, EncodingBase64},
		{"", csv, jsn, EncodingBase64},
		{"text/csv", nil, nil, EncodingBase64},
		{"application/json", nil, nil, EncodingBase64},
		{"application/json", csv, nil, EncodingBase64},
		{"text/csv", nil, jsn, EncodingBase64},
		{"application/json", nil, jsn, EncodingJSON},
		{"text/csvx", csv, jsn, EncodingBase64},
	}
	for _, c := range cases {
		if got := Encoding(c.ct, c.csv, c.json); got != c.want {
			t.Errorf("Encoding(%q, %v, %v) = %s, want %s", c.ct, c.csv, c.json, got, c.want)
		}
	}
}

func TestSampled(t *testing.T) {
	const n = 100_000
	for _, pct := range []int{-5, 0} {
		for range n {
			if Sampled(pct) {
				t.Fatalf("Sampled(%d) = true", pct)
			}
		}
	}
	for _, pct := range []int{100, 150} {
		for range n {
			if !Sampled(pct) {
				t.Fatalf("Sampled(%d) = false", pct)
			}
		}
	}
	for _, pct := range []int{1, 30, 99} {
		hits := 0
		for range n {
			if Sampled(pct) {
				hits++
			}
		}
		p := float64(pct) / 100
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		// Six standard deviations: a false failure about once in 10^9 runs.
		if math.Abs(float64(hits)-mean) > 6*sd {
			t.Errorf("Sampled(%d): %d of %d, want %.0f ± %.0f", pct, hits, n, mean, 6*sd)
		}
	}
}

func TestNewUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := newUUID()
		if !uuidRE.MatchString(u) || seen[u] {
			t.Fatalf("uuid %q (repeat: %v)", u, seen[u])
		}
		seen[u] = true
	}
}

func TestCheckDestination(t *testing.T) {
	cases := []struct {
		uri                string
		ok                 bool
		s3                 bool
		bucket, prefix, dr string
	}{
		{"s3://bucket/prefix/sub/", true, true, "bucket", "prefix/sub", ""},
		{"s3://bucket", true, true, "bucket", "", ""},
		{"S3://bucket/p", true, true, "bucket", "p", ""},
		{"file:///var/capture/", true, false, "", "", "/var/capture"},
		{"file://localhost/var/capture", true, false, "", "", "/var/capture"},
		{"/var/capture", true, false, "", "", "/var/capture"},
		{"s3:///prefix", false, false, "", "", ""},
		{"file://host/var", false, false, "", "", ""},
		{"relative/dir", false, false, "", "", ""},
		{"https://bucket.s3.amazonaws.com/p", false, false, "", "", ""},
		{"", false, false, "", "", ""},
	}
	for _, c := range cases {
		d, err := parseDestination(c.uri)
		if (err == nil) != c.ok || (CheckDestination(c.uri) == nil) != c.ok {
			t.Errorf("parseDestination(%q): %v, want ok=%v", c.uri, err, c.ok)
			continue
		}
		if err != nil {
			continue
		}
		if d.s3 != c.s3 || d.bucket != c.bucket || d.prefix != c.prefix || d.dir != c.dr {
			t.Errorf("parseDestination(%q) = %+v", c.uri, d)
		}
	}
}
