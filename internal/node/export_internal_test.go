package node

// DropExportIndexes forgets every export index, for benchmarks that
// measure building one.
func (s *Service) DropExportIndexes() { s.exports.DropIndexes() }
