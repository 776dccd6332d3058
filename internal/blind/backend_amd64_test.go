//go:build amd64 && !purego

package blind

// laneBackends are the implementations of fe8's arithmetic this machine
// runs: AVX2 and, where the CPU has it, AVX-512 IFMA.
func laneBackends() []laneBackend {
	var bs []laneBackend
	if hasAVX2 {
		bs = append(bs, laneBackend{name: "avx2"})
	}
	if hasIFMA {
		bs = append(bs, laneBackend{name: "ifma", ifma: true})
	}
	return bs
}

// use makes b's code the one mul8, sqr8, add8, sub8 and select8 run,
// until restore is called.
func (b laneBackend) use() (restore func()) {
	old := useIFMA
	useIFMA = b.ifma
	return func() { useIFMA = old }
}
