//go:build !amd64 || purego

package blind

// laneBackends is empty: fe8's arithmetic runs on amd64 only.
func laneBackends() []laneBackend { return nil }

func (b laneBackend) use() (restore func()) { return func() {} }
