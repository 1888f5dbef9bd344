// pause: the sandbox (infra) container of the local real node's pods.
//
// It holds the pod's namespaces open, reaps any child that is re-parented to it (it is
// PID 1 when the pod shares its PID namespace) and exits on SIGTERM or SIGINT. Built
// static (CGO_ENABLED=0) and committed into a FROM-scratch image by hack/build-binaries.sh.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		switch s {
		case syscall.SIGCHLD:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		default:
			os.Exit(0)
		}
	}
}
