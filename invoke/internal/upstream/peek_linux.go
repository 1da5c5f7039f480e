package upstream

import (
	"net"
	"syscall"
)

// peeker looks at an idle connection without reading from it. Made once per
// connection, so that a peek allocates nothing.
type peeker struct {
	rc   syscall.RawConn
	open bool
	fn   func(fd uintptr) bool
}

func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.fn = func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait for readability
	}
	return p
}

// stillOpen says whether an idle connection can carry another request: the
// peer has not closed or reset it, and it holds no stray bytes. It peeks
// without blocking (recv with MSG_PEEK|MSG_DONTWAIT): "would block" means
// open and quiet. A nil peeker says yes.
func (p *peeker) stillOpen() bool {
	if p == nil {
		return true
	}
	p.open = false
	err := p.rc.Read(p.fn)
	return err == nil && p.open
}
