// Command genapimodel trims botocore's SageMaker service models to what
// sagehost serves and writes them into package apimodel, which embeds them:
//
//	go run ./internal/cmd/genapimodel [-botocore DIR] [-out apimodel/]
//
// DIR is botocore's package directory (or its data directory); without it the
// command asks python3 where botocore is installed. For each service it keeps
// the metadata, the operations sagehost implements (all of them for the
// runtime) and the shapes reachable from them, in botocore's order, without
// documentation. For SageMaker it also writes the names of all the model's
// operations, one a line, so that sagehost can tell an operation it does not
// implement from a name SageMaker does not know. Each pattern that RE2 cannot take as it is gets a
// "re2Pattern" next to it: a hand-checked translation from the table in
// patterns.go for the patterns RE2 rejects, or a rewrite giving `.`, \s and \S
// their Java meaning. Any other pattern that RE2 rejects stops the command.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// service is one model to trim.
type service struct {
	dir   string   // directory under botocore's data
	out   string   // file written into -out
	ops   []string // operations kept; nil keeps all
	names string   // file written into -out listing every operation's name; "" for none
	name  string
}

// controlPlaneOps are the SageMaker operations sagehost implements.
var controlPlaneOps = strings.Fields(`
	CreateModel DescribeModel ListModels DeleteModel
	CreateEndpointConfig DescribeEndpointConfig ListEndpointConfigs DeleteEndpointConfig
	CreateEndpoint DescribeEndpoint ListEndpoints DeleteEndpoint UpdateEndpoint UpdateEndpointWeightsAndCapacities
	AddTags ListTags DeleteTags
	CreateInferenceComponent DescribeInferenceComponent ListInferenceComponents UpdateInferenceComponent
	UpdateInferenceComponentRuntimeConfig DeleteInferenceComponent`)

var services = []service{
	{name: "sagemaker", dir: "sagemaker/2017-07-24", out: "sagemaker.json", ops: controlPlaneOps, names: "sagemaker-operations.txt"},
	{name: "sagemaker-runtime", dir: "sagemaker-runtime/2017-05-13", out: "sagemaker-runtime.json"},
}

func main() {
	botocore := flag.String("botocore", "", "botocore's package directory or its data directory (default: ask python3)")
	out := flag.String("out", "apimodel", "directory to write the trimmed models into")
	flag.Parse()
	if err := run(*botocore, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genapimodel:", err)
		os.Exit(1)
	}
}

func run(botocore, out string) error {
	data, err := dataDir(botocore)
	if err != nil {
		return err
	}
	for _, svc := range services {
		model, err := load(filepath.Join(data, svc.dir, "service-2.json.gz"))
		if err != nil {
			return fmt.Errorf("%s: %w", svc.name, err)
		}
		b, err := trim(model, svc.ops)
		if err != nil {
			return fmt.Errorf("%s: %w", svc.name, err)
		}
		if err := os.WriteFile(filepath.Join(out, svc.out), b, 0o644); err != nil {
			return err
		}
		if svc.names != "" {
			if err := os.WriteFile(filepath.Join(out, svc.names), operationNames(model), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// dataDir finds botocore's data directory.
func dataDir(dir string) (string, error) {
	if dir == "" {
		out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
		if err != nil {
			return "", fmt.Errorf("botocore not found (pass -botocore DIR): python3: %v", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, d := range []string{filepath.Join(dir, "data"), dir} {
		if _, err := os.Stat(filepath.Join(d, "sagemaker")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s holds no botocore data (no sagemaker model)", dir)
}

// load reads one gzipped botocore model.
func load(path string) (*value, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	model, err := parseJSON(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return model, nil
}

// operationNames returns the names of all the model's operations, sorted,
// one a line.
func operationNames(model *value) []byte {
	var names []string
	if ops := model.get("operations"); ops != nil && ops.kind == 'o' {
		names = append(names, ops.keys...)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// trim keeps the operations named (all when ops is nil) and the shapes they
// reach, drops documentation and annotates patterns.
func trim(model *value, ops []string) ([]byte, error) {
	operations, shapes := model.get("operations"), model.get("shapes")
	if model.get("metadata") == nil || operations == nil || operations.kind != 'o' || shapes == nil || shapes.kind != 'o' {
		return nil, errors.New("not a botocore service model (no metadata, operations or shapes)")
	}
	keep := map[string]bool{}
	if ops == nil {
		for _, k := range operations.keys {
			keep[k] = true
		}
	}
	for _, op := range ops {
		if operations.get(op) == nil {
			return nil, fmt.Errorf("operation %s is not in the model", op)
		}
		keep[op] = true
	}

	// Shapes reachable from the kept operations.
	reach := map[string]bool{}
	var stack []string
	push := func(ref *value) {
		if name := ref.getString("shape"); name != "" && !reach[name] {
			reach[name] = true
			stack = append(stack, name)
		}
	}
	for _, name := range operations.keys {
		if !keep[name] {
			continue
		}
		op := operations.get(name)
		push(op.get("input"))
		push(op.get("output"))
		if errs := op.get("errors"); errs != nil {
			for _, e := range errs.vals {
				push(e)
			}
		}
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sh := shapes.get(name)
		if sh == nil {
			return nil, fmt.Errorf("shape %s is referenced but not defined", name)
		}
		if members := sh.get("members"); members != nil {
			for _, m := range members.vals {
				push(m)
			}
		}
		for _, k := range []string{"member", "key", "value"} {
			push(sh.get(k))
		}
	}

	res := &value{kind: 'o'}
	for i, k := range model.keys {
		switch k {
		case "documentation":
		case "operations":
			ov := &value{kind: 'o'}
			for j, name := range operations.keys {
				if keep[name] {
					ov.keys = append(ov.keys, name)
					ov.vals = append(ov.vals, undocument(operations.vals[j], false))
				}
			}
			res.keys, res.vals = append(res.keys, k), append(res.vals, ov)
		case "shapes":
			sv := &value{kind: 'o'}
			var bad []string
			for j, name := range shapes.keys {
				if !reach[name] {
					continue
				}
				sh := undocument(shapes.vals[j], false)
				if p := sh.get("pattern"); p != nil && p.kind == 's' {
					re, err := re2Pattern(p.str)
					if err != nil {
						bad = append(bad, fmt.Sprintf("shape %s: pattern %q: %v", name, p.str, err))
					} else if re != p.str {
						sh.insertAfter("pattern", "re2Pattern", &value{kind: 's', str: re})
					}
				}
				sv.keys, sv.vals = append(sv.keys, name), append(sv.vals, sh)
			}
			if len(bad) > 0 {
				sort.Strings(bad)
				return nil, fmt.Errorf("patterns without an RE2 form (add them to the translation table in patterns.go):\n\t%s", strings.Join(bad, "\n\t"))
			}
			res.keys, res.vals = append(res.keys, k), append(res.vals, sv)
		default:
			res.keys, res.vals = append(res.keys, k), append(res.vals, undocument(model.vals[i], false))
		}
	}
	var b bytes.Buffer
	res.encode(&b, "")
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// undocument returns a copy of v without "documentation" and
// "documentationUrl" keys. A structure's "members" object is keyed by member
// names, which are kept whatever they are.
func undocument(v *value, memberNames bool) *value {
	switch v.kind {
	case 'o':
		c := &value{kind: 'o'}
		for i, k := range v.keys {
			if !memberNames && (k == "documentation" || k == "documentationUrl") {
				continue
			}
			c.keys = append(c.keys, k)
			c.vals = append(c.vals, undocument(v.vals[i], !memberNames && k == "members"))
		}
		return c
	case 'a':
		c := &value{kind: 'a'}
		for _, e := range v.vals {
			c.vals = append(c.vals, undocument(e, false))
		}
		return c
	}
	return v
}
