//go:build unix && !linux

package process

import "syscall"

// procStat reports a live process as running with an unknown (zero) start
// time: without /proc the backend cannot tell a reused pid from its own
// process.
func procStat(pid int) (state byte, start uint64, err error) {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return 0, 0, err
	}
	return 'R', 0, nil
}

// canWaitUnreaped is false: cmd.Wait reaps the child before its group is
// signalled.
const canWaitUnreaped = false

func waitExited(pid int) {}
