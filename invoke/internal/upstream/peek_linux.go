package upstream

import (
	"net"
	"syscall"
)

// stillOpen says whether an idle connection can carry another request: the
// peer has not closed or reset it, and it holds no stray bytes. It peeks
// without blocking (recv with MSG_PEEK|MSG_DONTWAIT): "would block" means
// open and quiet.
func stillOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait for readability
	})
	return err == nil && open
}
