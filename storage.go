package entente

import "time"

// WALStats describes one database file's write-ahead log, for monitoring:
// a store that keeps its writes in a log before copying them into the
// database file (a checkpoint) reports how large the log is and how far
// the checkpoints are behind.
type WALStats struct {
	// Database names the file ("objects", "audit").
	Database string
	// Bytes is the log's size now; LimitBytes the size the store keeps
	// it to (it may pass it briefly, by what is written between two
	// checkpoints).
	Bytes, LimitBytes int64
	// PendingFrames is how many committed pages the last checkpoint left
	// in the log, not yet in the database file.
	PendingFrames int64
	// CheckpointLag is how long it has been since a checkpoint last left
	// nothing pending (0 when nothing is).
	CheckpointLag time.Duration
	// Checkpoints counts the checkpoints run, Truncations those that
	// emptied the log, and Incomplete the truncating ones that gave up
	// waiting for readers or the writer (a later one retries).
	Checkpoints, Truncations, Incomplete int64
	// The incomplete ones by what they gave up waiting for: the writer
	// (its transaction outlasted the wait), reads in flight when new
	// ones were held back (a long read), readers of older snapshots that
	// SQLite still found once those had finished, or an error.
	GaveUpWriter, GaveUpReads, GaveUpSnapshots, GaveUpError int64
	// ReadsHeld counts the reads held back while a checkpoint emptied
	// the log (so that the readers of older snapshots could finish), and
	// ReadsHeldTime is how long they waited in all.
	ReadsHeld     int64
	ReadsHeldTime time.Duration
}

// WALReporter is implemented by stores that keep write-ahead logs (the
// embedded SQLite store), so that a node can expose them as metrics.
type WALReporter interface {
	WALStats() []WALStats
}
