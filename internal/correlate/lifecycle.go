package correlate

import (
	"time"

	"github.com/entente-cti/entente"
)

// Status is where an alert is in its lifecycle on one node.
type Status string

// The lifecycle states. An alert starts new, is acknowledged, then
// resolved; whenever its tier rises it becomes escalated, from which it is
// acknowledged or resolved again. It is withdrawn, from any state, when
// nothing that remains supports it (its evidence was retracted, or its
// sources quarantined); new evidence raises it again.
const (
	StatusNew          Status = "new"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
	StatusEscalated    Status = "escalated"
	StatusWithdrawn    Status = "withdrawn"
)

// Transition records one change of status: who made it, when and why.
type Transition struct {
	From Status    `json:"from"`
	To   Status    `json:"to"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
	// Tier is the alert's tier after the change.
	Tier string `json:"tier"`
	Note string `json:"note,omitempty"`
}

// Lifecycle is an alert's status on one node with its history. The zero
// value is not usable; start one with [NewLifecycle].
type Lifecycle struct {
	Status   Status       `json:"status"`
	Tier     string       `json:"tier"`
	TierRank int          `json:"tier_rank"`
	History  []Transition `json:"history"`
}

// NewLifecycle starts the lifecycle of a newly raised alert; by is who
// raised it (the node's own identity).
func NewLifecycle(a Alert, by string, at time.Time) *Lifecycle {
	l := &Lifecycle{Status: StatusNew, Tier: a.Tier, TierRank: a.TierRank}
	l.History = append(l.History, Transition{To: StatusNew, By: by, At: at.UTC(), Tier: a.Tier})
	return l
}

var allowed = map[Status][]Status{
	StatusNew:          {StatusAcknowledged, StatusResolved},
	StatusAcknowledged: {StatusResolved},
	StatusEscalated:    {StatusAcknowledged, StatusResolved},
	StatusResolved:     {},
	StatusWithdrawn:    {},
}

func (l *Lifecycle) move(to Status, by string, at time.Time, note string) error {
	if by == "" {
		return entente.Errorf(entente.EINVALID, "alert status change to %s: no principal named", to)
	}
	if at.IsZero() {
		return entente.Errorf(entente.EINVALID, "alert status change to %s: no time given", to)
	}
	if n := len(l.History); n > 0 && at.Before(l.History[n-1].At) {
		return entente.Errorf(entente.EINVALID, "alert status change to %s at %s is before the previous change at %s",
			to, fmtTime(at), fmtTime(l.History[n-1].At))
	}
	l.History = append(l.History, Transition{From: l.Status, To: to, By: by, At: at.UTC(), Tier: l.Tier, Note: note})
	l.Status = to
	return nil
}

// Acknowledge records that by has taken the alert in hand.
func (l *Lifecycle) Acknowledge(by string, at time.Time, note string) error {
	return l.transition(StatusAcknowledged, by, at, note)
}

// Resolve records that by has closed the alert.
func (l *Lifecycle) Resolve(by string, at time.Time, note string) error {
	return l.transition(StatusResolved, by, at, note)
}

func (l *Lifecycle) transition(to Status, by string, at time.Time, note string) error {
	for _, s := range allowed[l.Status] {
		if s == to {
			return l.move(to, by, at, note)
		}
	}
	return entente.Errorf(entente.ECONFLICT, "alert is %s; it cannot become %s", l.Status, to)
}

// Escalate records that the alert's tier rose to a's (from any status,
// a resolved alert included: the threat spread further). It is a conflict
// when a's tier is not above the current one.
func (l *Lifecycle) Escalate(a Alert, by string, at time.Time, note string) error {
	if a.TierRank <= l.TierRank {
		return entente.Errorf(entente.ECONFLICT, "alert tier %s is not above the current tier %s", a.Tier, l.Tier)
	}
	prevTier, prevRank := l.Tier, l.TierRank
	l.Tier, l.TierRank = a.Tier, a.TierRank
	if err := l.move(StatusEscalated, by, at, note); err != nil {
		l.Tier, l.TierRank = prevTier, prevRank
		return err
	}
	return nil
}

// Lower records that the alert's tier fell to a's, its evidence having
// been retracted in part (a's TierRank 0: no tier, see [Lifecycle.Withdraw]).
// The status is kept; a conflict when a's tier is not below the current
// one.
func (l *Lifecycle) Lower(a Alert, by string, at time.Time, note string) error {
	if a.TierRank >= l.TierRank {
		return entente.Errorf(entente.ECONFLICT, "alert tier %s is not below the current tier %s", a.Tier, l.Tier)
	}
	prevTier, prevRank := l.Tier, l.TierRank
	l.Tier, l.TierRank = a.Tier, a.TierRank
	if err := l.move(l.Status, by, at, note); err != nil {
		l.Tier, l.TierRank = prevTier, prevRank
		return err
	}
	return nil
}

// Withdraw records that nothing supports the alert any more: the node no
// longer acts on it. A conflict when it is already withdrawn.
func (l *Lifecycle) Withdraw(by string, at time.Time, note string) error {
	if l.Status == StatusWithdrawn {
		return entente.Errorf(entente.ECONFLICT, "alert is already withdrawn")
	}
	return l.move(StatusWithdrawn, by, at, note)
}

// Reraise records that new evidence raised a withdrawn alert again, at
// a's tier: it is new again. A conflict unless it is withdrawn.
func (l *Lifecycle) Reraise(a Alert, by string, at time.Time, note string) error {
	if l.Status != StatusWithdrawn {
		return entente.Errorf(entente.ECONFLICT, "alert is %s, not withdrawn", l.Status)
	}
	l.Tier, l.TierRank = a.Tier, a.TierRank
	return l.move(StatusNew, by, at, note)
}
