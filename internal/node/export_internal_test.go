package node

// DropExportIndexes forgets every export index, for benchmarks that
// measure building one.
func (s *Service) DropExportIndexes() { s.exports.DropIndexes() }

// RefsOf returns what alerting's reference index holds of id now,
// without bringing it up to date first (as a view would).
func (s *Service) RefsOf(id string) []Edge { return s.alerting.Refs().Of(id) }
