package runner

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestPort(t *testing.T) {
	for _, c := range []struct {
		v    string
		want int
		err  string
	}{
		{"", DefaultPort, ""},
		{"9000", 9000, ""},
		{"65535", 65535, ""},
		{"0", 0, `invalid SAGEMAKER_BIND_TO_PORT "0"`},
		{"65536", 0, `invalid SAGEMAKER_BIND_TO_PORT "65536"`},
		{"-1", 0, `invalid SAGEMAKER_BIND_TO_PORT "-1"`},
		{"http", 0, `invalid SAGEMAKER_BIND_TO_PORT "http"`},
	} {
		t.Setenv(EnvBindToPort, c.v)
		p, err := Port()
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: %d, %v; want error %q", c.v, p, err, c.err)
			}
		} else if err != nil || p != c.want {
			t.Errorf("%q: %d, %v; want %d", c.v, p, err, c.want)
		}
	}
}

// events records what Serve tells its Logger.
type events struct {
	mu      sync.Mutex
	lines   []string
	serving chan struct{}
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, s)
}

func (e *events) Serving(addr string, ln net.Listener) {
	e.add("serving " + addr)
	close(e.serving)
}
func (e *events) ShuttingDown(sig os.Signal)    { e.add("shutting down " + sig.String()) }
func (e *events) Stopped()                      { e.add("stopped") }
func (e *events) Failed(what string, err error) { e.add(what) }

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.lines)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestServeShutsDownAfterTheRequestsInFlight(t *testing.T) {
	port := freePort(t)
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ev := &events{serving: make(chan struct{})}
	ignored := 0
	code := make(chan int, 1)
	go func() {
		code <- Serve(port, Options{Handler: h, ShutdownTimeout: 10 * time.Second, Log: ev,
			IgnoreSIGTERM: func() bool { ignored++; return ignored == 1 }})
	}()
	<-ev.serving
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(b)
	}()
	<-started

	// The first SIGTERM is ignored as the hook asks; the second stops the
	// server, which waits for the request in flight.
	for range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case c := <-code:
		t.Fatalf("Serve returned %d with a request in flight (%s)", c, ev)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve did not return (%s)", ev)
	}
	if a := <-answer; a != "done" {
		t.Errorf("the request in flight got %q", a)
	}
	if got, want := ev.String(), fmt.Sprint([]string{"serving 0.0.0.0:" + strconv.Itoa(port), "shutting down terminated", "stopped"}); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if ignored != 2 {
		t.Errorf("IgnoreSIGTERM called %d times, want 2", ignored)
	}
}

func TestServeCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ev := &events{serving: make(chan struct{})}
	if c := Serve(ln.Addr().(*net.TCPAddr).Port, Options{Handler: http.NotFoundHandler(), Log: ev}); c != 1 {
		t.Errorf("exit code %d, want 1", c)
	}
	if got := ev.String(); got != "[cannot listen]" {
		t.Errorf("events %s", got)
	}
}
