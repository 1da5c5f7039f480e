package minio

import "syscall"

// sysProcAttr puts the server in its own process group and kills it if the
// test process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
