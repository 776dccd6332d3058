// Package bench measures Entente's headline figures in one run, each beside
// its goal and, where one runs on the machine, beside a peer measured in
// the same run; it writes them as a table for people and as JSON lines for
// programs, and compares two such files (before and after a change) with
// benchstat-style statistics.
//
// It is a harness, like internal/drill: it treats Entente as a black box.
// It builds the binaries it needs from the repository (cmd/entente,
// tools/matchgen) and from the shared workload tools (../shared/bench),
// starts nodes as processes, drives them over HTTP with the same workload
// tools the peers were measured with, runs the Go benchmarks that measure
// what has no command (the gate, the node-level exports, a node-to-node
// pull) and reads the resource usage the kernel reports for each process
// (CPU, page faults, context switches, peak memory).
//
// # Adding a workload
//
// A workload is a [Workload] value in the list returned by [Workloads]
// (workloads.go): a name, a one-line description, and a Run function that
// measures and calls [Env.Emit] once per figure (and sample). Two shapes
// cover most needs:
//
//   - A Go benchmark: add a [GoBench] to the list with the package, the
//     benchmark pattern, -benchtime for quick and full runs and the
//     metrics to keep ([BenchMetric]: which sub-benchmark, which reported
//     unit, which figure name, unit and goal). The blind-matching,
//     device-watch and search benchmarks being written now fit this shape:
//     one entry each, no other code.
//   - A process: write a Run function that uses [Env.Tool] (built binaries),
//     [Env.StartNode] (a fresh node serving on loopback), [Env.Exec] (a
//     command with its resource usage) and [Env.Recorded] (a peer's
//     figure from ../shared/bench/BASELINES.md when the peer cannot run
//     here). See ingest.go for a small one.
//
// Every figure names its goal ([AtLeast], [AtMost], [Below]) when an issue
// set one, and whether more is better, so that `entente bench compare`
// can say which way a change moved it.
package bench
