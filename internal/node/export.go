package node

import (
	"context"
	"fmt"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/exports"
	"github.com/entente-cti/entente/internal/geo"
)

// ExportRequest asks for the indicators a principal may read rendered as
// a blocklist or rule set (see [exports.Request]).
type ExportRequest = exports.Request

// ExportResult is a rendered export (see [exports.Result]).
type ExportResult = exports.Result

// Export renders the indicators p may read, through the policy gate (see
// [exports.Service.Export]).
func (s *Service) Export(ctx context.Context, p entente.Principal, req ExportRequest) (*ExportResult, error) {
	return s.exports.Export(ctx, p, req)
}

// SetGeo gives the node geolocation data, used to locate IP indicators in
// exports (country filters), to build country blocklists and to locate
// feeds' values. nil removes it.
func (s *Service) SetGeo(l geo.Locator) {
	s.geoMu.Lock()
	s.geo = l
	s.geoMu.Unlock()
	s.exports.SetGeo(l)
}

func (s *Service) geoLocator() geo.Locator {
	s.geoMu.Lock()
	defer s.geoMu.Unlock()
	return s.geo
}

// ExportRenders returns how many exports the node has rendered (cache
// misses), for metrics and tests.
func (s *Service) ExportRenders() int64 { return s.exports.Renders() }

// ExportIndexItems returns how many items collection id's export index
// holds, and whether it exists.
func (s *Service) ExportIndexItems(id string) (int, bool) { return s.exports.IndexItems(id) }

// WarmExportIndexes builds the export index of every collection, so that
// the first export after a start costs what any other does. serve runs
// it in the background at start.
func (s *Service) WarmExportIndexes(ctx context.Context) error {
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return fmt.Errorf("warm export indexes: %w", err)
	}
	return s.exports.Warm(ctx, colls)
}
