package main

import (
	"fmt"
	"regexp"
	"strings"
)

// translations maps each Java pattern of the models that Go's RE2 cannot
// compile to an RE2 pattern with the same meaning under full-string matching
// (the way SageMaker applies patterns). Each entry says why it is exact.
// The generator fails on any other pattern that RE2 rejects, so that a new
// botocore cannot slip in a pattern nobody translated.
var translations = map[string]string{
	// sagemaker: AlarmName, NonEmptyString64, NonEmptyString256.
	// `.+` consumes the whole value, so it holds no Java line terminator
	// (\n \r \u0085 \u2028 \u2029); the lookahead `(?!\s*$)` then rejects a
	// value made only of Java whitespace [ \t\n\x0B\f\r]. Equivalent: at least
	// one character that is neither whitespace nor a line terminator,
	// surrounded by non-line-terminators.
	`(?!\s*$).+`: `[^\n\r\x{85}\x{2028}\x{2029}]*[^\t\n\x0B\f\r \x{85}\x{2028}\x{2029}][^\n\r\x{85}\x{2028}\x{2029}]*`,

	// sagemaker: ArnOrName, VersionedArnOrName (and AIResourceIdentifier,
	// outside the hosting closure). The name group is one alphanumeric then
	// up to 62 of [a-zA-Z0-9-]; the lookbehind `(?<!-)` right after it says
	// its last character is not '-'. The name cannot contain ':' or '/', so
	// the optional ARN prefix and version suffix split the value one way
	// only. Equivalent: 1..63 characters, first and last alphanumeric.
	`(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)`:                `(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)`,
	`(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)(\/[0-9]{1,9})?`: `(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\/[0-9]{1,9})?`,
	`(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*/)?([a-zA-Z0-9]([a-zA-Z0-9\-]){0,62})(?<!-)`:                `(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*/)?([a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?)`,

	// sagemaker-runtime: InferenceId, TargetModelHeader. Java's \p{Print} is
	// the POSIX (US-ASCII) class [\x20-\x7E]; \S is any character outside
	// [ \t\n\x0B\f\r].
	`\A\S[\p{Print}]*\z`: `\A[^\t\n\x0B\f\r ][\x20-\x7E]*\z`,

	// sagemaker-runtime: Header, CustomAttributesHeader. Java's \p{ASCII} is
	// [\x00-\x7F].
	`\p{ASCII}*`: `[\x00-\x7F]*`,

	// sagemaker-runtime: FilenameHeader. The lookahead `(?!.*\..*\.)` forbids
	// a second '.'; the class holds no line terminator, so `.*` in it spans
	// the whole value. Equivalent: at most one '.', never first.
	`^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$`: `^[a-zA-Z0-9][a-zA-Z0-9_-]*(?:\.[a-zA-Z0-9_-]*)?$`,

	// sagemaker-runtime: S3OutputPathExtensionHeader. The class admits no
	// ':', so no matching value can start with "s3:" or "https:" and the
	// lookahead is redundant: dropping it is exact.
	`^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$`: `^[a-zA-Z0-9!_.*'()/-]+$`,
}

// Java's `.` (without DOTALL) excludes the line terminators \n \r \u0085
// \u2028 \u2029; RE2's excludes \n only. Java's \s is [ \t\n\x0B\f\r]; RE2's
// lacks \x0B.
const (
	javaDot         = `[^\n\r\x{85}\x{2028}\x{2029}]`
	javaSpaceInner  = `\t\n\x0B\f\r `
	javaSpace       = `[` + javaSpaceInner + `]`
	javaNonSpace    = `[^` + javaSpaceInner + `]`
	javaNonSpaceSet = `\x00-\x08\x0E-\x1F\x21-\x{10FFFF}`
)

// javaCompat rewrites a Java pattern that RE2 accepts so that it means in RE2
// what it means in Java: `.` outside classes and \s, \S everywhere get Java's
// sets. Constructs whose meaning differs silently between the two engines and
// that have no rewrite here (nested classes, \v, \h, \R, \X, \Z, possessive
// quantifiers) make it fail.
func javaCompat(p string) (string, error) {
	var b strings.Builder
	inClass := false
	classStart := 0 // index just after the '[' (and '^') opening the class
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' {
			if i+1 >= len(p) {
				return "", fmt.Errorf("trailing backslash")
			}
			n := p[i+1]
			switch n {
			case 's':
				if inClass {
					b.WriteString(javaSpaceInner)
				} else {
					b.WriteString(javaSpace)
				}
			case 'S':
				if inClass {
					b.WriteString(javaNonSpaceSet)
				} else {
					b.WriteString(javaNonSpace)
				}
			case 'v', 'h', 'H', 'V', 'R', 'X', 'Z', 'G', 'k', 'u':
				return "", fmt.Errorf("escape \\%c has a different or no meaning in RE2", n)
			case 'p', 'P':
				end := i + 2
				if end < len(p) && p[end] == '{' {
					j := strings.IndexByte(p[end:], '}')
					if j < 0 {
						return "", fmt.Errorf("unterminated \\%c{", n)
					}
					end += j + 1
				} else {
					end++
				}
				if end > len(p) {
					return "", fmt.Errorf("truncated \\%c", n)
				}
				b.WriteString(p[i:end])
				i = end - 1
				continue
			default:
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
			continue
		}
		if inClass {
			switch {
			case c == '[':
				return "", fmt.Errorf("nested character class (Java union/intersection) at offset %d", i)
			case c == '&' && i+1 < len(p) && p[i+1] == '&':
				return "", fmt.Errorf("character class intersection at offset %d", i)
			case c == ']' && i > classStart:
				inClass = false
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			classStart = i + 1
		case '.':
			b.WriteString(javaDot)
		case '*', '+', '?', '}':
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '+' {
				return "", fmt.Errorf("possessive quantifier at offset %d", i)
			}
		default:
			b.WriteByte(c)
		}
	}
	if inClass {
		return "", fmt.Errorf("unterminated character class")
	}
	return b.String(), nil
}

// re2Pattern returns the RE2 form of a model pattern, as used for full-string
// matching: the translation table's entry, or the Java-compatible rewrite.
func re2Pattern(p string) (string, error) {
	re, ok := translations[p]
	if !ok {
		if _, err := regexp.Compile(p); err != nil {
			return "", fmt.Errorf("RE2 rejects the pattern and the translation table has no entry for it: %v", err)
		}
		var err error
		re, err = javaCompat(p)
		if err != nil {
			return "", fmt.Errorf("cannot carry the pattern's Java meaning over to RE2: %v", err)
		}
	}
	if _, err := regexp.Compile(`^(?:` + re + `)$`); err != nil {
		return "", fmt.Errorf("RE2 form %q does not compile: %v", re, err)
	}
	return re, nil
}
