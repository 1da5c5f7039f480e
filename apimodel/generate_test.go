package apimodel

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGeneratedFilesUpToDate re-runs the generator against this machine's
// botocore and checks that it reproduces the embedded files byte for byte.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs the generator")
	}
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Skipf("botocore is not importable with python3 (%v); cannot check the embedded models against it", err)
	}
	botocore := strings.TrimSpace(string(out))
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "run", "./internal/cmd/genapimodel", "-botocore", botocore, "-out", dir)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("genapimodel: %v\n%s", err, b)
	}
	for name, embedded := range map[string][]byte{"sagemaker.json": sageMakerJSON, "sagemaker-runtime.json": runtimeJSON, "sagemaker-operations.txt": []byte(sageMakerOperationsTxt)} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, embedded) {
			t.Errorf("%s differs from what genapimodel writes from botocore at %s; run go generate ./apimodel/", name, botocore)
		}
	}
}
