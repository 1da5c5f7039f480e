package main

import (
	"strings"
	"testing"
)

func TestJavaCompat(t *testing.T) {
	cases := map[string]string{
		`.*`:              `[^\n\r\x{85}\x{2028}\x{2029}]*`,
		`[.]`:             `[.]`,
		`\.`:              `\.`,
		`a\sb`:            `a[\t\n\x0B\f\r ]b`,
		`[\S\s]*`:         `[\x00-\x08\x0E-\x1F\x21-\x{10FFFF}\t\n\x0B\f\r ]*`,
		`[^\s]`:           `[^\t\n\x0B\f\r ]`,
		`\S+`:             `[^\t\n\x0B\f\r ]+`,
		`[\p{L}\-]+`:      `[\p{L}\-]+`,
		`[]a]`:            `[]a]`,
		`[a-z]{1,3}\d\w`:  `[a-z]{1,3}\d\w`,
		`(https|s3)://.+`: `(https|s3)://[^\n\r\x{85}\x{2028}\x{2029}]+`,
	}
	for in, want := range cases {
		got, err := javaCompat(in)
		if err != nil || got != want {
			t.Errorf("javaCompat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`[a[b]]`, `[a-z&&[^e]]`, `\v`, `\h`, `a*+`, `\R`, `[ab`} {
		if got, err := javaCompat(in); err == nil {
			t.Errorf("javaCompat(%q) = %q, want an error", in, got)
		}
	}
}

func TestTrimFailsOnUntranslatedPattern(t *testing.T) {
	model, err := parseJSON(strings.NewReader(`{"metadata":{},"operations":{"Op":{"name":"Op","input":{"shape":"In"}}},
		"shapes":{"In":{"type":"structure","members":{"A":{"shape":"S"}}},"S":{"type":"string","pattern":"(?<=x)y"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trim(model, nil); err == nil || !strings.Contains(err.Error(), "shape S") || !strings.Contains(err.Error(), "translation table") {
		t.Fatalf("trim: %v", err)
	}
}

func TestTrim(t *testing.T) {
	model, err := parseJSON(strings.NewReader(`{"version":"2.0","metadata":{"protocol":"json"},"documentation":"doc",
		"operations":{"Keep":{"name":"Keep","input":{"shape":"In"},"documentation":"d"},"Drop":{"name":"Drop","input":{"shape":"Other"}}},
		"shapes":{"In":{"type":"structure","members":{"documentation":{"shape":"S","documentation":"d"},"B":{"shape":"S"}},"documentation":"d"},
		"Other":{"type":"string"},"S":{"type":"string","pattern":"\\S+<&>"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := trim(model, []string{"Keep"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": "2.0",
  "metadata": {"protocol": "json"},
  "operations": {
    "Keep": {
      "name": "Keep",
      "input": {"shape": "In"}
    }
  },
  "shapes": {
    "In": {
      "type": "structure",
      "members": {
        "documentation": {"shape": "S"},
        "B": {"shape": "S"}
      }
    },
    "S": {"type": "string", "pattern": "\\S+<&>", "re2Pattern": "[^\\t\\n\\x0B\\f\\r ]+<&>"}
  }
}
`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	if _, err := trim(model, []string{"Missing"}); err == nil {
		t.Fatal("unknown operation accepted")
	}
}

func TestOperationNames(t *testing.T) {
	model, err := parseJSON(strings.NewReader(`{"metadata":{},"operations":{"B":{"name":"B"},"A":{"name":"A"},"C":{"name":"C"}},"shapes":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(operationNames(model)); got != "A\nB\nC\n" {
		t.Fatalf("operationNames = %q", got)
	}
}
