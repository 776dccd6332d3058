package blind

import (
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/sensor"
)

// snapMatcher answers membership questions with a match snapshot.
type snapMatcher struct{ m *match.Matcher }

func matcherOf(s *match.Snapshot) snapMatcher { return snapMatcher{match.NewMatcher(s)} }

func (s snapMatcher) ip(v string) bool {
	return len(s.m.Match(sensor.Obs{Kind: sensor.ObsIP, Value: []byte(v)}, nil)) > 0
}

func (s snapMatcher) domain(v string) bool {
	return len(s.m.Match(sensor.Obs{Kind: sensor.ObsDomain, Value: []byte(v)}, nil)) > 0
}
