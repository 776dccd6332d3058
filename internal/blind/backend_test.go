package blind

import "testing"

// laneBackend is one implementation of fe8's arithmetic (see
// laneBackends).
type laneBackend struct {
	name string
	ifma bool
}

// evalPath is one way the batch paths evaluate: one point at a time, or
// on eight lanes with one of the backends.
type evalPath struct {
	lanes   bool
	backend laneBackend
}

func (p evalPath) String() string {
	if !p.lanes {
		return "one-point"
	}
	return "lanes-" + p.backend.name
}

// use makes the path's backend the one the lanes run, until restore.
func (p evalPath) use() (restore func()) { return p.backend.use() }

// pathsToTest are the batched evaluation's paths this machine can run:
// one point at a time, and eight lanes on each backend.
func pathsToTest() []evalPath {
	ps := []evalPath{{}}
	for _, b := range laneBackends() {
		ps = append(ps, evalPath{lanes: true, backend: b})
	}
	return ps
}

// forEachBackend runs f as a subtest on each backend of the lane
// arithmetic, skipping if there is none.
func forEachBackend(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	bs := laneBackends()
	if len(bs) == 0 {
		t.Skip("no eight-lane field arithmetic on this machine: the batch paths take one point at a time")
	}
	for _, b := range bs {
		t.Run(b.name, func(t *testing.T) {
			defer b.use()()
			f(t)
		})
	}
}
