package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagehost/sagehost/server"
)

// EchoImage is the built-in model every leg runs.
const EchoImage = "sagehost/echo"

// ModuleRoot returns the directory of the go.mod of the current module
// (from `go env GOMOD`, so it works from any directory inside it).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: run the harness from the sagehost checkout, or pass -sagehost-bin")
	}
	return filepath.Dir(gomod), nil
}

// BuildSagehost builds ./cmd/sagehost of the module at root into out.
func BuildSagehost(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/sagehost")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s ./cmd/sagehost in %s: %w\n%s", out, root, err, b)
	}
	return nil
}

// GitDescribe returns the checkout's commit, with "+dirty" when the tree
// has changes, or "" outside git.
func GitDescribe(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// Account is the key the harness gives sagehost and signs with.
type Account struct {
	AccessKeyID, SecretAccessKey, ID string
}

// NewAccount returns a random key pair for account 123456789012.
func NewAccount() Account {
	return Account{
		AccessKeyID:     fmt.Sprintf("AKIDBENCH%011d", rand.IntN(1e11)),
		SecretAccessKey: fmt.Sprintf("bench-%016x%016x", rand.Uint64(), rand.Uint64()),
		ID:              "123456789012",
	}
}

// Credentials returns the account's AWS credentials.
func (a Account) Credentials() aws.Credentials {
	return aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, Source: "sagehost-bench"}
}

// WriteCredentialsFile writes the shared-credentials file sagehost reads.
func (a Account) WriteCredentialsFile(path string) error {
	text := fmt.Sprintf("[bench]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_account_id = %s\n", a.AccessKeyID, a.SecretAccessKey, a.ID)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	return nil
}

// modelPortRange returns a random block of 100 model ports, away from the
// ranges sagehost's own tests use.
func modelPortRange() (lo, hi int) {
	// Below the kernel's ephemeral ports (32768 up by default), which the
	// load generator's connections hold by the thousand, and below the
	// 20000-29999 that sagehost and its tests use.
	lo = 10000 + rand.IntN(100)*100
	return lo, lo + 99
}

// Sagehost is a running sagehost: its own process, or in this process.
type Sagehost struct {
	URL     string
	DataDir string
	// Proc is the process (nil in-process).
	Proc *Proc
	srv  *server.Server
	logf *os.File
}

// StartSagehostProc runs `bin serve` on a free loopback port with its own
// data dir under dir, the account's credentials file, pinned to cpus, with
// extra environment env, and waits for /healthz.
func StartSagehostProc(ctx context.Context, bin, dir string, acct Account, cpus string, env []string) (*Sagehost, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	creds := filepath.Join(dir, "credentials")
	if err := acct.WriteCredentialsFile(creds); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	lo, hi := modelPortRange()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"serve", "--listen", listen, "--data-dir", dataDir, "--credentials", creds,
		"--port-min", strconv.Itoa(lo), "--port-max", strconv.Itoa(hi)}
	p, err := StartProc("sagehost", bin, args, env, cpus, filepath.Join(dir, "sagehost.log"))
	if err != nil {
		return nil, err
	}
	s := &Sagehost{URL: "http://" + listen, DataDir: dataDir, Proc: p}
	if err := WaitHTTP(ctx, s.URL+"/healthz", p, 60*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("sagehost: %w", err)
	}
	return s, nil
}

// StartSagehostInProcess runs server.Start in this process (the harness's
// own executable then serves the built-in model, see cmd/sagehost-bench).
func StartSagehostInProcess(ctx context.Context, dir string, acct Account) (*Sagehost, error) {
	creds := filepath.Join(dir, "credentials")
	if err := acct.WriteCredentialsFile(creds); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "sagehost.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sagehost log: %w", err)
	}
	lo, hi := modelPortRange()
	dataDir := filepath.Join(dir, "data")
	srv, err := server.Start(ctx, server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         dataDir,
		CredentialsFile: creds,
		PortMin:         lo,
		PortMax:         hi,
		Logger:          slog.New(slog.NewTextHandler(logf, nil)),
	})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start sagehost in-process: %w", err)
	}
	return &Sagehost{URL: srv.URL(), DataDir: dataDir, srv: srv, logf: logf}, nil
}

// Close stops sagehost (which stops its model processes), then kills any
// model process it left behind. It returns what went wrong, if anything.
func (s *Sagehost) Close() error {
	var err error
	if s.Proc != nil {
		err = s.Proc.Stop(60 * time.Second)
	}
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err = s.srv.Close(ctx)
		cancel()
		s.logf.Close()
	}
	if killed := killLeftoverModels(s.DataDir); len(killed) > 0 {
		err = fmt.Errorf("killed model processes sagehost left running: %v (previous error: %v)", killed, err)
	}
	return err
}

// DeployEcho creates a model (Image sagehost/echo), an endpoint config and
// endpoint name with the sagemaker client, and waits for InService.
func DeployEcho(ctx context.Context, baseURL string, acct Account, region, name string) error {
	cfg := aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(acct.AccessKeyID, acct.SecretAccessKey, ""),
		RetryMaxAttempts: 3,
	}
	sm := sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(baseURL) })
	model, config := name+"-model", name+"-config"
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(model),
		ExecutionRoleArn: aws.String("arn:aws:iam::" + acct.ID + ":role/sagehost-bench"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(EchoImage)},
	}); err != nil {
		return fmt.Errorf("CreateModel %s: %w", model, err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(config),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName:          aws.String("AllTraffic"),
			ModelName:            aws.String(model),
			InitialInstanceCount: aws.Int32(1),
			InstanceType:         smtypes.ProductionVariantInstanceTypeMlM5Large,
			InitialVariantWeight: aws.Float32(1),
		}},
	}); err != nil {
		return fmt.Errorf("CreateEndpointConfig %s: %w", config, err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{
		EndpointName: aws.String(name), EndpointConfigName: aws.String(config),
	}); err != nil {
		return fmt.Errorf("CreateEndpoint %s: %w", name, err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 2*time.Minute); err != nil {
		d, derr := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if derr == nil {
			return fmt.Errorf("endpoint %s not InService: %w (status %s, reason %q)", name, err, d.EndpointStatus, aws.ToString(d.FailureReason))
		}
		return fmt.Errorf("endpoint %s not InService: %w", name, err)
	}
	return nil
}

// StartEcho runs `bin model-server echo serve` on a free port, pinned to
// cpus, and waits for /ping.
func StartEcho(ctx context.Context, bin, dir, cpus string) (*Proc, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	env := []string{"SAGEMAKER_BIND_TO_PORT=" + strconv.Itoa(port)}
	p, err := StartProc("echo model", bin, []string{"model-server", "echo", "serve"}, env, cpus, filepath.Join(dir, "echo.log"))
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := WaitHTTP(ctx, "http://"+addr+"/ping", p, 30*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("echo model: %w", err)
	}
	return p, addr, nil
}
