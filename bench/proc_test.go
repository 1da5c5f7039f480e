package bench

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcStopAndWait(t *testing.T) {
	dir := t.TempDir()
	p, err := StartProc("sleeper", "sleep", []string{"60"}, []string{"X=1"}, "", filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() {
		t.Fatal("exited at once")
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A process that ignores SIGTERM is killed after the grace period.
	p, err = StartProc("stubborn", "sh", []string{"-c", "trap '' TERM; echo ready; sleep 60"}, nil, "", filepath.Join(dir, "log2"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Stop(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("stubborn Stop: %v", err)
	}
	if !strings.Contains(p.LogTail(), "ready") {
		t.Fatalf("log tail %q", p.LogTail())
	}

	// WaitHTTP notices a process that exits.
	p, err = StartProc("quitter", "sh", []string{"-c", "echo bye; exit 3"}, nil, "", filepath.Join(dir, "log3"))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := FreePort()
	err = WaitHTTP(t.Context(), "http://127.0.0.1:"+itoa(port)+"/ping", p, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("WaitHTTP on a dead process: %v", err)
	}
}

func TestPinnedProc(t *testing.T) {
	if _, err := FindTaskset(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	p, err := StartProc("pinned", "sleep", []string{"60"}, nil, "0", filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := ProcStatus(p.PID())
		if err == nil && st["Name"] == "sleep" {
			if st["Cpus_allowed_list"] != "0" {
				t.Fatalf("pinned to %q, want 0", st["Cpus_allowed_list"])
			}
			if g := GoMaxProcsOf(p.PID(), nil); !strings.HasPrefix(g, "1 ") {
				t.Fatalf("GOMAXPROCS of a process pinned to one CPU: %q", g)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("taskset did not exec sleep: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
