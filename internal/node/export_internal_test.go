package node

import "github.com/entente-cti/entente/internal/export"

// DropExportIndexes forgets every export index, for benchmarks that
// measure building one.
func (s *Service) DropExportIndexes() { s.dropExportIndexes() }

// ExportIndexItems returns how many items collection id's export index
// holds, and whether it exists.
func (s *Service) ExportIndexItems(id string) (int, bool) {
	x := &s.extras.index
	x.mu.Lock()
	ci := x.byCol[id]
	x.mu.Unlock()
	if ci == nil {
		return 0, false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	items, _ := ci.appendItems(nil, func(*export.Item) bool { return true })
	return len(items), true
}
