// Package mediatype reads the media type of a Content-Type or Accept
// value the lenient way sagehost's servers do.
package mediatype

import "strings"

// Base is the media type of a Content-Type (or of one media range of an
// Accept): the part before any ';', trimmed of spaces and lower-cased. It
// does not check the syntax: "text/csv; charset" is text/csv, and a value
// that is no media type comes back trimmed and lower-cased.
func Base(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
