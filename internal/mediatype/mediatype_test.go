package mediatype

import "testing"

func TestBase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"text/csv", "text/csv"},
		{" Text/CSV ; charset=UTF-8", "text/csv"},
		{"text/csv; charset", "text/csv"},
		{"application/jsonlines;", "application/jsonlines"},
		{";text/csv", ""},
		{"text/csv, application/json", "text/csv, application/json"},
		{"\ttext/plain\n", "text/plain"},
		{"*/*", "*/*"},
	} {
		if got := Base(c.in); got != c.want {
			t.Errorf("Base(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
