// Package modelserver holds sagehost's built-in model servers: programs in
// the sagehost binary itself that speak the SageMaker container contract
// (GET /ping, POST /invocations on SAGEMAKER_BIND_TO_PORT), so that a model
// whose Image names one runs with nothing else installed.
//
// A built-in server runs as `sagehost model-server NAME serve`; the process
// backend starts it like any model executable.
package modelserver

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sagehost/sagehost/internal/testmodel"
	"github.com/sagehost/sagehost/modelserver/echo"
	"github.com/sagehost/sagehost/modelserver/xgboost"
)

// ImagePrefix starts the image name of every built-in server.
const ImagePrefix = "sagehost/"

// servers maps a built-in server's name to its main function.
var servers = map[string]func(){
	// example is the repository's example model server: it answers every
	// invocation with a JSON report of what it received (see
	// examples/model-server).
	"example": testmodel.Main,
	// echo answers with the request's body: the benchmarks' model.
	"echo": echo.Main,
	// xgboost serves XGBoost models as SageMaker's XGBoost container does;
	// AWS's XGBoost image URIs map to it (see awsImage).
	"xgboost": xgboost.Main,
}

// awsImage matches the image URIs AWS publishes for its built-in XGBoost
// container, in any region and partition, with any version tag:
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1 and
// the older .../xgboost:latest.
var awsImage = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(sagemaker-xgboost|xgboost)(:[^/@]+|@sha256:[0-9a-f]{64})?$`)

// Lookup returns the built-in server an image names (e.g. "sagehost/xgboost"
// or "sagehost/example:latest", or an AWS XGBoost image URI), if any.
func Lookup(image string) (name string, ok bool) {
	if awsImage.MatchString(image) {
		return "xgboost", true
	}
	rest, found := strings.CutPrefix(image, ImagePrefix)
	if !found {
		return "", false
	}
	name, _, _ = strings.Cut(rest, ":")
	_, ok = servers[name]
	return name, ok
}

// Names lists the built-in servers.
func Names() []string {
	var names []string
	for n := range servers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs the named built-in server; args must be ["serve"].
func Run(name string, args []string) error {
	main, ok := servers[name]
	if !ok {
		return fmt.Errorf("no built-in model server %q (have %s)", name, strings.Join(Names(), ", "))
	}
	if len(args) != 1 || args[0] != "serve" {
		return fmt.Errorf("a model server is started with the single argument \"serve\", got %q", args)
	}
	main()
	return nil
}
