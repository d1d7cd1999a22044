// Package testproc holds what the test packages that run real servers
// (etcd, PostgreSQL) need alike around their processes.
package testproc

import (
	"fmt"
	"net"
	"os"
	"sync"
)

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago: all are held open together, so none is handed out twice.
func FreePorts(n int) (ports []int, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			if cerr := l.Close(); cerr != nil && err == nil {
				ports, err = nil, fmt.Errorf("find a free port: %w", cerr)
			}
		}
	}()
	ports = make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Tail returns the last n bytes of the file name, such as a server's log
// for an error message, or why it could not be read.
func Tail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return TailBytes(b, n)
}

// TailBytes returns the last n bytes of b.
func TailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Shared is the one server of a kind that a test binary starts on first
// use and its tests share, started again once a test has stopped it.
type Shared[T any] struct {
	mu      sync.Mutex
	srv     T
	started bool
	err     error
}

// Get returns the shared server, calling start when there is none yet or
// stopped reports the last one stopped. A failed start is kept and not
// retried: every later test would wait for the same failure.
func (s *Shared[T]) Get(start func() (T, error), stopped func(T) bool) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && (!s.started || stopped(s.srv)) {
		s.srv, s.err = start()
		s.started = s.err == nil
	}
	return s.srv, s.err
}
