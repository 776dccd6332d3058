package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blindaccess"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store"
)

// settingBlindSecret is the setting that holds the node's blind-access
// secret (base64), when the configuration gives none: every replica
// sharing the store derives the same keys from it. It is a secret: never
// log it.
const settingBlindSecret = "blind.secret"

// blindAccess returns the node's blind access (internal/blindaccess),
// made the first time it is needed, with the secret of the configuration
// or of the store, and its background worker started.
func (s *Service) blindAccess(ctx context.Context) (*blindaccess.Service, error) {
	if b := s.blind.Load(); b != nil {
		return b, nil
	}
	s.blindMu.Lock()
	defer s.blindMu.Unlock()
	if b := s.blind.Load(); b != nil {
		return b, nil
	}
	secret := s.cfg.BlindSecret
	if secret == nil {
		var err error
		if secret, err = s.blindSecret(ctx); err != nil {
			return nil, err
		}
	}
	cfg := blindaccess.Config{Gate: s.gate, Secret: secret, Epochs: s.cfg.BlindEpochs, Now: s.cfg.Now, Logger: s.log,
		Guard: s.cfg.Safety.Guard(safety.OutputSnapshot)}
	if bs, ok := s.st.(store.BlindStore); ok {
		cfg.Ledger, cfg.Replay = blindLedger{bs}, blindReplay{bs}
	}
	b, err := blindaccess.New(cfg)
	if err != nil {
		return nil, err
	}
	s.prop.mu.Lock()
	if !s.prop.closed {
		s.prop.bg.Go(func() { b.Run(s.prop.ctx) })
	}
	s.prop.mu.Unlock()
	s.blind.Store(b)
	return b, nil
}

// blindSecret returns the secret kept in the store, generating it the
// first time. Of replicas generating it at once, the one written last
// wins, and each reads back what was written.
func (s *Service) blindSecret(ctx context.Context) ([]byte, error) {
	read := func() ([]byte, error) {
		b, err := s.st.Setting(ctx, settingBlindSecret)
		if err != nil {
			return nil, err
		}
		secret, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil || len(secret) < blind.MinSecretLen {
			return nil, fmt.Errorf("setting %s does not hold a blind-access secret of %d bytes or more", settingBlindSecret, blind.MinSecretLen)
		}
		return secret, nil
	}
	secret, err := read()
	if err == nil || entente.ErrorCode(err) != entente.ENOTFOUND {
		return secret, err
	}
	secret = make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate the blind-access secret: %w", err)
	}
	if err := s.st.PutSetting(ctx, settingBlindSecret, []byte(base64.StdEncoding.EncodeToString(secret))); err != nil {
		return nil, fmt.Errorf("store the blind-access secret: %w", err)
	}
	s.log.InfoContext(ctx, "blind-access secret generated")
	return read()
}

// blindChanged tells blind access, when it runs, that indicators of
// collection changed, or with "" that the terms did.
func (s *Service) blindChanged(collection string) {
	if b := s.blind.Load(); b != nil {
		b.Changed(collection)
	}
}

// BlindGrant returns the blind budget of partner principal p (EFORBIDDEN
// when its agreement grants it no blind access now).
func (s *Service) BlindGrant(ctx context.Context, p entente.Principal) (blind.Budget, error) {
	b, err := s.blindAccess(ctx)
	if err != nil {
		return blind.Budget{}, err
	}
	return b.Grant(ctx, p)
}

// BlindMaxBatch returns the largest evaluation batch.
func (s *Service) BlindMaxBatch() int { return blind.DefaultMaxBatch }

// granted returns blind access and partner principal p's budget, which
// the gate reads from the agreement in force at each request: a change
// of the agreement takes effect on the next one.
func (s *Service) granted(ctx context.Context, p entente.Principal) (*blindaccess.Service, blind.Budget, error) {
	b, err := s.blindAccess(ctx)
	if err != nil {
		return nil, blind.Budget{}, err
	}
	budget, err := b.Grant(ctx, p)
	return b, budget, err
}

// BlindInfo returns partner principal p's current epoch (see
// [blindaccess.Service.Info]).
func (s *Service) BlindInfo(ctx context.Context, p entente.Principal) (*blind.EpochInfo, error) {
	b, budget, err := s.granted(ctx, p)
	if err != nil {
		return nil, err
	}
	return b.Info(ctx, p, budget)
}

// BlindSet returns partner principal p's blinded set (see
// [blindaccess.Service.Set]).
func (s *Service) BlindSet(ctx context.Context, p entente.Principal, epoch uint64, ifNoneMatch string) (*blind.Published, bool, error) {
	b, _, err := s.granted(ctx, p)
	if err != nil {
		return nil, false, err
	}
	return b.Set(ctx, p, epoch, ifNoneMatch)
}

// BlindEvaluate evaluates a batch for partner principal p (see
// [blindaccess.Service.Evaluate]).
func (s *Service) BlindEvaluate(ctx context.Context, p entente.Principal, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	b, budget, err := s.granted(ctx, p)
	if err != nil {
		return nil, err
	}
	return b.Evaluate(ctx, p, budget, req)
}

// BlindResolve resolves blinded references for partner principal p (see
// [blindaccess.Service.Resolve]).
func (s *Service) BlindResolve(ctx context.Context, p entente.Principal, refs []blind.Ref) (*blind.ResolveResponse, error) {
	b, _, err := s.granted(ctx, p)
	if err != nil {
		return nil, err
	}
	return b.Resolve(ctx, p, refs)
}

// BlindPartner is a partner with blind access and its budget's use, for
// the node's people.
type BlindPartner struct {
	Partner     string       `json:"partner"`
	Name        string       `json:"name,omitempty"`
	Collections []string     `json:"collections"`
	Budget      blind.Budget `json:"budget"`
	// Used is the evaluations of the current period, which ends at Reset.
	Used  int64     `json:"used"`
	Reset time.Time `json:"reset"`
	// Set describes its blinded set, once this replica rendered it.
	Set *blindaccess.SetStatus `json:"set,omitempty"`
}

// BlindPartners lists the partners whose agreement grants blind access,
// with their budget's use (admins and analysts).
func (s *Service) BlindPartners(ctx context.Context, p entente.Principal) ([]BlindPartner, error) {
	ags, err := s.gate.Agreements(ctx, p)
	if err != nil {
		return nil, err
	}
	b, err := s.blindAccess(ctx)
	if err != nil {
		return nil, err
	}
	out := []BlindPartner{}
	for _, a := range ags {
		if a.Blind == nil {
			continue
		}
		bp := BlindPartner{Partner: a.Partner.ID, Name: a.Partner.Name, Collections: a.Blind.Collections, Budget: a.Blind.Budget}
		if bp.Used, bp.Reset, err = b.Usage(ctx, a.Partner.ID, a.Blind.Budget); err != nil {
			return nil, err
		}
		if st, ok := b.Status(a.Partner.ID); ok {
			bp.Set = &st
		}
		out = append(out, bp)
	}
	return out, nil
}

// blindLedger is the store's blind ledger as blind.Ledger.
type blindLedger struct{ bs store.BlindStore }

func (l blindLedger) Spend(ctx context.Context, partner string, period time.Time, n, limit int64) (int64, bool, error) {
	return l.bs.SpendBlind(ctx, partner, period, n, limit)
}

func (l blindLedger) Used(ctx context.Context, partner string, period time.Time) (int64, error) {
	return l.bs.BlindUsed(ctx, partner, period)
}

// blindReplay is the store's replay guard as blind.ReplayGuard.
type blindReplay struct{ bs store.BlindStore }

func (r blindReplay) Seen(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	return r.bs.SeenBlindBatch(ctx, partner, epoch, digest)
}

func (r blindReplay) Add(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	return r.bs.AddBlindBatch(ctx, partner, epoch, digest)
}

// BlindKeys returns blind access's key schedule (admin only): to pin a
// key (blind.Keys.Pin) imported from elsewhere or of test vectors.
func (s *Service) BlindKeys(ctx context.Context, p entente.Principal) (*blind.Keys, error) {
	if err := requireAdmin(p, "managing blind-access keys"); err != nil {
		return nil, err
	}
	b, err := s.blindAccess(ctx)
	if err != nil {
		return nil, err
	}
	return b.Server().Keys(), nil
}

// BlindPeer returns the blind access that peer id (or the peer of that
// name) grants this node (admin only): the partner node's protocol,
// reached with the key that node issued to this one, which is never
// shown. ENOTFOUND if there is no such peer.
func (s *Service) BlindPeer(ctx context.Context, p entente.Principal, id string) (blind.Peer, error) {
	if err := requireAdmin(p, "matching against a peer's blinded set"); err != nil {
		return nil, err
	}
	if s.cfg.DialBlind == nil {
		return nil, fmt.Errorf("this node has no way to reach peers' blind access (no DialBlind configured)")
	}
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	peers, err := ps.Peers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	for _, pr := range peers {
		if pr.ID == id || pr.Name == id {
			return s.cfg.DialBlind(pr), nil
		}
	}
	return nil, entente.Errorf(entente.ENOTFOUND, "there is no peer %q (entente peer list)", id)
}
