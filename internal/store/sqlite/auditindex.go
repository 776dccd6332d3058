package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/entente-cti/entente/internal/audit"
)

// The index of releases by object (audit_objects, one row per release
// and bucket of object-id hashes) is written after the releases, in
// batches, not in each release's own transaction.
//
// Why: a release's rows go to up to audit.Buckets places of the index,
// one leaf page each, so a release of a few hundred versions wrote 40 or
// more pages to the log, two writes each, where its own row and packed
// versions took a few: a partner's read of 10,000 objects commits three
// releases, and on a machine where a write costs some 8 µs (a guest
// whose system calls are dear) those commits were most of what the gate
// added to the read, and the last two followed the reading (12-14 %
// over the ungated read, against a goal of 10 %). Written for every
// release committed since the last batch, on the checkpointer's tick
// (at most every 250 ms), the rows of one bucket land on the same leaf
// pages.
//
// The release itself, with every version it released, is durable before
// anything leaves, as before; what lags is only the index, which is
// derived from it. A query by object reads the index up to the sequence
// indexed and the releases after it themselves (auditWhere), so it finds
// every release at every moment. A crash loses at most the pending
// batch: opening the store indexes the releases after the last one
// indexed (catchUpIndex).

// indexPending writes the index rows of the releases committed since the
// last batch, in one transaction, and moves indexed up to the last of
// them. On an error they stay pending.
func (a *auditLog) indexPending(ctx context.Context) error {
	a.idxRun.Lock()
	defer a.idxRun.Unlock()
	a.idxMu.Lock()
	batch := a.idxPending
	a.idxMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	type row struct {
		bucket int
		seq    int64
		hashes []byte
	}
	var rows []row
	for _, p := range batch {
		for _, ir := range p.rows {
			rows = append(rows, row{ir.Bucket, p.seq, ir.Hashes})
		}
	}
	// In key order: the rows of one bucket follow each other on its
	// leaf pages.
	slices.SortFunc(rows, func(x, y row) int {
		if c := cmp.Compare(x.bucket, y.bucket); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	args := make([]any, 0, 3*len(rows))
	for _, r := range rows {
		args = append(args, r.bucket, r.seq, r.hashes)
	}
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		var full *sql.Stmt
		defer func() {
			if full != nil {
				full.Close()
			}
		}()
		return insertChunks(ctx, tx, `INSERT INTO audit_objects (bucket, seq, hashes) VALUES `, 3, args, &full)
	})
	if err != nil {
		return fmt.Errorf("index %d audit releases by object: %w", len(batch), err)
	}
	a.idxMu.Lock()
	a.idxPending = slices.Clone(a.idxPending[len(batch):])
	a.idxMu.Unlock()
	a.indexed.Store(batch[len(batch)-1].seq)
	return nil
}

// catchUpBatch is how many releases catchUpIndex reads and indexes at a
// time.
const catchUpBatch = 512

// catchUpIndex finds the sequence up to which releases are indexed and
// indexes those after it, which a crash left unindexed. Every batch is
// one transaction that indexes a run of releases in sequence order, so
// the highest sequence the index holds is that of the last release
// indexed, and every release before it is indexed.
func (a *auditLog) catchUpIndex(ctx context.Context) error {
	var indexed int64
	for b := range 2 * audit.Buckets {
		var m int64
		if err := a.write.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_objects WHERE bucket = ?`, b).Scan(&m); err != nil {
			return fmt.Errorf("index audit releases by object: read the index: %w", err)
		}
		indexed = max(indexed, m)
	}
	a.indexed.Store(indexed)
	for {
		rows, err := a.write.QueryContext(ctx, `SELECT seq, versions FROM audit WHERE seq > ? AND versions IS NOT NULL ORDER BY seq LIMIT ?`, indexed, catchUpBatch)
		if err != nil {
			return fmt.Errorf("index audit releases by object: %w", err)
		}
		var batch []pendingIndex
		for rows.Next() {
			var (
				seq    int64
				packed []byte
			)
			if err := rows.Scan(&seq, &packed); err != nil {
				rows.Close()
				return fmt.Errorf("index audit releases by object: %w", err)
			}
			vs, err := audit.UnpackRelease(packed)
			if err != nil {
				rows.Close()
				return fmt.Errorf("index audit releases by object: audit row %d: %w", seq, err)
			}
			batch = append(batch, pendingIndex{seq: seq, rows: audit.ReleaseIndex(vs)})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("index audit releases by object: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		a.idxMu.Lock()
		a.idxPending = append(batch, a.idxPending...)
		a.idxMu.Unlock()
		if err := a.indexPending(ctx); err != nil {
			return err
		}
		indexed = batch[len(batch)-1].seq
	}
}
