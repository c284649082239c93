// Package netcheck answers whether a host port is free.
package netcheck

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// PortInUse tries to bind the port on all interfaces; when binding is not
// allowed (no privilege), it tries to connect instead.
func PortInUse(port int) (bool, error) {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err == nil {
		l.Close()
		return false, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return true, nil
	}
	conn, derr := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if derr == nil {
		conn.Close()
		return true, nil
	}
	if errors.Is(derr, syscall.ECONNREFUSED) {
		return false, nil
	}
	return false, err
}
