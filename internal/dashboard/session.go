package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one signed-in browser. Sessions live in memory: they end
// when the node restarts, and each replica behind a load balancer has
// its own (sticky sessions are then needed).
type session struct {
	// key is the API key the analyst signed in with, kept (in memory
	// only) so that every request re-authenticates it: a key revoked
	// ends its sessions within the node's key cache TTL.
	key     string
	keyID   string
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions holds the sessions by the SHA-256 of their token, so that
// the map's keys are not the secrets themselves.
type sessions struct {
	mu     sync.Mutex
	byHash map[[32]byte]*session
	idle   time.Duration
	life   time.Duration
	now    func() time.Time
}

// maxSessions bounds the sessions in memory; the oldest are dropped.
const maxSessions = 10000

func newSessions(idle, life time.Duration, now func() time.Time) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, idle: idle, life: life, now: now}
}

// token returns 32 random bytes, base64url.
func token() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create opens a session for key and returns its token.
func (s *sessions) create(key, keyID string) (string, *session) {
	tok := token()
	now := s.now()
	ss := &session{key: key, keyID: keyID, csrf: token(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byHash) >= maxSessions {
		s.expireLocked(now)
		for len(s.byHash) >= maxSessions {
			var oldest [32]byte
			var at time.Time
			for h, o := range s.byHash {
				if at.IsZero() || o.seen.Before(at) {
					oldest, at = h, o.seen
				}
			}
			delete(s.byHash, oldest)
		}
	}
	s.byHash[sha256.Sum256([]byte(tok))] = ss
	return tok, ss
}

// get returns the live session of tok and marks it used.
func (s *sessions) get(tok string) (*session, bool) {
	if tok == "" {
		return nil, false
	}
	h := sha256.Sum256([]byte(tok))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byHash[h]
	if !ok {
		return nil, false
	}
	if now.Sub(ss.seen) > s.idle || now.Sub(ss.created) > s.life {
		delete(s.byHash, h)
		return nil, false
	}
	ss.seen = now
	return ss, true
}

// end deletes the session of tok.
func (s *sessions) end(tok string) {
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	delete(s.byHash, h)
	s.mu.Unlock()
}

func (s *sessions) expireLocked(now time.Time) {
	for h, ss := range s.byHash {
		if now.Sub(ss.seen) > s.idle || now.Sub(ss.created) > s.life {
			delete(s.byHash, h)
		}
	}
}

// csrfOK compares a presented CSRF token with the session's in
// constant time.
func (ss *session) csrfOK(presented string) bool {
	return presented != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(ss.csrf)) == 1
}
