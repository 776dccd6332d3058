package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/nodekey"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// Collections the drill adds to the default ones.
const (
	// collReports, on a national CERT: sightings its constituents push
	// and its own sensors post; shared with the other CERTs.
	collReports = "reports"
	// collFederation, on a national CERT: sightings the other CERTs
	// push (not passed on).
	collFederation = "federation"
	// collAdvisories, on a constituent: alerts its CERT pushes.
	collAdvisories = "advisories"
)

// agreementTerms is what the drill agreed between two nodes, kept apart
// from the nodes so that the audit check does not trust what it checks.
type agreementTerms struct {
	collections []string // aliases
	types       []string
	maxTLP      stix.TLP
	reshare     bool
	redact      bool
}

// fedNode is one running node of the drill.
type fedNode struct {
	org  *Org
	dir  string
	st   *recStore
	svc  *node.Service
	srv  *http.Server
	url  string
	stop context.CancelFunc
	done sync.WaitGroup
	// colls maps the node's collection aliases to ids.
	colls map[string]string
	// sensorKey posts sightings (role sensor).
	sensorKey string
	// keys[j] is the partner key this node issued to organisation j.
	keys map[int]string
	// up is false while the node is stopped (fault mode).
	up bool
	// adminKey is the node's admin key (the drill reads a running
	// process's peers and alerts with it).
	adminKey string
	// Processes mode: the node's TLS key fingerprint, its process, the
	// address it listens on (the proxy's links dial it), an HTTP client
	// that pins its key, its clock skew and where its logs go.
	pin  string
	proc *nodeProc
	addr atomic.Value // string
	hc   *http.Client
	skew time.Duration
	// safety is the node's safety net: the federation's shared one with
	// the node's constituency.
	safety *safety.Net
	// tmpfs is the mount point of the node's data directory when it was
	// moved onto a small tmpfs (the full-disk fault).
	tmpfs bool
}

// address returns where the node listens ("" before its first start).
func (n *fedNode) address() string {
	a, _ := n.addr.Load().(string)
	return a
}

// recStore is a node's SQLite store that reports when alert objects
// become durable, which is when an alert is present at the node.
type recStore struct {
	*sqlite.Store
	node int
	rec  *recorder
}

// AddObjects adds objects and records the alerts among them.
func (r *recStore) AddObjects(ctx context.Context, coll string, objs []*stix.Object) ([]entente.AddOutcome, error) {
	out, err := r.Store.AddObjects(ctx, coll, objs)
	if err == nil {
		r.rec.stored(r.node, objs)
	}
	return out, err
}

// AddReceived adds received objects (with their provenance, in one
// commit) and records the alerts among them.
func (r *recStore) AddReceived(ctx context.Context, rc store.Received) ([]entente.AddOutcome, error) {
	out, err := r.Store.AddReceived(ctx, rc)
	if err == nil {
		r.rec.stored(r.node, rc.Objects)
	}
	return out, err
}

// AddOwn adds the node's own objects (correlation's alerts, with their
// lifecycles, in one commit) and records the alerts among them.
func (r *recStore) AddOwn(ctx context.Context, o store.Own) ([]entente.AddOutcome, error) {
	out, err := r.Store.AddOwn(ctx, o)
	if err == nil {
		r.rec.stored(r.node, o.Objects)
	}
	return out, err
}

// Submit submits objects and records the alerts among them once durable.
func (r *recStore) Submit(ctx context.Context, sub store.Submission) error {
	done := sub.Done
	objs := sub.Objects
	sub.Done = func(out []entente.AddOutcome, err error) {
		if err == nil {
			r.rec.stored(r.node, objs)
		}
		if done != nil {
			done(out, err)
		}
	}
	return r.Store.Submit(ctx, sub)
}

// recorder keeps, per node and alert, when each tier was first present,
// when the alert was first withdrawn, and when watched objects and their
// retractions arrived.
type recorder struct {
	mu    sync.Mutex
	ranks map[string]int // tier name → rank
	// at[node][alert][rank-1] is when the node first held the alert at
	// that tier or higher.
	at []map[string][]time.Time
	// threat maps an alert to its threat_ref.
	threat map[string]string
	// gone[node][alert] is when the node first stored the alert
	// withdrawn or revoked.
	gone []map[string]time.Time
	// watch lists the objects whose arrival (seen) and retraction (an
	// opinion naming them: retracted) are recorded per node.
	watch     map[string]bool
	seen      []map[string]time.Time
	retracted []map[string]time.Time
	// quarantineOp[node] is when the node first stored a retraction made
	// by a quarantine (an opinion with a quarantine ref).
	quarantineOp []time.Time
}

func newRecorder(nodes int, tiers []string) *recorder {
	r := &recorder{ranks: map[string]int{}, at: make([]map[string][]time.Time, nodes), threat: map[string]string{},
		gone: make([]map[string]time.Time, nodes), watch: map[string]bool{},
		seen: make([]map[string]time.Time, nodes), retracted: make([]map[string]time.Time, nodes), quarantineOp: make([]time.Time, nodes)}
	for i, t := range tiers {
		r.ranks[t] = i + 1
	}
	for i := range r.at {
		r.at[i], r.gone[i], r.seen[i], r.retracted[i] = map[string][]time.Time{}, map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	}
	return r
}

func (r *recorder) stored(n int, objs []*stix.Object) { r.storedAt(n, objs, time.Now()) }

// watchObject records, from now on, when each node stores object id and
// a retraction of it.
func (r *recorder) watchObject(id string) {
	r.mu.Lock()
	r.watch[id] = true
	r.mu.Unlock()
}

// storedAt records that node n held objs from now (at; the earliest
// time seen for an alert and tier is kept).
func (r *recorder) storedAt(n int, objs []*stix.Object, now time.Time) {
	for _, o := range objs {
		if o.Type == "opinion" {
			r.opinion(n, o, now)
			continue
		}
		if o.Type != correlate.AlertType {
			r.mu.Lock()
			if r.watch[o.ID] && r.seen[n][o.ID].IsZero() {
				r.seen[n][o.ID] = now
			}
			r.mu.Unlock()
			continue
		}
		var a struct {
			Tier      string `json:"tier"`
			Threat    string `json:"threat_ref"`
			Revoked   bool   `json:"revoked"`
			Withdrawn bool   `json:"withdrawn"`
		}
		if json.Unmarshal(o.Raw, &a) != nil {
			continue
		}
		r.mu.Lock()
		if a.Threat != "" {
			r.threat[o.ID] = a.Threat
		}
		if a.Revoked || a.Withdrawn {
			if r.gone[n][o.ID].IsZero() {
				r.gone[n][o.ID] = now
			}
			r.mu.Unlock()
			continue
		}
		rank := r.ranks[a.Tier]
		at := r.at[n][o.ID]
		if at == nil {
			at = make([]time.Time, len(r.ranks))
			r.at[n][o.ID] = at
		}
		for k := 0; k < rank; k++ {
			if at[k].IsZero() || now.Before(at[k]) {
				at[k] = now
			}
		}
		r.mu.Unlock()
	}
}

// opinion records the retractions of watched objects an opinion makes.
func (r *recorder) opinion(n int, o *stix.Object, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.watch) == 0 {
		return
	}
	var op struct {
		Opinion    string   `json:"opinion"`
		Refs       []string `json:"object_refs"`
		Revoked    bool     `json:"revoked"`
		Quarantine string   `json:"x_entente_quarantine_ref"`
	}
	if json.Unmarshal(o.Raw, &op) != nil || op.Revoked || op.Opinion != "strongly-disagree" {
		return
	}
	if op.Quarantine != "" && r.quarantineOp[n].IsZero() {
		r.quarantineOp[n] = now
	}
	for _, ref := range op.Refs {
		if r.watch[ref] && r.retracted[n][ref].IsZero() {
			r.retracted[n][ref] = now
		}
	}
}

// seenFrom records that node n stored watched object id at at (read
// from its store after the drill, in processes mode), unless an earlier
// time is known.
func (r *recorder) seenFrom(n int, id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watch[id] && (r.seen[n][id].IsZero() || at.Before(r.seen[n][id])) {
		r.seen[n][id] = at
	}
}

// seenAt returns when node n first stored watched object id (zero if it
// did not).
func (r *recorder) seenAt(n int, id string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[n][id]
}

// withdrawnAt returns when node n first stored alert withdrawn (zero if
// it did not).
func (r *recorder) withdrawnAt(n int, alert string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone[n][alert]
}

// held returns when node n first held alert at rank or higher (zero if
// it does not).
func (r *recorder) held(n int, alert string, rank int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at := r.at[n][alert]; len(at) >= rank {
		return at[rank-1]
	}
	return time.Time{}
}

// federation is the drill's running nodes.
type federation struct {
	w       *world
	nodes   []*fedNode
	rec     *recorder
	alerts  correlate.Config
	log     *slog.Logger
	http    *http.Client
	limits  taxiiclient.Limits
	syncInt time.Duration
	// safety is the net every node's is derived from (registries and
	// warninglists, shared); each node adds its constituency.
	safety *safety.Net
	// quota is the sightings per window a CERT lets each constituent add
	// (its partner trust).
	quota int
	// adv is the adversaries' plan (nil without adversaries);
	// quarantinedAt and markedAt when the midway quarantine and false
	// positive were made.
	adv                     *adversaries
	quarantinedAt, markedAt time.Time
	terms                   map[[2]int]agreementTerms // [from, to]
	// progress counts the steps of each phase.
	progress *progress
	// Processes mode: every node is an 'entente serve' process (bin),
	// reached by its peers through the WAN proxy over TLS with its key
	// pinned; links are the proxy's links by [from, to]; peakFiles is
	// the most descriptors the drill's process was seen holding.
	procs     bool
	bin       string
	proxy     wanProxy
	peakFiles atomic.Int64
	loss      float64
	links     map[[2]int]string // [from, to] → link address
	linkMu    sync.Mutex
	logDir    string
	plan      *faultPlan
	// mu guards the nodes' up state and acked during the replay.
	mu    sync.Mutex
	acked []ackedSighting
}

// open opens (creating on first use) node i's store and service, and
// serves it on 127.0.0.1.
func (f *federation) open(ctx context.Context, i int) error {
	if err := f.openStore(ctx, i); err != nil {
		return err
	}
	n := f.nodes[i]
	st := n.st.Store
	// A reopened node listens where it did: its peers know it there.
	addr := "127.0.0.1:0"
	if n.url != "" {
		addr = strings.TrimPrefix(n.url, "http://")
	}
	ln, err := net.Listen("tcp", addr)
	for try := 0; err != nil && addr != "127.0.0.1:0" && try < 50; try++ {
		time.Sleep(100 * time.Millisecond)
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		st.Close()
		return fmt.Errorf("node %d: listen: %w", i, err)
	}
	n.url = "http://" + ln.Addr().String()
	n.srv = httpapi.NewServer(ln.Addr().String(), httpapi.New(n.svc, httpapi.Options{}, f.log, nil))
	n.srv.ErrorLog = nil
	go n.srv.Serve(ln) //nolint:errcheck // ends with Close
	n.up = true
	return nil
}

// openStore opens node i's store and service, without serving them
// (processes mode sets nodes up, and checks them after the drill, this
// way).
func (f *federation) openStore(ctx context.Context, i int) error {
	n := f.nodes[i]
	st, err := sqlite.Open(ctx, n.dir)
	if err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	n.st = &recStore{Store: st, node: i, rec: f.rec}
	n.svc = node.New(n.st, node.Config{Title: n.org.Name, Org: n.org.ID, Dial: taxiiclient.Dialer(f.http, f.limits), Safety: n.safety}, f.log)
	if err := n.svc.EnableAlerts(f.alerts); err != nil {
		st.Close()
		return err
	}
	if err := n.svc.ProtectPartners(ctx); err != nil {
		st.Close()
		return err
	}
	return nil
}

// closeStore closes what openStore opened.
func (f *federation) closeStore(i int) error {
	n := f.nodes[i]
	n.svc.Close()
	return n.st.Close()
}

// start runs the node's background work: peer sync (which, after a
// restart, pulls and pushes what was missed first) and the correlation
// scan.
func (f *federation) start(i int) {
	n := f.nodes[i]
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.done.Add(2)
	go func() {
		defer n.done.Done()
		n.svc.RunPeerSync(ctx, f.syncInt)
	}()
	go func() { defer n.done.Done(); n.svc.RunAlerts(ctx, 30*time.Second) }()
}

// close stops node i: its server, background work, service and store.
func (f *federation) close(i int) error {
	n := f.nodes[i]
	if !n.up {
		return nil
	}
	n.up = false
	err := n.srv.Close()
	if n.stop != nil {
		n.stop()
		n.done.Wait()
	}
	n.svc.Close()
	return errors.Join(err, n.st.Close())
}

// setup creates every node and wires the federation:
//
//   - every organisation's sensors report sightings to its own node; a
//     constituent's node pushes them (its own, TLP:GREEN) to its
//     national CERT, into the CERT's reports collection;
//   - each national CERT pushes its reports (its constituents' sightings
//     and its own) to every other national CERT, reduced to the
//     victims' country by the gate (re-sharing GREEN is allowed);
//   - each CERT correlates everything it receives (the alert ids
//     converge) and pushes its alerts to its constituents, which also
//     pull them (a restarted node catches up by its checkpointed pull).
func (f *federation) setup(ctx context.Context, dir string, parallel int) error {
	w := f.w
	f.nodes = make([]*fedNode, len(w.orgs))
	intel := w.intel()
	f.progress.start(PhaseSetup, 3*len(w.orgs))
	// Each pass counts one step per node.
	each := func(fn func(i int) error) error {
		return forEach(len(w.orgs), parallel, func(i int) error {
			err := fn(i)
			if err == nil {
				f.progress.add(1)
			}
			return err
		})
	}
	// Pass 1: create and initialise the nodes.
	err := each(func(i int) error {
		o := w.orgs[i]
		n := &fedNode{org: o, dir: filepath.Join(dir, fmt.Sprintf("node-%03d-%s", i, o.Country)), keys: map[int]string{}, colls: map[string]string{}}
		f.nodes[i] = n
		var err error
		if n.safety, err = f.safety.WithConstituency(constituency(w, i)); err != nil {
			return fmt.Errorf("node %d: safety net: %w", i, err)
		}
		st, err := sqlite.Open(ctx, n.dir)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		svc := node.New(st, node.Config{Title: o.Name}, f.log)
		// The service first: its background work (the relationship
		// index warmed after the import) ends before the store closes.
		closeNode := func() error { svc.Close(); return st.Close() }
		id, adminKey, err := svc.Init(ctx, o.Name, o.Country, "")
		if err != nil {
			closeNode()
			return fmt.Errorf("init node %d: %w", i, err)
		}
		n.adminKey = adminKey
		if f.procs {
			pair, err := nodekey.Ensure(n.dir, o.Name)
			if err != nil {
				closeNode()
				return err
			}
			n.pin = pair.Fingerprint
		}
		o.ID = id.ID
		admin := node.LocalAdmin(id.ID)
		var extra []entente.Collection
		green := stix.TLPGreen.MarkingID()
		if o.CERT {
			extra = []entente.Collection{
				{Alias: collReports, Title: "Reports", Description: "Sightings of this CERT's constituents and sensors.", DefaultMarking: green,
					ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner}},
				{Alias: collFederation, Title: "Federation", Description: "Sightings other national CERTs share.", DefaultMarking: green,
					ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}},
			}
		} else {
			extra = []entente.Collection{{Alias: collAdvisories, Title: "Advisories", Description: "Alerts of the national CERT.", DefaultMarking: green,
				ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RoleSensor}, WriteRoles: []entente.Role{entente.RolePartner}}}
		}
		for _, c := range extra {
			if _, err := svc.CreateCollection(ctx, admin, c); err != nil {
				closeNode()
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		cs, err := svc.AllCollections(ctx, admin)
		if err != nil {
			closeNode()
			return err
		}
		for _, c := range cs {
			n.colls[c.Alias] = c.ID
		}
		if st, err := svc.AddObjects(ctx, admin, node.CollectionIntel, intel); err != nil || st.FailureCount > 0 {
			closeNode()
			return fmt.Errorf("node %d: load threat intelligence: %v %+v", i, err, st)
		}
		if n.sensorKey, _, err = svc.CreateKey(ctx, admin, node.NewKey{Name: "sensor", Role: entente.RoleSensor}); err != nil {
			closeNode()
			return err
		}
		return closeNode()
	})
	if err != nil {
		return err
	}
	// Pass 2: partners, keys and agreements, on each node.
	green := stix.TLPGreen
	// Sightings, the indicators they are of, and retractions travel up
	// and across; alerts (and anything indicated with them) down.
	up := agreementTerms{collections: []string{node.CollectionSightings}, types: []string{"sighting", "indicator", "relationship", "location", "opinion"}, maxTLP: green}
	across := agreementTerms{collections: []string{collReports}, types: []string{"sighting", "location", "indicator", "relationship", "opinion"}, maxTLP: green, reshare: true, redact: true}
	down := agreementTerms{collections: []string{node.CollectionAlerts}, types: []string{correlate.AlertType, "extension-definition", "identity", "indicator", "opinion"}, maxTLP: green}
	f.terms = map[[2]int]agreementTerms{}
	for _, o := range w.orgs {
		if o.CERT {
			for _, c := range w.orgs {
				switch {
				case c.Parent == o.Index && !c.CERT:
					f.terms[[2]int{o.Index, c.Index}] = down
				case c.CERT && c.Index != o.Index:
					f.terms[[2]int{o.Index, c.Index}] = across
				}
			}
		} else {
			f.terms[[2]int{o.Index, o.Parent}] = up
		}
	}
	partners := func(i int) []int {
		o := w.orgs[i]
		if !o.CERT {
			return []int{o.Parent}
		}
		var out []int
		for _, c := range w.orgs {
			if c.Index != i && (c.CERT || c.Parent == i) {
				out = append(out, c.Index)
			}
		}
		return out
	}
	err = each(func(i int) error {
		open := f.open
		if f.procs {
			open = f.openStore
		}
		if err := open(ctx, i); err != nil {
			return err
		}
		n := f.nodes[i]
		admin := node.LocalAdmin(n.org.ID)
		for _, j := range partners(i) {
			p := w.orgs[j]
			// Each partner declares its constituency: no member of the
			// federation acts on another's networks.
			var declared []string
			for _, e := range constituency(w, j) {
				declared = append(declared, e.Value)
			}
			if err := n.svc.PutPartner(ctx, admin, policy.Party{ID: p.ID, Name: p.Name, Country: p.Country, Constituency: declared}); err != nil {
				return err
			}
			if n.org.CERT && !p.CERT && f.quota > 0 {
				// A CERT bounds what each constituent may add per window.
				if _, err := n.svc.SetPartnerTrust(ctx, admin, p.ID, nil, &f.quota); err != nil {
					return fmt.Errorf("node %d: trust of %d: %w", i, j, err)
				}
			}
			secret, _, err := n.svc.CreateKey(ctx, admin, node.NewKey{Name: p.Name, Role: entente.RolePartner, Org: p.ID})
			if err != nil {
				return err
			}
			n.keys[j] = secret
			t, ok := f.terms[[2]int{i, j}]
			if !ok {
				continue
			}
			a := policy.Agreement{Partner: policy.Party{ID: p.ID}, ObjectTypes: t.types, MaxTLP: t.maxTLP, AllowReshare: t.reshare,
				Redact: policy.Redaction{SightingVictimsToCountry: t.redact}}
			for _, c := range t.collections {
				a.Collections = append(a.Collections, n.colls[c])
			}
			if _, err := n.svc.PutAgreement(ctx, admin, a); err != nil {
				return fmt.Errorf("node %d: agreement with %d: %w", i, j, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Pass 3: peers (they need the partners' keys and collection ids).
	return each(func(i int) error {
		n := f.nodes[i]
		admin := node.LocalAdmin(n.org.ID)
		add := func(id string, j int, remote, local, dir string) error {
			p := f.nodes[j]
			root, err := f.peerRoot(i, j)
			if err != nil {
				return err
			}
			_, err = n.svc.AddPeer(ctx, admin, node.Peer{ID: id, Name: p.org.Name, APIRoot: root, Collection: remote,
				LocalCollection: local, Token: p.keys[i], Org: p.org.ID, Direction: dir, Pin: p.pin})
			return err
		}
		if !n.org.CERT {
			cert := f.nodes[n.org.Parent]
			if err := add("cert-push", n.org.Parent, cert.colls[collReports], node.CollectionSightings, node.DirectionPush); err != nil {
				return err
			}
			return add("cert-pull", n.org.Parent, cert.colls[node.CollectionAlerts], collAdvisories, node.DirectionPull)
		}
		for _, j := range partners(i) {
			p := f.nodes[j]
			var err error
			if p.org.CERT {
				err = add(fmt.Sprintf("cert-%03d", j), j, p.colls[collFederation], collReports, node.DirectionPush)
			} else {
				err = add(fmt.Sprintf("org-%03d", j), j, p.colls[collAdvisories], node.CollectionAlerts, node.DirectionPush)
			}
			if err != nil {
				return fmt.Errorf("node %d: peer %d: %w", i, j, err)
			}
		}
		return nil
	})
}

// forEach runs f(0..n-1) on parallel goroutines and returns the first
// error.
func forEach(n, parallel int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range max(1, parallel) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// constituency is organisation i's constituency, as its configuration
// declares it: its own network, and for a national CERT its
// constituents' networks too.
func constituency(w *world, i int) []safety.Entry {
	o := w.orgs[i]
	out := []safety.Entry{{Value: o.Network.String(), Where: "drill constituency"}}
	if o.CERT {
		for _, j := range w.byCountry[o.Country] {
			if j != i {
				out = append(out, safety.Entry{Value: w.orgs[j].Network.String(), Where: "drill constituency (" + w.orgs[j].Name + ")"})
			}
		}
	}
	return out
}
