// Command floors measures what HTTP stacks themselves cost on this machine,
// outside sagehost, so that sagehost's figures in BENCHMARKS.md can be read
// against them: the echo model alone (Go's net/http), an echo server on
// fasthttp, nginx in front of the echo model, a bare fasthttp proxy (server
// and HostClient, nothing else), and a net/http server proxying with
// fasthttp's client. Each leg: 16 clients, 1 KB bodies, SigV4-signed
// requests (answers checked as sagehost-bench checks them), 1 s warm-up,
// 5 s measured; the servers run on CPU 1 (taskset), and the command itself
// should run on CPU 0:
//
//	taskset -c 0 go run ./bench/floors
//
// It prints a markdown table: req/s and the server processes' CPU time per
// answer.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/valyala/fasthttp"

	"github.com/sagehost/sagehost/bench"
	"github.com/sagehost/sagehost/modelserver"
)

func main() {
	if len(os.Args) > 1 {
		if err := serve(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floors:", err)
			os.Exit(2)
		}
		return
	}
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "floors:", err)
		os.Exit(1)
	}
}

// serve runs one of the servers, as a child of run.
func serve(what string, args []string) error {
	switch what {
	case "model-server": // the echo model, as sagehost-bench runs it
		return modelserver.Run(args[0], args[1:])
	case "fast-echo": // ADDR
		return fasthttp.ListenAndServe(args[0], func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentTypeBytes(ctx.Request.Header.ContentType())
			ctx.SetBody(ctx.PostBody())
		})
	case "fast-proxy": // ADDR UPSTREAM
		hc := &fasthttp.HostClient{Addr: args[1], MaxConns: 512}
		return fasthttp.ListenAndServe(args[0], func(ctx *fasthttp.RequestCtx) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(http.MethodPost)
			req.SetRequestURI("/invocations")
			req.SetHost("127.0.0.1")
			req.Header.SetContentTypeBytes(ctx.Request.Header.ContentType())
			req.SetBodyRaw(ctx.PostBody())
			if err := hc.Do(req, resp); err != nil {
				ctx.Error(err.Error(), http.StatusBadGateway)
				return
			}
			ctx.SetContentTypeBytes(resp.Header.ContentType())
			ctx.SetBody(resp.Body())
		})
	case "nethttp-proxy": // ADDR UPSTREAM
		hc := &fasthttp.HostClient{Addr: args[1], MaxConns: 512}
		return http.ListenAndServe(args[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body bytes.Buffer
			body.Grow(int(r.ContentLength) + bytes.MinRead)
			body.ReadFrom(r.Body)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(http.MethodPost)
			req.SetRequestURI("/invocations")
			req.SetHost("127.0.0.1")
			req.Header.SetContentType(r.Header.Get("Content-Type"))
			req.SetBodyRaw(body.Bytes())
			if err := hc.Do(req, resp); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.Header()["Content-Type"] = []string{string(resp.Header.ContentType())}
			w.Write(resp.Body())
		}))
	}
	return fmt.Errorf("unknown server %q", what)
}

// leg is one measured path: its URL and the processes whose CPU it uses.
type leg struct {
	name string
	url  string
	pids []int
}

func run(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "floors-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var procs []*bench.Proc
	defer func() {
		for _, p := range procs {
			p.Stop(5 * time.Second)
		}
	}()
	const cpus = "1"
	echo, echoAddr, err := bench.StartEcho(ctx, self, dir, cpus)
	if err != nil {
		return err
	}
	procs = append(procs, echo)
	start := func(what string) (*bench.Proc, string, error) {
		port, err := bench.FreePort()
		if err != nil {
			return nil, "", err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p, err := bench.StartProc(what, self, []string{what, addr, echoAddr}, nil, cpus, filepath.Join(dir, what+".log"))
		if err != nil {
			return nil, "", err
		}
		procs = append(procs, p)
		return p, addr, bench.WaitHTTP(ctx, "http://"+addr+"/ping", p, 15*time.Second)
	}
	legs := []leg{{"the echo model alone (Go net/http)", "http://" + echoAddr + "/invocations", []int{echo.PID()}}}
	fastEcho, addr, err := start("fast-echo")
	if err != nil {
		return err
	}
	legs = append(legs, leg{"an echo server on fasthttp", "http://" + addr + "/invocations", []int{fastEcho.PID()}})
	nginxBin, err := bench.FindNginx("")
	if err != nil {
		return err
	}
	port, err := bench.FreePort()
	if err != nil {
		return err
	}
	nc := bench.NginxConfig{Prefix: filepath.Join(dir, "nginx"), Listen: "127.0.0.1:" + strconv.Itoa(port), Upstream: echoAddr}
	ng, err := bench.StartNginx(ctx, nginxBin, nc, cpus)
	if err != nil {
		return err
	}
	procs = append(procs, ng)
	legs = append(legs, leg{"nginx → echo model", "http://" + nc.Listen + "/invocations", append(bench.ChildPIDs(ng.PID()), ng.PID(), echo.PID())})
	for _, p := range []struct{ what, name string }{
		{"fast-proxy", "a bare fasthttp proxy (server and HostClient) → echo model"},
		{"nethttp-proxy", "a net/http server with fasthttp's client → echo model"},
	} {
		proc, addr, err := start(p.what)
		if err != nil {
			return err
		}
		legs = append(legs, leg{p.name, "http://" + addr + "/invocations", []int{proc.PID(), echo.PID()}})
	}

	fmt.Println("| server on CPU 1 | req/s | server CPU per call | errors |\n| --- | ---: | ---: | ---: |")
	for _, l := range legs {
		var before time.Duration
		cpu := func() (t time.Duration) {
			for _, pid := range l.pids {
				t += bench.CPUTime(pid)
			}
			return t
		}
		var used time.Duration
		res, err := bench.RunLoad(ctx, bench.Target{Name: l.name, URL: l.url}, bench.Load{
			Concurrency: 16, Payload: bench.MakePayload(1024), Warmup: time.Second, Duration: 5 * time.Second,
			Credentials:    aws.Credentials{AccessKeyID: "floors", SecretAccessKey: "floors"},
			OnMeasureStart: func() { before = cpu() },
			OnMeasureEnd:   func() { used = cpu() - before },
		})
		if err != nil {
			return err
		}
		perCall := "–"
		if n := res.Requests(); n > 0 {
			perCall = bench.FormatDuration(used / time.Duration(n))
		}
		fmt.Printf("| %s | %.0f | %s | %d |\n", l.name, res.Throughput(), perCall, res.ErrorCount())
	}
	return nil
}
