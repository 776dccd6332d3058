package federation

import "time"

// SetPeerStateEvery sets how long s's peer-state records may wait to be
// written together (see recordPeer).
func SetPeerStateEvery(s *Service, d time.Duration) {
	s.state.mu.Lock()
	s.state.every = d
	s.state.mu.Unlock()
}

// SetLazyPushDelay sets how long s's later pushes wait (see StoredLater).
func SetLazyPushDelay(s *Service, d time.Duration) {
	s.mu.Lock()
	s.laterDelay = d
	s.mu.Unlock()
}

// SetPeerCacheTTL sets how long s's immediate pushes use a peer record
// read before (see pushPeer).
func SetPeerCacheTTL(s *Service, d time.Duration) {
	s.mu.Lock()
	s.peerTTL = d
	s.mu.Unlock()
}
