package instfiles

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sagehost/sagehost"
)

// ExitLatch records how the containers of an instance exit: the status of
// the first one to exit, which is the instance's, and when every one has.
// It is safe for concurrent use.
type ExitLatch struct {
	first chan struct{} // closed when the first container exits
	exit  sagehost.ExitStatus
	once  sync.Once
	left  atomic.Int32  // containers still running
	all   chan struct{} // closed when every container has exited
}

// NewExitLatch returns the latch of an instance of n running containers.
func NewExitLatch(n int) *ExitLatch {
	l := &ExitLatch{first: make(chan struct{}), all: make(chan struct{})}
	l.left.Store(int32(n))
	if n <= 0 {
		close(l.all)
	}
	return l
}

// Exited records that one container has exited with es. It must be called
// once per container.
func (l *ExitLatch) Exited(es sagehost.ExitStatus) {
	l.once.Do(func() {
		l.exit = es
		close(l.first)
	})
	if l.left.Add(-1) == 0 {
		close(l.all)
	}
}

// Wait blocks until a container has exited and returns its status, or
// until ctx ends. Once a container has exited it returns at once.
func (l *ExitLatch) Wait(ctx context.Context) (sagehost.ExitStatus, error) {
	select {
	case <-l.first:
		return l.exit, nil
	case <-ctx.Done():
		return sagehost.ExitStatus{}, ctx.Err()
	}
}

// All is closed when every container has exited.
func (l *ExitLatch) All() <-chan struct{} { return l.all }
