// Package deps pins, for the duration of the first build-out, the modules
// the node is planned to use, so that parallel work does not race on
// go.mod. It is removed once every module is imported by real code.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/gaissmai/bart"
	_ "github.com/goccy/go-json"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/uuid"
	_ "github.com/gowebpki/jcs"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/maxmind/mmdbwriter"
	_ "github.com/oschwald/maxminddb-golang/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/schollz/progressbar/v3"
	_ "go4.org/netipx"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)
