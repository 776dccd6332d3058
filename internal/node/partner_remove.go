package node

import (
	"context"
	"fmt"

	"github.com/entente-cti/entente"
)

// RemovePartner forgets the partner organisation id (admin only). It is
// refused with ECONFLICT while an agreement with the partner exists: the
// agreement is ended first, on purpose. ENOTFOUND when no such partner is
// recorded. Both the removal and a refusal are audited.
func (s *Service) RemovePartner(ctx context.Context, p entente.Principal, id string) error {
	if err := requireAdmin(p, "managing partners"); err != nil {
		return err
	}
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	if _, err := ps.Party(ctx, id); err != nil {
		return err
	}
	switch _, err := ps.Agreement(ctx, id); {
	case err == nil:
		err = entente.Errorf(entente.ECONFLICT, "partner %s has an agreement: delete it first (agreement delete --partner %s)", id, id)
		return joinAudit(err, s.auditAdmin(ctx, p, "partner.remove", id, "", err))
	case entente.ErrorCode(err) != entente.ENOTFOUND:
		return fmt.Errorf("remove partner %s: %w", id, err)
	}
	if err := ps.DeleteParty(ctx, id); err != nil {
		return fmt.Errorf("remove partner %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "partner removed", "partner", id, "by", p.KeyID)
	return s.auditAdmin(ctx, p, "partner.remove", id, "", nil)
}
