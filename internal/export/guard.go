package export

import "github.com/entente-cti/entente/internal/observable"

// Guard decides what of each value may be exported: the node's safety
// net (internal/safety) is one. Admit reports whether value (normalised,
// of kind k) may be exported as it is and, when it may not, what of it
// may: the addresses and networks that remain of a network once the
// protected ranges inside it are cut out (canonical), or nothing.
type Guard interface {
	Admit(k observable.Kind, value string) (whole bool, parts []string)
}

// Guarded returns the items g lets through: an item it admits whole is
// kept; one it cuts becomes one item per remaining part, with the same
// metadata; one it suppresses or refuses is left out. It reuses items'
// backing array. A nil g keeps every item.
//
// Because the items that reach a renderer never cover protected space,
// neither does any aggregate of them: [Aggregate] only merges prefixes
// into blocks that cover exactly the same addresses.
func Guarded(items []Item, g Guard) []Item {
	if g == nil {
		return items
	}
	out := items[:0]
	var extra []Item
	for i := range items {
		it := items[i]
		whole, parts := g.Admit(it.Kind, it.Value)
		if whole {
			out = append(out, it)
			continue
		}
		for _, p := range parts {
			k, v, err := observable.NormalizeKind(it.Kind, p)
			if err != nil {
				continue
			}
			part := it
			part.Kind, part.Value = k, v
			extra = append(extra, part)
		}
	}
	return append(out, extra...)
}
