// Package audit is the format of a node's audit log: the record of every
// administrative change and of every object version that left the node
// (egress), whatever the path it left by.
//
// Egress is kept as one [Release] per batch of versions that left
// together — one page of a TAXII read, one export served, one push — with
// its versions packed compactly ([Packer], [PackRelease]) and an index by
// object ([ReleaseIndex], [ObjectBuckets]), so that auditing a
// 10,000-object read costs one small append. Queries return one [Record]
// per version, as if each had been appended alone ([Pager]).
//
// The package holds the format and its rules only; the store backends
// keep the log (append-only, protected by triggers) and the egress
// package appends to it before anything leaves.
package audit

import (
	"math"
	"time"
)

// MaxPage is the largest page of records a query returns.
const MaxPage = 10000

var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// UnixNano returns t as Unix nanoseconds and whether t is representable
// (between the years 1678 and 2262).
func UnixNano(t time.Time) (int64, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// FromUnixNano returns the UTC time of n Unix nanoseconds.
func FromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// Actor names a principal in the audit log: its key id and, when it has
// one, its organisation.
func Actor(keyID, org string) string {
	if org == "" {
		return keyID
	}
	return keyID + " (" + org + ")"
}

// BlindRecord is the record of a partner's blind access: rule names it
// ("blind.evaluate", "blind.set", "blind.resolve"), detail counts what it
// was (elements, indicators, references) — never a value. A refused
// request is recorded too, its rule ending in ".refused" and its detail
// giving the reason.
func BlindRecord(at time.Time, actor, partner, rule, detail string, refused error) Record {
	r := AdminRecord(at, actor, rule, partner, detail, refused)
	r.Action = Blind
	return r
}

// AdminRecord is the record of an administrative change: rule names it
// ("agreement.put"), partner is the organisation it concerns, detail what
// changed. A refused change is recorded too: its rule ends in ".refused"
// and its detail gives the error.
func AdminRecord(at time.Time, actor, rule, partner, detail string, refused error) Record {
	if refused != nil {
		rule += ".refused"
		detail += ": " + refused.Error()
	}
	return Record{Time: at, Actor: actor, Action: Admin, Partner: partner, Rule: rule, Detail: detail}
}
