package instfiles

import (
	"fmt"
	"os"
	"path/filepath"
)

// OpenLog opens a container's log file for appending, creating it and its
// directory when they are missing.
func OpenLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// AppendLine appends line and a newline to a container's log file, as
// OpenLog opens it.
func AppendLine(path, line string) error {
	f, err := OpenLog(path)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
