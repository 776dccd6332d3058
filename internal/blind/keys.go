package blind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudflare/circl/oprf"
)

// Epochs divides time into epochs of one length, numbered from the Unix
// epoch. Each partner's key, and so its set, changes with the epoch.
type Epochs struct {
	// Length is the length of an epoch (a day, say).
	Length time.Duration
	// Grace is how long after an epoch ends evaluations for it are still
	// accepted, so that a partner in the middle of a translation can
	// finish it; zero accepts only the current epoch.
	Grace time.Duration
}

// DefaultEpochs are one-day epochs with ten minutes of grace.
var DefaultEpochs = Epochs{Length: 24 * time.Hour, Grace: 10 * time.Minute}

// Validate checks the lengths.
func (e Epochs) Validate() error {
	if e.Length < time.Minute {
		return fmt.Errorf("blind epochs: length %v is shorter than a minute", e.Length)
	}
	if e.Grace < 0 || e.Grace >= e.Length {
		return fmt.Errorf("blind epochs: grace %v must be at least 0 and shorter than the epoch (%v)", e.Grace, e.Length)
	}
	return nil
}

// At returns the epoch that t falls in.
func (e Epochs) At(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n / int64(e.Length))
}

// Start returns when epoch n starts.
func (e Epochs) Start(n uint64) time.Time { return time.Unix(0, int64(n)*int64(e.Length)).UTC() }

// Accepts reports whether evaluations for epoch n are accepted at t: n is
// the current epoch, or the previous one within the grace period.
func (e Epochs) Accepts(n uint64, t time.Time) bool {
	cur := e.At(t)
	return n == cur || n+1 == cur && t.Before(e.Start(cur).Add(e.Grace))
}

// MinSecretLen is the shortest node secret from which keys are derived.
const MinSecretLen = 32

// keyInfoLabel starts the info string of every derived key.
const keyInfoLabel = "entente blind v1"

// Keys derives the OPRF key of each partner and epoch from the node's
// secret (RFC 9497 DeriveKeyPair with the secret as seed and the partner
// and epoch as info), so that every replica of a node derives the same
// keys from its configuration and no key is stored. Keys of different
// partners or epochs are unrelated: a set is useless with evaluations
// under another partner's or another epoch's key.
type Keys struct {
	secret []byte
	mu     sync.Mutex
	cache  map[keyID]*oprf.PrivateKey
}

type keyID struct {
	partner string
	epoch   uint64
}

// maxCachedKeys bounds the key cache.
const maxCachedKeys = 4096

// NewKeys returns the key schedule of a node secret of at least
// MinSecretLen random bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("blind: the node secret has %d bytes, at least %d are needed", len(secret), MinSecretLen)
	}
	return &Keys{secret: append([]byte(nil), secret...), cache: map[keyID]*oprf.PrivateKey{}}, nil
}

// Key returns the key of partner for epoch.
func (k *Keys) Key(partner string, epoch uint64) (*oprf.PrivateKey, error) {
	if partner == "" {
		return nil, errors.New("blind: key for an empty partner name")
	}
	id := keyID{partner, epoch}
	k.mu.Lock()
	key, ok := k.cache[id]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	info := make([]byte, 0, len(keyInfoLabel)+len(partner)+10)
	info = append(info, keyInfoLabel...)
	info = append(info, 0)
	info = append(info, partner...)
	info = append(info, 0)
	info = binary.BigEndian.AppendUint64(info, epoch)
	key, err := oprf.DeriveKey(suite, oprf.BaseMode, k.secret, info)
	if err != nil {
		return nil, fmt.Errorf("blind: derive key of %s for epoch %d: %w", partner, epoch, err)
	}
	k.mu.Lock()
	if len(k.cache) >= maxCachedKeys {
		clear(k.cache)
	}
	k.cache[id] = key
	k.mu.Unlock()
	return key, nil
}

// Pin makes key the key of partner for epoch instead of the derived one:
// for test vectors, or to import a key kept elsewhere.
func (k *Keys) Pin(partner string, epoch uint64, key *oprf.PrivateKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cache[keyID{partner, epoch}] = key
}
