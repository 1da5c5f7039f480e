package artifact

import "syscall"

// ctimeNanos returns a file's status change time.
func ctimeNanos(st *syscall.Stat_t) int64 { return st.Ctim.Nano() }
