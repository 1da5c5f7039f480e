package main

import (
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "x"}, `"x" is not a number of clients`},
		{[]string{"-sizes", "1GB"}, "payload size"},
		{[]string{"-sagehost-env", "NOEQUALS"}, "want KEY=VALUE"},
		{[]string{"-cpus", "sometimes"}, `-cpus "sometimes"`},
		{[]string{"-cpus", "pin", "-inprocess"}, "does not go with -inprocess"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"model-server"}, "usage: sagehost-bench model-server NAME serve"},
		{[]string{"model-server", "nope", "serve"}, "no built-in model server"},
	} {
		var out, errb strings.Builder
		if code := run(c.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

func TestChoosePlacement(t *testing.T) {
	p, err := choosePlacement("shared", "0", "1", false)
	if err != nil || p.Pinned {
		t.Fatalf("shared: %+v %v", p, err)
	}
	p, err = choosePlacement("auto", "0", "1", true)
	if err != nil || p.Pinned || !strings.Contains(p.Why, "in-process") {
		t.Fatalf("auto in-process: %+v %v", p, err)
	}
	if _, err := choosePlacement("pin", "", "1", false); err == nil {
		t.Fatal("pin with an empty CPU list accepted")
	}
}

func TestLists(t *testing.T) {
	if got := splitList(" a, ,b,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("splitList: %q", got)
	}
	if got, err := parseInts("1, 16,64"); err != nil || len(got) != 3 || got[2] != 64 {
		t.Fatalf("parseInts: %v %v", got, err)
	}
}
