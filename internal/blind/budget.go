package blind

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Budget is how many evaluations a partner may have per period.
type Budget struct {
	Limit  int64
	Period time.Duration
}

// periods are the units accepted by [ParseBudget].
var periods = map[string]time.Duration{
	"minute": time.Minute, "min": time.Minute, "m": time.Minute,
	"hour": time.Hour, "h": time.Hour,
	"day": 24 * time.Hour, "d": 24 * time.Hour,
	"week": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// maxBudget bounds a budget's limit (it is stored in agreements).
const maxBudget = 1 << 40

// ParseBudget parses "N/period", where period is minute, hour, day or
// week (or m, h, d, w), or a Go duration of at least a minute ("100000/6h").
func ParseBudget(s string) (Budget, error) {
	n, p, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Budget{}, fmt.Errorf("blind budget %q: want N/period, e.g. 100000/day", s)
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if err != nil || limit < 1 || limit > maxBudget {
		return Budget{}, fmt.Errorf("blind budget %q: N must be a whole number from 1 to %d", s, int64(maxBudget))
	}
	p = strings.ToLower(strings.TrimSpace(p))
	d, ok := periods[p]
	if !ok {
		d, err = time.ParseDuration(p)
		if err != nil || d < time.Minute {
			return Budget{}, fmt.Errorf("blind budget %q: period must be minute, hour, day, week or a duration of a minute or more", s)
		}
	}
	return Budget{Limit: limit, Period: d}, nil
}

// String writes the budget as ParseBudget reads it.
func (b Budget) String() string {
	for _, name := range []string{"minute", "hour", "day", "week"} {
		if periods[name] == b.Period {
			return strconv.FormatInt(b.Limit, 10) + "/" + name
		}
	}
	return strconv.FormatInt(b.Limit, 10) + "/" + b.Period.String()
}

// periodOf returns the start of the period that t falls in (periods are
// aligned on the Unix epoch) and the start of the next.
func (b Budget) periodOf(t time.Time) (time.Time, time.Time) {
	p := int64(b.Period)
	n := t.UnixNano()
	start := n - ((n%p)+p)%p
	return time.Unix(0, start).UTC(), time.Unix(0, start+p).UTC()
}

// Ledger counts the evaluations of each partner per period. The node
// keeps it in its store so that every replica shares one count; the
// check and the addition of Spend must be one atomic step.
type Ledger interface {
	// Spend adds n to the partner's count for the period starting at
	// period, unless that would exceed limit; it returns the count after
	// the call and whether n was added.
	Spend(ctx context.Context, partner string, period time.Time, n, limit int64) (used int64, ok bool, err error)
	// Used returns the partner's count for the period.
	Used(ctx context.Context, partner string, period time.Time) (int64, error)
}

// MemoryLedger is a [Ledger] in memory, for one process; it forgets
// periods older than the current one of each partner.
type MemoryLedger struct {
	mu sync.Mutex
	m  map[string]ledgerEntry
}

type ledgerEntry struct {
	period time.Time
	used   int64
}

// Spend implements [Ledger].
func (l *MemoryLedger) Spend(_ context.Context, partner string, period time.Time, n, limit int64) (int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]ledgerEntry{}
	}
	e := l.m[partner]
	if !e.period.Equal(period) {
		if period.Before(e.period) {
			return 0, false, fmt.Errorf("ledger: period %v is before the current one %v", period, e.period)
		}
		e = ledgerEntry{period: period}
	}
	if n < 0 || e.used+n > limit {
		l.m[partner] = e
		return e.used, false, nil
	}
	e.used += n
	l.m[partner] = e
	return e.used, true, nil
}

// Used implements [Ledger].
func (l *MemoryLedger) Used(_ context.Context, partner string, period time.Time) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[partner]; ok && e.period.Equal(period) {
		return e.used, nil
	}
	return 0, nil
}

// Validate checks a budget as ParseBudget would have made it: a limit
// from 1 to 2^40 and a period of a minute or more.
func (b Budget) Validate() error {
	if b.Limit < 1 || b.Limit > maxBudget {
		return fmt.Errorf("blind budget: limit %d out of range 1-%d", b.Limit, int64(maxBudget))
	}
	if b.Period < time.Minute {
		return fmt.Errorf("blind budget: period %v is shorter than a minute", b.Period)
	}
	return nil
}

// MarshalText writes the budget as [Budget.String] does ("100000/day").
func (b Budget) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads a budget with [ParseBudget].
func (b *Budget) UnmarshalText(text []byte) error {
	v, err := ParseBudget(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// PeriodOf returns the start of the budget period that t falls in
// (periods are aligned on the Unix epoch) and the start of the next.
func (b Budget) PeriodOf(t time.Time) (start, next time.Time) { return b.periodOf(t) }
