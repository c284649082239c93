package netcheck

import (
	"net"
	"testing"
)

func TestPortInUseReal(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	inUse, err := PortInUse(port)
	if err != nil || !inUse {
		t.Fatalf("listening port %d reported free (%v)", port, err)
	}
	l.Close()
	inUse, err = PortInUse(port)
	if err != nil || inUse {
		t.Fatalf("closed port %d reported in use (%v)", port, err)
	}
}
