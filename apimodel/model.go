package apimodel

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed sagemaker.json
var sageMakerJSON []byte

//go:embed sagemaker-runtime.json
var runtimeJSON []byte

// sageMakerOperationsTxt names every operation of SageMaker's full model, one
// a line; sagemaker.json keeps only the ones sagehost serves.
//
//go:embed sagemaker-operations.txt
var sageMakerOperationsTxt string

var sageMakerOperations = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Split(sageMakerOperationsTxt, "\n") {
		if n != "" {
			m[n] = true
		}
	}
	return m
})

// IsSageMakerOperation reports whether name is an operation of SageMaker's
// full API (botocore's model), served by sagehost or not.
func IsSageMakerOperation(name string) bool { return sageMakerOperations()[name] }

var (
	sageMakerSvc = sync.OnceValue(func() *Service {
		s := mustParse("sagemaker.json", sageMakerJSON)
		allowLocalModelData(s)
		return s
	})
	runtimeSvc = sync.OnceValue(func() *Service { return mustParse("sagemaker-runtime.json", runtimeJSON) })
)

// SageMaker returns the control-plane model (awsJson1_1, target prefix
// "SageMaker"), parsed once from the embedded file.
func SageMaker() *Service { return sageMakerSvc() }

// Runtime returns the runtime model (rest-json), parsed once from the
// embedded file.
func Runtime() *Service { return runtimeSvc() }

func mustParse(name string, b []byte) *Service {
	s, err := Parse(b)
	if err != nil {
		// The embedded files are generated and tested; this is a build defect.
		panic("apimodel: embedded " + name + ": " + err.Error())
	}
	return s
}

// Service is one parsed service model. It is immutable and safe for
// concurrent use.
type Service struct {
	Metadata   Metadata
	operations map[string]*Operation
	shapes     map[string]*Shape
}

// Metadata is the model's service metadata.
type Metadata struct {
	APIVersion       string   `json:"apiVersion"`
	EndpointPrefix   string   `json:"endpointPrefix"`
	JSONVersion      string   `json:"jsonVersion"`
	Protocol         string   `json:"protocol"`
	Protocols        []string `json:"protocols"`
	ServiceFullName  string   `json:"serviceFullName"`
	ServiceID        string   `json:"serviceId"`
	SignatureVersion string   `json:"signatureVersion"`
	SigningName      string   `json:"signingName"`
	TargetPrefix     string   `json:"targetPrefix"`
	UID              string   `json:"uid"`
}

// Operation is one operation of a service.
type Operation struct {
	Name         string
	HTTPMethod   string
	RequestURI   string
	ResponseCode int // 0 when the model gives none (200)
	Input        string
	Output       string   // "" for an operation without output
	Errors       []string // error shape names
}

// Shape is one shape of a model. Min and Max keep the model's number text
// ("" when absent): lengths for strings (Unicode code points), blobs (bytes),
// lists and maps (elements); values for numbers.
type Shape struct {
	Name       string
	Type       string    // structure, list, map, string, integer, long, float, double, boolean, timestamp, blob
	Members    []*Member // structure members, in model order
	Required   []string  // required structure members
	Element    *Member   // list element ("member")
	Key, Value *Member   // map key and value
	Min, Max   string
	Pattern    string // the model's (Java) pattern, as messages show it
	RE2Pattern string // the pattern compiled; equals Pattern unless translated
	Enum       []string
	Sensitive  bool
	Payload    string // structure member bound to the HTTP payload (rest-json)

	Exception      bool // an error shape
	Fault          bool // a server-side error
	HTTPStatusCode int  // error shapes: the model's status code, 0 when absent
	ErrorCode      string

	members  map[string]*Member
	required map[string]bool
	re       *regexp.Regexp // anchored RE2Pattern
	min, max bound
}

// bound is a parsed Min or Max.
type bound struct {
	set bool
	f   float64
	i   int64 // valid when isInt
	int bool
}

func parseBound(s string) (bound, error) {
	if s == "" {
		return bound{}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return bound{}, err
	}
	b := bound{set: true, f: f}
	if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		b.int, b.i = true, int64(f)
	}
	return b, nil
}

// Member is a reference from a structure, list or map to a shape.
type Member struct {
	Name         string // member name ("" for list elements and map keys/values)
	Shape        string // target shape name
	Location     string // rest-json binding: "uri", "header", "headers", "querystring", "" (body)
	LocationName string
	Box          bool
	EventPayload bool
	target       *Shape
}

// Target returns the member's shape.
func (m *Member) Target() *Shape { return m.target }

// Member returns the structure member with the given name.
func (sh *Shape) Member(name string) (*Member, bool) {
	m, ok := sh.members[name]
	return m, ok
}

// IsRequired reports whether the structure member is required.
func (sh *Shape) IsRequired(name string) bool { return sh.required[name] }

// Operation returns the named operation.
func (s *Service) Operation(name string) (*Operation, bool) {
	op, ok := s.operations[name]
	return op, ok
}

// Operations returns the names of the model's operations, sorted.
func (s *Service) Operations() []string {
	names := make([]string, 0, len(s.operations))
	for n := range s.operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Shape returns the named shape.
func (s *Service) Shape(name string) (*Shape, bool) {
	sh, ok := s.shapes[name]
	return sh, ok
}

// Shapes returns the names of the model's shapes, sorted.
func (s *Service) Shapes() []string {
	names := make([]string, 0, len(s.shapes))
	for n := range s.shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// The file layout (botocore's, with re2Pattern added).
type (
	fileModel struct {
		Metadata   Metadata                 `json:"metadata"`
		Operations map[string]fileOperation `json:"operations"`
		Shapes     map[string]*fileShape    `json:"shapes"`
	}
	fileOperation struct {
		Name string `json:"name"`
		HTTP struct {
			Method       string `json:"method"`
			RequestURI   string `json:"requestUri"`
			ResponseCode int    `json:"responseCode"`
		} `json:"http"`
		Input  *fileRef  `json:"input"`
		Output *fileRef  `json:"output"`
		Errors []fileRef `json:"errors"`
	}
	fileRef struct {
		Shape        string `json:"shape"`
		Location     string `json:"location"`
		LocationName string `json:"locationName"`
		Box          bool   `json:"box"`
		EventPayload bool   `json:"eventpayload"`
	}
	fileShape struct {
		Type       string      `json:"type"`
		Required   []string    `json:"required"`
		Members    fileMembers `json:"members"`
		Member     *fileRef    `json:"member"`
		Key        *fileRef    `json:"key"`
		Value      *fileRef    `json:"value"`
		Min        json.Number `json:"min"`
		Max        json.Number `json:"max"`
		Pattern    string      `json:"pattern"`
		RE2Pattern string      `json:"re2Pattern"`
		Enum       []string    `json:"enum"`
		Sensitive  bool        `json:"sensitive"`
		Payload    string      `json:"payload"`
		Exception  bool        `json:"exception"`
		Fault      bool        `json:"fault"`
		Error      *struct {
			Code           string `json:"code"`
			HTTPStatusCode int    `json:"httpStatusCode"`
		} `json:"error"`
	}
	// fileMembers keeps the order of a structure's members.
	fileMembers []struct {
		name string
		ref  fileRef
	}
)

func (fm *fileMembers) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("members: want an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var ref fileRef
		if err := dec.Decode(&ref); err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		*fm = append(*fm, struct {
			name string
			ref  fileRef
		}{name, ref})
	}
	_, err := dec.Token()
	return err
}

// Parse parses a model in the layout genapimodel writes (botocore's, without
// documentation, with re2Pattern where needed) and compiles its patterns.
func Parse(b []byte) (*Service, error) {
	var fm fileModel
	if err := json.Unmarshal(b, &fm); err != nil {
		return nil, err
	}
	s := &Service{Metadata: fm.Metadata, operations: map[string]*Operation{}, shapes: map[string]*Shape{}}
	for name, fs := range fm.Shapes {
		sh := &Shape{
			Name: name, Type: fs.Type, Required: fs.Required,
			Min: string(fs.Min), Max: string(fs.Max),
			Pattern: fs.Pattern, RE2Pattern: fs.RE2Pattern, Enum: fs.Enum,
			Sensitive: fs.Sensitive, Payload: fs.Payload, Exception: fs.Exception, Fault: fs.Fault,
			members: map[string]*Member{}, required: map[string]bool{},
		}
		if fs.Error != nil {
			sh.HTTPStatusCode, sh.ErrorCode = fs.Error.HTTPStatusCode, fs.Error.Code
		}
		var err error
		if sh.min, err = parseBound(sh.Min); err != nil {
			return nil, fmt.Errorf("shape %s: min: %w", name, err)
		}
		if sh.max, err = parseBound(sh.Max); err != nil {
			return nil, fmt.Errorf("shape %s: max: %w", name, err)
		}
		if sh.Pattern != "" {
			if sh.RE2Pattern == "" {
				sh.RE2Pattern = sh.Pattern
			}
			if sh.re, err = regexp.Compile(`^(?:` + sh.RE2Pattern + `)$`); err != nil {
				return nil, fmt.Errorf("shape %s: pattern: %w", name, err)
			}
		}
		for _, r := range fs.Required {
			sh.required[r] = true
		}
		for _, m := range fs.Members {
			mem := newMember(m.name, m.ref)
			sh.Members = append(sh.Members, mem)
			sh.members[m.name] = mem
		}
		if fs.Member != nil {
			sh.Element = newMember("", *fs.Member)
		}
		if fs.Key != nil {
			sh.Key = newMember("", *fs.Key)
		}
		if fs.Value != nil {
			sh.Value = newMember("", *fs.Value)
		}
		s.shapes[name] = sh
	}
	// Resolve references.
	for _, sh := range s.shapes {
		refs := append([]*Member{sh.Element, sh.Key, sh.Value}, sh.Members...)
		for _, m := range refs {
			if m == nil {
				continue
			}
			if m.target = s.shapes[m.Shape]; m.target == nil {
				return nil, fmt.Errorf("shape %s refers to undefined shape %s", sh.Name, m.Shape)
			}
		}
		switch sh.Type {
		case "list":
			if sh.Element == nil {
				return nil, fmt.Errorf("list shape %s has no member", sh.Name)
			}
		case "map":
			if sh.Key == nil || sh.Value == nil {
				return nil, fmt.Errorf("map shape %s lacks its key or value", sh.Name)
			}
		}
	}
	for name, fo := range fm.Operations {
		op := &Operation{Name: name, HTTPMethod: fo.HTTP.Method, RequestURI: fo.HTTP.RequestURI, ResponseCode: fo.HTTP.ResponseCode}
		if fo.Input != nil {
			op.Input = fo.Input.Shape
		}
		if fo.Output != nil {
			op.Output = fo.Output.Shape
		}
		for _, e := range fo.Errors {
			op.Errors = append(op.Errors, e.Shape)
		}
		for _, n := range append([]string{op.Input, op.Output}, op.Errors...) {
			if n != "" && s.shapes[n] == nil {
				return nil, fmt.Errorf("operation %s refers to undefined shape %s", name, n)
			}
		}
		if op.Input != "" && s.shapes[op.Input].Type != "structure" {
			return nil, fmt.Errorf("operation %s: input %s is not a structure", name, op.Input)
		}
		s.operations[name] = op
	}
	return s, nil
}

func newMember(name string, r fileRef) *Member {
	return &Member{Name: name, Shape: r.Shape, Location: r.Location, LocationName: r.LocationName, Box: r.Box, EventPayload: r.EventPayload}
}
