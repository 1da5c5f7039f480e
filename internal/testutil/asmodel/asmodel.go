// Package asmodel lets a test binary act as a model container (Nomad's
// test-task trick): sagehost starts model executables with the argument
// "serve", and built-in images as `EXE model-server NAME serve`, so a test
// whose TestMain calls Main can use its own executable (os.Executable) as a
// model's Image, with EnvAsModel=1 in the model's Environment, and as the
// sagehost executable that built-in images run from.
package asmodel

import (
	"fmt"
	"os"
	"testing"

	"github.com/sagehost/sagehost/internal/testmodel"
	"github.com/sagehost/sagehost/modelserver"
)

// EnvAsModel, set to "1" in a model's Environment, makes the test binary
// serve as the test model when started with "serve".
const EnvAsModel = "TESTMODEL_AS_TEST_BINARY"

// Main runs the test model or a built-in model server when the test binary
// was started as one, and the tests otherwise; it never returns.
func Main(m *testing.M) {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "serve" && os.Getenv(EnvAsModel) == "1":
		testmodel.Main() // exits
	case len(os.Args) > 2 && os.Args[1] == "model-server":
		if err := modelserver.Run(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
