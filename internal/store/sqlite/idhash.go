package sqlite

import (
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"
)

// idHash returns the 64-bit FNV-1a hash of an object id, the key of the
// objects_id_hash index. Queries by id name the id too, so a collision
// costs a row read, never a wrong answer.
func idHash(id string) int64 { return hashID(id) }

// hashID is FNV-1a, a variable so that tests can make every id collide.
var hashID = fnv1a

func fnv1a(id string) int64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return int64(h)
}

// The migration that adds the id_hash column computes it in SQL.
func init() {
	err := sqlite.RegisterDeterministicScalarFunction("entente_id_hash", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return idHash(v), nil
		case []byte:
			return idHash(string(v)), nil
		default:
			return nil, fmt.Errorf("entente_id_hash: want a text id, got %T", v)
		}
	})
	if err != nil {
		panic(fmt.Sprintf("register entente_id_hash: %v", err))
	}
}
