//go:build !linux

package wan

import "os/exec"

// dieWithParent does nothing here: a proxy process ends when its input,
// the parent's end of a pipe, closes.
func dieWithParent(*exec.Cmd) {}
