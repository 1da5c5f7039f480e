package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a server process the harness started. It runs in its own process
// group (so that a Ctrl-C at the terminal reaches the harness alone, which
// then stops it in order) and gets SIGTERM if the harness dies (Pdeathsig).
type Proc struct {
	Name    string
	LogPath string
	// CPUs is the taskset CPU list it was pinned to ("" for none).
	CPUs string
	// Env holds the variables set on top of the harness's environment.
	Env  []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProc starts bin with args, pinned to cpus with taskset when cpus is
// not empty, its output appended to logPath, with the harness's environment
// plus env.
func StartProc(name, bin string, args []string, env []string, cpus, logPath string) (*Proc, error) {
	argv := append([]string{bin}, args...)
	if cpus != "" {
		ts, err := FindTaskset()
		if err != nil {
			return nil, err
		}
		argv = append([]string{ts, "-c", cpus}, argv...)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig fires when the thread that forked the child exits; Go does
	// not end its threads while the program runs, so in practice it fires
	// when the harness dies, even from SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &Proc{Name: name, LogPath: logPath, CPUs: cpus, Env: env, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID returns the process id (taskset execs the server, so it is the
// server's).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then kills the process group.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM: killed", p.Name, grace)
	}
	syscall.Kill(-p.PID(), syscall.SIGKILL) // anything left in its group
	return nil
}

// LogTail returns the last lines of the process's log.
func (p *Proc) LogTail() string { return tailFile(p.LogPath, 20) }

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// FindTaskset returns the path of taskset (util-linux).
func FindTaskset() (string, error) {
	p, err := exec.LookPath("taskset")
	if err != nil {
		return "", errors.New("taskset not found in PATH: install util-linux (Debian/Ubuntu: apt-get install -y util-linux) or run with -cpus shared")
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout.
func WaitHTTP(ctx context.Context, url string, p *Proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("poll %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before %s answered (%v); its log ends with:\n%s", p.Name, url, p.err, p.LogTail())
		}
		select {
		case <-ctx.Done():
			tail := ""
			if p != nil {
				tail = "; its log ends with:\n" + p.LogTail()
			}
			return fmt.Errorf("%s did not answer within %v: %v%s", url, timeout, last, tail)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ProcStatus returns the fields of /proc/PID/status.
func ProcStatus(pid int) (map[string]string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

// RSS returns a process's resident set size (VmRSS) in bytes.
func RSS(pid int) (int64, error) {
	st, err := ProcStatus(pid)
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	v, ok := st["VmRSS"]
	if !ok {
		return 0, fmt.Errorf("pid %d has no VmRSS", pid)
	}
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d VmRSS %q: %w", pid, v, err)
	}
	return kb << 10, nil
}

// ChildPIDs returns the pids whose parent is ppid.
func ChildPIDs(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ProcStatus(pid)
		if err != nil {
			continue
		}
		if st["PPid"] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// CPUListCount counts the CPUs of a list such as "0-3,6".
func CPUListCount(list string) int {
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return 0
		}
		n += b - a + 1
	}
	return n
}

// cgroupCPULimit returns the CPU bandwidth limit of this cgroup (v2
// cpu.max) in CPUs, or 0 for none.
func cgroupCPULimit() float64 {
	b, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	q, err1 := strconv.ParseFloat(f[0], 64)
	per, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || per <= 0 {
		return 0
	}
	return q / per
}

// GoMaxProcsOf describes the GOMAXPROCS a Go process runs with: its
// GOMAXPROCS variable when set, else Go's default, the number of CPUs in its
// affinity mask (lowered to a cgroup CPU limit, at least 2, when there is
// one).
func GoMaxProcsOf(pid int, env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			return v + " (set by GOMAXPROCS)"
		}
	}
	st, err := ProcStatus(pid)
	if err != nil {
		return "unknown"
	}
	n := CPUListCount(st["Cpus_allowed_list"])
	if lim := cgroupCPULimit(); lim > 0 {
		c := max(2, int(math.Ceil(lim)))
		if c < n {
			return fmt.Sprintf("%d (Go default: cgroup CPU limit %.2g)", c, lim)
		}
	}
	return fmt.Sprintf("%d (Go default: CPU affinity %s)", n, st["Cpus_allowed_list"])
}

// modelState is the part of the process backend's state.json that names a
// model process.
type modelState struct {
	Containers []struct {
		PID       int    `json:"PID"`
		StartTime uint64 `json:"StartTime"`
	} `json:"Containers"`
}

// statFields returns the fields of /proc/PID/stat that follow the command
// name (field 3, the state, is f[0]), or nil when it cannot be read. The
// command name is in parentheses and may hold spaces and parentheses
// itself: the fields start after the last ')'.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// CPUTime returns the user plus system CPU time a process (all its threads)
// has used, from /proc/PID/stat; 0 when it cannot be read.
func CPUTime(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	// Linux reports clock ticks of USER_HZ, 100 per second on every
	// architecture Go runs on.
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStartTime returns field 22 of /proc/PID/stat.
func procStartTime(pid int) (uint64, bool) {
	f := statFields(pid)
	if len(f) < 20 {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	return t, err == nil
}

// killLeftoverModels kills model processes that sagehost's process backend
// recorded under dataDir and that still run (same pid and start time):
// after a clean sagehost shutdown there are none.
func killLeftoverModels(dataDir string) []int {
	files, _ := filepath.Glob(filepath.Join(dataDir, "process", "*", "state.json"))
	var killed []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var st modelState
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		for _, c := range st.Containers {
			if c.PID <= 1 {
				continue
			}
			if t, ok := procStartTime(c.PID); ok && (c.StartTime == 0 || t == c.StartTime) {
				syscall.Kill(-c.PID, syscall.SIGKILL)
				syscall.Kill(c.PID, syscall.SIGKILL)
				killed = append(killed, c.PID)
			}
		}
	}
	return killed
}
