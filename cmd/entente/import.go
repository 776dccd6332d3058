package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/taxiiclient"
	"github.com/entente-cti/entente/internal/warninglist"
)

// multiFlag is a flag that may be given several times.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

func cmdImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "import", "import [--data DIR | --server URL --token KEY] [--format F] [flags] FILE|DIR...",
		"Import threat-intelligence feeds into a node: MISP events, MISP feeds (a directory\n"+
			"with manifest.json), CSV feeds (URLhaus, ThreatFox, Feodo Tracker, or any through\n"+
			"--columns) and plain lists of addresses, networks, domains, URLs and hashes.\n"+
			"The format is detected per file unless --format says it. The same observable from\n"+
			"several feeds becomes one indicator with every source; an indicator the collection\n"+
			"already holds gets the new sources as a new version. Prints a summary on stderr;\n"+
			"exits 1 if any record was rejected.")
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to import offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to import offline")
	format := fs.String("format", "auto", "auto, misp-event, misp-feed, csv, urlhaus, threatfox, feodo or plain")
	columns := fs.String("columns", "", "column mapping of a custom CSV feed: value=2,type=3,first_seen=1,tags=4,reference=5,confidence=6,header=true,comma=;")
	source := fs.String("source", "", "source name recorded on every indicator (default: the file's name)")
	tlp := fs.String("tlp", "", "TLP of indicators whose source names none (clear, green, amber, amber+strict, red)")
	confidence := fs.Int("confidence", 0, "confidence (0-100) of indicators whose source gives none")
	validFor := fs.Duration("valid-for", 0, "how long indicators stay valid (default: per observable type)")
	wlDir := fs.String("warninglists", "", "directory of MISP warninglists to flag indicators with")
	var geoFiles multiFlag
	fs.Var(&geoFiles, "geo", "geolocation: range CSV file, CIDR directory or .mmdb (repeatable)")
	coll := fs.String("collection", node.CollectionIntel, "collection id or alias to import into")
	lim := inputLimits(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("give at least one FILE or DIR to import")
	}
	opts, err := importOptions(*format, *columns, *source, *tlp, *confidence, *validFor)
	if err != nil {
		return err
	}
	opts.MaxSize = lim.MaxSize
	if *wlDir != "" {
		if opts.Warninglists, err = warninglist.LoadDir(*wlDir); err != nil {
			return fmt.Errorf("load warninglists: %w", err)
		}
	}
	if len(geoFiles) > 0 {
		loc, err := loadGeo(geoFiles)
		if err != nil {
			return err
		}
		opts.Geo = loc
	}

	// store stores what objs yields while it is still reading inputs.
	var store func(ctx context.Context, objs iter.Seq[[]feed.Object]) (node.ImportStats, error)
	switch {
	case cfg.Data != "" || cfg.Store != "":
		svc, st, err := openNode(ctx, cfg, quietLogger(env))
		if err != nil {
			return err
		}
		defer st.Close()
		id, err := svc.Identity(ctx)
		if err != nil {
			return err
		}
		admin := node.LocalAdmin(id.ID)
		store = func(ctx context.Context, objs iter.Seq[[]feed.Object]) (node.ImportStats, error) {
			return svc.ImportStream(ctx, admin, *coll, objs)
		}
	case remote.server != "":
		r, err := newRemoteImporter(ctx, remote)
		if err != nil {
			return err
		}
		store = func(ctx context.Context, objs iter.Seq[[]feed.Object]) (node.ImportStats, error) {
			var all []json.RawMessage
			for b := range objs {
				for _, o := range b {
					all = append(all, o.Raw)
				}
			}
			return r.store(ctx, *coll, all)
		}
	default:
		return usagef("give --server URL (or ENTENTE_SERVER) to import into a running node, or --data DIR to import offline")
	}

	start := time.Now()
	im := feed.NewImporter()
	var sum importSummary
	// The inputs are read while what they settled is stored: every
	// object but the indicators after each input, the indicators, with
	// the sources of every input merged, after the last, rendered a batch
	// at a time (each stored while the next is rendered, and none held
	// twice, as struct and as JSON, beyond its batch), each with the
	// envelope a store needs, so that it is not decoded and validated
	// again (feed.Object).
	objs := func(yield func([]feed.Object) bool) {
		stopped := false
		settled := func() {
			if !stopped {
				if objs := im.TakeSettledChecked(); len(objs) > 0 && !yield(objs) {
					stopped = true
				}
			}
		}
		// A large list is handed on as it is read, in pieces, so that
		// the store's writer, an import's critical path, starts on it
		// before it is read whole (the largest shared feed settled
		// ~200,000 objects after 1.8 s of reading, the writer idle).
		im.SettleEvery(node.ImportBatch/4, settled)
		for _, path := range fs.Args() {
			if stopped {
				return
			}
			if err := importPath(im, path, opts, &sum, settled); err != nil {
				sum.fileErrors = append(sum.fileErrors, err.Error())
			}
		}
		for !stopped {
			rest := im.TakeChecked(node.ImportBatch)
			if len(rest) == 0 || !yield(rest) {
				return
			}
		}
	}
	st, err := store(ctx, objs)
	sum.stats = st
	sum.print(env.Stderr, time.Since(start))
	if err != nil {
		return err
	}
	if n := len(sum.rejects) + len(st.Failures) + len(sum.fileErrors); n > 0 {
		return fmt.Errorf("%d records rejected, %d objects refused, %d inputs failed", len(sum.rejects), len(st.Failures), len(sum.fileErrors))
	}
	return nil
}

// importOptions builds feed options from the command's flags.
func importOptions(format, columns, source, tlp string, confidence int, validFor time.Duration) (feed.Options, error) {
	var o feed.Options
	switch format {
	case "urlhaus", "threatfox", "feodo":
		o.Format, o.CSV = feed.FormatCSV, format
	default:
		f, err := feed.ParseFormat(format)
		if err != nil {
			return o, usagef("--format: %v", err)
		}
		o.Format = f
	}
	if columns != "" {
		c, err := parseColumns(columns)
		if err != nil {
			return o, usagef("--columns: %v", err)
		}
		o.Format, o.CSV, o.Columns = feed.FormatCSV, "custom", c
	}
	o.Source = source
	if tlp != "" {
		t, err := stix.ParseTLP(tlp)
		if err != nil {
			return o, usagef("--tlp: %v", err)
		}
		o.TLP = &t
	}
	if confidence < 0 || confidence > 100 {
		return o, usagef("--confidence must be between 0 and 100")
	}
	o.Confidence = confidence
	if validFor < 0 {
		return o, usagef("--valid-for must not be negative")
	}
	if validFor > 0 {
		o.DefaultValidFor = map[observable.Kind]time.Duration{}
		for _, k := range []observable.Kind{observable.IPv4, observable.IPv6, observable.CIDR4, observable.CIDR6,
			observable.Domain, observable.URL, feed.URLPath, observable.Email, observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512} {
			o.DefaultValidFor[k] = validFor
		}
	}
	return o, nil
}

// parseColumns reads a column mapping "value=2,type=3,header=true".
func parseColumns(s string) (feed.Columns, error) {
	var c feed.Columns
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return c, fmt.Errorf("%q is not name=column", part)
		}
		switch strings.ToLower(k) {
		case "value":
			c.Value = v
		case "type", "kind":
			c.Kind = v
		case "first_seen", "first-seen":
			c.FirstSeen = v
		case "last_seen", "last-seen":
			c.LastSeen = v
		case "tags":
			c.Tags = v
		case "reference":
			c.Reference = v
		case "confidence":
			c.Confidence = v
		case "comma":
			r := []rune(v)
			if len(r) != 1 {
				return c, fmt.Errorf("comma=%q is not one character", v)
			}
			c.Comma = r[0]
		case "header":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("header=%q is not true or false", v)
			}
			c.Header = b
		case "fixed_kind", "fixed-kind":
			kd, err := observable.ParseKind(v)
			if err != nil {
				return c, err
			}
			c.FixedKind = kd
		default:
			return c, fmt.Errorf("unknown column name %q (want value, type, first_seen, last_seen, tags, reference, confidence, comma, header, fixed_kind)", k)
		}
	}
	if c.Value == "" {
		return c, fmt.Errorf("value=COLUMN is required")
	}
	return c, nil
}

// loadGeo loads geolocation data: .mmdb databases, directories of
// per-country CIDR files, or range CSV files (merged into one table).
// The first database found answers look-ups; CSV and CIDR data go into one
// table.
func loadGeo(paths []string) (geo.Locator, error) {
	var csvs []string
	var dirs []string
	var mmdb *geo.MMDB
	for _, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return nil, fmt.Errorf("geolocation data: %w", err)
		case fi.IsDir():
			dirs = append(dirs, p)
		case strings.HasSuffix(strings.ToLower(p), ".mmdb"):
			if mmdb != nil {
				return nil, fmt.Errorf("geolocation data: give at most one .mmdb database (%s)", p)
			}
			if mmdb, err = geo.OpenMMDB(p); err != nil {
				return nil, fmt.Errorf("geolocation data: %w", err)
			}
		default:
			csvs = append(csvs, p)
		}
	}
	if mmdb != nil {
		if len(csvs)+len(dirs) > 0 {
			return nil, fmt.Errorf("geolocation data: give either one .mmdb database or range files, not both")
		}
		return mmdb, nil
	}
	t := geo.NewTable()
	if len(csvs) > 0 {
		var err error
		if t, err = geo.LoadFiles(csvs...); err != nil {
			return nil, fmt.Errorf("geolocation data: %w", err)
		}
	}
	for _, d := range dirs {
		if err := t.LoadCIDRDir(d); err != nil {
			return nil, fmt.Errorf("geolocation data: %w", err)
		}
	}
	t.Freeze()
	return t, nil
}

// importSummary collects what an import did.
type importSummary struct {
	inputs     int
	records    int
	produced   int // indicators per input, summed
	dupes      int // duplicates within inputs
	rejects    []feed.Reject
	fileErrors []string
	stats      node.ImportStats
}

func (s *importSummary) add(r feed.Result) {
	s.inputs++
	s.records += r.Stats.Records
	s.produced += r.Stats.Indicators
	s.dupes += r.Stats.Duplicates
	s.rejects = append(s.rejects, r.Rejected...)
}

func (s *importSummary) print(w io.Writer, d time.Duration) {
	st := s.stats
	merged := s.dupes + s.produced - st.Indicators
	fmt.Fprintf(w, "imported %d inputs (%d records) in %.2fs: %d objects, %d indicators; stored %d, %d duplicates merged, %d merged into stored indicators, %d unchanged\n",
		s.inputs, s.records, d.Seconds(), st.Objects, st.Indicators, st.Stored, max(merged, 0), st.Merged, st.Unchanged)
	if st.Warninglisted > 0 {
		var parts []string
		for _, n := range node.SortedHits(st.WarninglistHits) {
			parts = append(parts, fmt.Sprintf("%s: %d", n, st.WarninglistHits[n]))
		}
		fmt.Fprintf(w, "warninglisted %d indicators (%s)\n", st.Warninglisted, strings.Join(parts, "; "))
	} else {
		fmt.Fprintf(w, "warninglisted 0 indicators\n")
	}
	fmt.Fprintf(w, "rejected %d records\n", len(s.rejects))
	const show = 50
	for i, r := range s.rejects {
		if i == show {
			fmt.Fprintf(w, "  … and %d more rejected records\n", len(s.rejects)-show)
			break
		}
		fmt.Fprintf(w, "  rejected %s: %s\n", r.Where, r.Reason)
	}
	for i, f := range st.Failures {
		if i == show {
			fmt.Fprintf(w, "  … and %d more refused objects\n", len(st.Failures)-show)
			break
		}
		fmt.Fprintf(w, "  refused %s: %s\n", f.ID, f.Message)
	}
	for _, e := range s.fileErrors {
		fmt.Fprintf(w, "  failed %s\n", e)
	}
}

// importPath imports a file, a MISP feed directory (one holding
// manifest.json) or every file below a directory, and calls settled after
// each input.
func importPath(im *feed.Importer, path string, opts feed.Options, sum *importSummary, settled func()) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		defer settled()
		return importFile(im, path, opts, sum)
	}
	return filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			sum.fileErrors = append(sum.fileErrors, err.Error())
			return nil
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "manifest.json")); err == nil {
				res, err := im.ImportMISPFeed(os.DirFS(p), p, withFormat(opts, feed.FormatAuto))
				if err != nil {
					sum.fileErrors = append(sum.fileErrors, err.Error())
				} else {
					sum.add(res)
				}
				settled()
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if err := importFile(im, p, opts, sum); err != nil {
			sum.fileErrors = append(sum.fileErrors, err.Error())
		}
		settled()
		return nil
	})
}

func withFormat(o feed.Options, f feed.Format) feed.Options {
	o.Format = f
	return o
}

func importFile(im *feed.Importer, path string, opts feed.Options, sum *importSummary) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if opts.Source == "" {
		opts.Source = filepath.Base(path)
	}
	res, err := im.Import(f, path, opts)
	if err != nil {
		return err
	}
	sum.add(res)
	return nil
}

// remoteImporter stores imported objects in a running node: it looks up
// stored versions over TAXII (match[id]) and pushes what changed.
type remoteImporter struct {
	c *taxiiclient.Client
}

func newRemoteImporter(ctx context.Context, remote remoteFlags) (*remoteImporter, error) {
	if remote.key() == "" {
		return nil, usagef("--token KEY (or ENTENTE_TOKEN) is required with --server")
	}
	hc, err := remote.httpClient(2 * time.Minute)
	if err != nil {
		return nil, err
	}
	c := &taxiiclient.Client{
		DiscoveryURL: strings.TrimRight(remote.server, "/") + "/taxii2/",
		Auth:         taxiiclient.Auth{Token: remote.key()},
		UserAgent:    "entente-import",
		HTTP:         hc,
	}
	d, err := c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", c.DiscoveryURL, err)
	}
	c.APIRoot = d.Default
	if c.APIRoot == "" && len(d.APIRoots) > 0 {
		c.APIRoot = d.APIRoots[0]
	}
	if c.APIRoot == "" {
		return nil, fmt.Errorf("%s names no API root", c.DiscoveryURL)
	}
	return &remoteImporter{c: c}, nil
}

func (r *remoteImporter) store(ctx context.Context, coll string, objs []json.RawMessage) (node.ImportStats, error) {
	var st node.ImportStats
	lookup := func(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
		return r.lookup(ctx, coll, ids)
	}
	for off := 0; off < len(objs); off += node.ImportBatch {
		batch := objs[off:min(off+node.ImportBatch, len(objs))]
		todo, err := node.PrepareImport(ctx, batch, time.Now(), lookup, &st)
		if err != nil {
			return st, err
		}
		if len(todo) == 0 {
			continue
		}
		res, err := r.c.Push(ctx, coll, todo)
		if err != nil {
			return st, err
		}
		st.Stored += res.Success
		for _, f := range res.Failures {
			st.Failures = append(st.Failures, taxii.StatusDetail{ID: f.ID, Version: f.Version, Message: f.Message})
		}
	}
	return st, nil
}

// lookup reads the latest stored versions of ids over TAXII.
func (r *remoteImporter) lookup(ctx context.Context, coll string, ids []string) (map[string]json.RawMessage, error) {
	out, err := r.c.Lookup(ctx, coll, ids)
	if err != nil {
		return nil, fmt.Errorf("look up stored objects: %w", err)
	}
	return out, nil
}
