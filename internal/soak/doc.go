// Package soak holds the node's soak test (soak_test.go): an hour (or
// five minutes) of mixed load on one 'entente serve' process on
// loopback — TAXII posts, a partner's reads, exports, sightings, pulls
// from two peers, key and agreement changes — sampling the process's
// resident memory, WAL size, goroutines and open files, which must stay
// flat after warm-up, and plotting them (plot.go). It runs only when
// asked:
//
//	go test -run Soak -soak 5m ./internal/soak/
//	go test -run Soak -soak 1h -soak-svg ../../docs/soak.svg ./internal/soak/
//
// (ENTENTE_SOAK=1h in the environment does the same as -soak 1h, for
// runs over ./... whose other packages do not know the flag.)
package soak
