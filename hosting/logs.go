package hosting

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sagehost/sagehost"
)

// LogPath returns the file of one log stream: the output of one container of
// one instance, laid out like CloudWatch's log group
// /aws/sagemaker/Endpoints/ENDPOINT and stream VARIANT/INSTANCE-ID (plus
// /CONTAINER for multi-container models).
func LogPath(root string, key sagehost.EndpointKey, variant, instanceID, container string) string {
	p := filepath.Join(root, key.Account, key.Region, "aws", "sagemaker", "Endpoints", key.Name, variant, instanceID)
	if container != "" {
		p = filepath.Join(p, container)
	}
	return p + ".log"
}

// Tail returns up to the last n non-empty lines of a file, joined by " | "
// and cut to at most max bytes, or "" when the file is missing or empty.
func Tail(path string, n, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		f.Seek(st.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, window))
	var lines []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		if s := strings.TrimSpace(string(l)); s != "" {
			lines = append(lines, s)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > max {
		out = "..." + out[len(out)-max:]
	}
	return out
}
