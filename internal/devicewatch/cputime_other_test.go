//go:build !unix

package devicewatch

import "time"

// cpuTime is 0 where getrusage is missing: the benchmark then reports
// no CPU time.
func cpuTime() time.Duration { return 0 }
