package node_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"pgregory.net/rapid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// gateSteps is how many steps TestGateModel runs in all (spread over
// rapid's checks): CI runs the default; more or fewer with -gate.steps
// or $ENTENTE_GATE_STEPS, and without bound under -fuzz (FuzzGateModel).
var gateSteps = flag.Int("gate.steps", 100000, "steps of the gate's model-based test, over all checks")

// The model: a small, independent statement of the sharing rules, which
// the node's gate must follow after any sequence of changes.

// Collections of the model node: intel and ops are open to partners
// (AMBER and GREEN by default), vault is not (CLEAR by default).
var modelColls = []struct {
	alias   string
	def     stix.TLP
	partner bool
}{{"intel", stix.TLPAmber, true}, {"ops", stix.TLPGreen, true}, {"vault", stix.TLPClear, false}}

// mVersion is one version of a model object.
type mVersion struct {
	modified string
	tlp      stix.TLP
	marked   bool // carries a TLP marking; else the collection's default
	upper    bool // its marking id spelled with upper-case hex
	granular bool // its description carries a granular marking
	granTLP  stix.TLP
	addSeq   int // order of addition
}

// mObject is a model indicator: one address, in one collection.
type mObject struct {
	n        int
	id, ip   string
	coll     int
	versions []mVersion
}

func (o *mObject) latest() mVersion { return o.versions[len(o.versions)-1] }

// mAgreement is the model of an agreement.
type mAgreement struct {
	colls       []int
	types       []string // empty: every type
	max         stix.TLP
	from, until time.Time
	strip       bool
}

// gateModel is the node under test and its model.
type gateModel struct {
	s      *node.Service
	clk    *clock
	colls  []entente.Collection
	objs   []*mObject
	a      *mAgreement
	secret string // the partner's key
	keyID  string
	addSeq int

	auditAfter int64 // sequence of the last egress record checked
	// The push peer: a node that takes what is pushed to it.
	peer      *node.Service
	inbox     string
	pushedCP  int             // the model's push checkpoint: the greatest addSeq received
	received  map[string]bool // id|modified received by the peer
	lastETags map[string]etagState
}

// etagState is an export's entity tag and what it held.
type etagState struct {
	etag string
	ips  []string
}

const modelPartner = "identity--5f4e3d2c-1b0a-4987-8654-3210fedcba98"

// inForce reports whether the model's agreement is in force now.
func (m *gateModel) inForce() bool {
	a := m.a
	return a != nil && !m.clk.now().Before(a.from) && (a.until.IsZero() || m.clk.now().Before(a.until))
}

// allowedAt says whether the partner may receive an object of collection
// c at TLP tlp, under the model's rules.
func (m *gateModel) allowedAt(c int, tlp stix.TLP) bool {
	if tlp >= stix.TLPRed || !modelColls[c].partner {
		return false
	}
	if !m.inForce() || !slices.Contains(m.a.colls, c) || len(m.a.types) > 0 && !slices.Contains(m.a.types, "indicator") {
		return tlp == stix.TLPClear // the node's own CLEAR objects go to anyone
	}
	return tlp <= m.a.max
}

func (m *gateModel) tlpOf(o *mObject, v mVersion) stix.TLP {
	if v.marked {
		return v.tlp
	}
	return modelColls[o.coll].def
}

func (m *gateModel) allowed(o *mObject, v mVersion) bool { return m.allowedAt(o.coll, m.tlpOf(o, v)) }

// describes says whether v is released with its description.
func (m *gateModel) describes(o *mObject, v mVersion) bool {
	if !m.allowed(o, v) || m.inForce() && m.a.strip {
		return false
	}
	return !v.granular || m.allowedAt(o.coll, max(m.tlpOf(o, v), v.granTLP))
}

// released are the latest versions of the objects the partner may
// receive, as "id|modified", in the partner-readable collections (c < 0:
// all of them).
func (m *gateModel) released(c int) []string {
	var out []string
	for _, o := range m.objs {
		if (c < 0 || o.coll == c) && m.allowed(o, o.latest()) {
			out = append(out, o.id+"|"+o.latest().modified)
		}
	}
	slices.Sort(out)
	return out
}

func (m *gateModel) releasedIPs() []string {
	var out []string
	for _, o := range m.objs {
		if m.allowed(o, o.latest()) {
			out = append(out, o.ip)
		}
	}
	slices.Sort(out)
	return out
}

// raw is the JSON of version v of o.
func (m *gateModel) raw(o *mObject, v mVersion) json.RawMessage {
	obj := map[string]any{"type": "indicator", "spec_version": "2.1", "id": o.id,
		"created": "2024-01-01T00:00:00.000Z", "modified": v.modified, "pattern": "[ipv4-addr:value = '" + o.ip + "']",
		"pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "description": "beacon seen from a victim's network"}
	if v.marked {
		ref := v.tlp.MarkingID()
		if v.upper {
			ref = upperID(ref)
		}
		obj["object_marking_refs"] = []string{ref}
	}
	if v.granular {
		obj["granular_markings"] = []map[string]any{{"selectors": []string{"description"}, "marking_ref": v.granTLP.MarkingID()}}
	}
	b, _ := json.Marshal(obj)
	return b
}

var modelTLPs = []stix.TLP{stix.TLPClear, stix.TLPGreen, stix.TLPAmber, stix.TLPAmberStrict, stix.TLPRed}

// newGateModel makes a node (its data on tmpfs where there is one: the
// test is about decisions, not disks) and its push peer.
func newGateModel(t *rapid.T, tb testing.TB) *gateModel {
	ctx := context.Background()
	dir, err := os.MkdirTemp(shmDir(), "gatemodel")
	if err != nil {
		tb.Fatal(err)
	}
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := node.New(st, node.Config{Org: org, Now: clk.now, KeyCacheTTL: -1, Dial: dial}, nil)
	m := &gateModel{s: s, clk: clk, received: map[string]bool{}, lastETags: map[string]etagState{}}
	peerDir, err := os.MkdirTemp(shmDir(), "gatemodel-peer")
	if err != nil {
		tb.Fatal(err)
	}
	pst, err := sqlite.Open(ctx, peerDir)
	if err != nil {
		tb.Fatal(err)
	}
	m.peer = node.New(pst, node.Config{Org: modelPartner}, nil)
	srv := httptest.NewServer(httpapi.New(m.peer, httpapi.Options{}, nil, prometheus.NewRegistry()))
	cleanup := func() {
		s.Close()
		m.peer.Close()
		srv.Close()
		st.Close()
		pst.Close()
		os.RemoveAll(dir)
		os.RemoveAll(peerDir)
	}
	t.Cleanup(cleanup)
	for _, c := range modelColls {
		read := []entente.Role{entente.RoleAnalyst}
		if c.partner {
			read = append(read, entente.RolePartner)
		}
		col, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: c.alias, Title: c.alias, DefaultMarking: c.def.MarkingID(),
			ReadRoles: read, WriteRoles: []entente.Role{entente.RoleAnalyst}})
		if err != nil {
			t.Fatal(err)
		}
		m.colls = append(m.colls, col)
	}
	if err := s.PutPartner(ctx, admin, policy.Party{ID: modelPartner, Name: "Partner", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	m.newKey(t)
	inbox, err := m.peer.CreateCollection(ctx, admin, entente.Collection{Alias: "inbox", Title: "Inbox",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	m.inbox = inbox.ID
	token, _, err := m.peer.CreateKey(ctx, admin, node.NewKey{Name: "from the node", Role: entente.RolePartner, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	// The peer pushes from intel; the gate decides what goes.
	if _, err := s.AddPeer(ctx, admin, node.Peer{ID: "peer", APIRoot: srv.URL + "/taxii2/api1/", Collection: inbox.ID,
		LocalCollection: "intel", Token: token, Org: modelPartner, Direction: node.DirectionPush}); err != nil {
		t.Fatal(err)
	}
	return m
}

// shmDir is a tmpfs directory when the machine has one.
func shmDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (m *gateModel) newKey(t *rapid.T) {
	secret, k, err := m.s.CreateKey(context.Background(), admin, node.NewKey{Name: "partner", Role: entente.RolePartner, Org: modelPartner})
	if err != nil {
		t.Fatal(err)
	}
	m.secret, m.keyID = secret, k.ID
}

// quiesce waits for the pushes the node started by itself (immediate
// pushes of what was just added) to end, so that each step is decided
// under the terms of that step.
func (m *gateModel) quiesce(t *rapid.T) {
	if err := m.s.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// partner authenticates the partner's key; ok is false once revoked.
func (m *gateModel) partner(t *rapid.T) (entente.Principal, bool) {
	p, err := m.s.Authenticate(context.Background(), m.secret)
	if err != nil {
		if entente.ErrorCode(err) != entente.EUNAUTHORIZED {
			t.Fatal(err)
		}
		return p, false
	}
	return p, true
}

// newEgress returns the egress records appended since the last call, as
// "id|modified" with their detail.
func (m *gateModel) newEgress(t *rapid.T) []audit.Record {
	var out []audit.Record
	next := ""
	if m.auditAfter > 0 {
		next = audit.Cursor(m.auditAfter)
	}
	for {
		page, err := m.s.QueryAudit(context.Background(), admin, node.AuditQuery{Action: node.AuditEgress, Next: next, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Records...)
		if len(page.Records) > 0 {
			m.auditAfter = page.Records[len(page.Records)-1].Seq
		}
		if page.Next == "" {
			return out
		}
		next = page.Next
	}
}

// audited checks that exactly the versions want (as "id|modified") were
// recorded since the last check, each once, under details starting with
// prefix.
func (m *gateModel) audited(t *rapid.T, what, prefix string, want []string) {
	var got []string
	for _, r := range m.newEgress(t) {
		if !strings.HasPrefix(r.Detail, prefix) || r.Partner != modelPartner {
			t.Fatalf("%s: unexpected egress record %+v", what, r)
		}
		got = append(got, r.ObjectID+"|"+stix.FormatTimestamp(r.Version))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("%s: audited %v, released %v", what, got, want)
	}
}

func entryKeys(page entente.Page) []string {
	var out []string
	for _, e := range page.Entries {
		out = append(out, e.ID+"|"+stix.FormatTimestamp(e.Version))
	}
	slices.Sort(out)
	return out
}

// pushed checks what the peer received since the last check: only what
// the model allows now, each version audited once; and, when complete,
// everything the model says a push must carry (what the partner may
// receive that was added after the push checkpoint).
func (m *gateModel) pushed(t *rapid.T, complete bool) {
	page, err := m.peer.Objects(context.Background(), admin, m.inbox, entente.ObjectQuery{Versions: entente.VersionFilter{All: true}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var fresh []string
	for _, k := range entryKeys(page) {
		if !m.received[k] {
			m.received[k] = true
			fresh = append(fresh, k)
		}
	}
	allowedNow := map[string]bool{}
	for _, o := range m.objs {
		if o.coll != 0 {
			continue
		}
		for _, v := range o.versions {
			if v.modified == o.latest().modified && m.allowed(o, v) {
				allowedNow[o.id+"|"+v.modified] = true
			}
		}
	}
	for _, k := range fresh {
		if !allowedNow[k] {
			t.Fatalf("push delivered %s, which the terms in force withhold", k)
		}
		for _, o := range m.objs {
			if strings.HasPrefix(k, o.id+"|") {
				for _, v := range o.versions {
					if o.id+"|"+v.modified == k {
						m.pushedCP = max(m.pushedCP, v.addSeq)
					}
				}
			}
		}
	}
	// Descriptions that arrived follow the model.
	for _, e := range page.Entries {
		k := e.ID + "|" + stix.FormatTimestamp(e.Version)
		if !slices.Contains(fresh, k) {
			continue
		}
		o := m.objByID(e.ID)
		if has := hasProperty(e.Raw, "description"); has != m.describes(o, o.latest()) {
			t.Fatalf("push of %s: description %v, the model says %v", k, has, !has)
		}
	}
	m.audited(t, "push", "push ", fresh)
	if !complete {
		return
	}
	for _, o := range m.objs {
		v := o.latest()
		if o.coll == 0 && v.addSeq > m.pushedCP && m.allowed(o, v) {
			t.Fatalf("push did not deliver %s|%s (added #%d after the checkpoint #%d), which the terms allow", o.id, v.modified, v.addSeq, m.pushedCP)
		}
	}
}

func (m *gateModel) objByID(id string) *mObject {
	for _, o := range m.objs {
		if o.id == id {
			return o
		}
	}
	return nil
}

// step draws and runs one step.
func (m *gateModel) step(t *rapid.T) {
	ctx := context.Background()
	actions := []string{"agreement.set", "agreement.delete", "key.rotate", "object.add", "object.revise", "clock",
		"read.objects", "read.manifest", "read.object", "read.versions", "read.export", "read.snapshot", "push", "preview"}
	action := rapid.SampledFrom(actions).Draw(t, "action")
	switch action {
	case "agreement.set":
		a := &mAgreement{max: rapid.SampledFrom(modelTLPs[:4]).Draw(t, "max"), strip: rapid.Bool().Draw(t, "strip")}
		for c := range modelColls {
			if rapid.Bool().Draw(t, "coll"+strconv.Itoa(c)) {
				a.colls = append(a.colls, c)
			}
		}
		if len(a.colls) == 0 {
			a.colls = []int{0}
		}
		switch rapid.IntRange(0, 3).Draw(t, "types") {
		case 1:
			a.types = []string{"indicator"}
		case 2:
			a.types = []string{"malware"}
		}
		now := m.clk.now()
		switch rapid.IntRange(0, 4).Draw(t, "validity") {
		case 1:
			a.until = now.Add(time.Duration(rapid.IntRange(1, 48).Draw(t, "until")) * time.Hour)
		case 2:
			a.from = now.Add(time.Duration(rapid.IntRange(1, 48).Draw(t, "from")) * time.Hour)
		case 3:
			a.from = now.Add(-48 * time.Hour)
			a.until = now.Add(-time.Hour)
		}
		pa := policy.Agreement{Partner: policy.Party{ID: modelPartner}, ObjectTypes: a.types, MaxTLP: a.max,
			ValidFrom: a.from, ValidUntil: a.until, Redact: policy.Redaction{StripFreeText: a.strip}}
		for _, c := range a.colls {
			pa.Collections = append(pa.Collections, modelColls[c].alias)
		}
		if _, err := m.s.PutAgreement(ctx, admin, pa); err != nil {
			t.Fatal(err)
		}
		m.a = a
		m.quiesce(t)
	case "agreement.delete":
		err := m.s.DeleteAgreement(ctx, admin, modelPartner)
		if m.a == nil {
			if entente.ErrorCode(err) != entente.ENOTFOUND {
				t.Fatalf("delete without agreement: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m.a = nil
	case "key.rotate":
		if err := m.s.RevokeKey(ctx, admin, m.keyID); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.partner(t); ok {
			t.Fatal("a revoked key still authenticates")
		}
		m.newKey(t)
	case "object.add", "object.revise":
		var o *mObject
		if len(m.objs) > 0 && rapid.Bool().Draw(t, "revise") {
			o = m.objs[rapid.IntRange(0, len(m.objs)-1).Draw(t, "which")]
		} else {
			n := len(m.objs) + 1
			o = &mObject{n: n, id: fmt.Sprintf("indicator--9c8b7a6d-5e4f-4a3b-8c2d-%012x", n), ip: fmt.Sprintf("45.%d.%d.9", n/200+1, n%200),
				coll: rapid.IntRange(0, len(modelColls)-1).Draw(t, "coll")}
			m.objs = append(m.objs, o)
		}
		m.addSeq++
		v := mVersion{modified: stix.FormatTimestamp(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(m.addSeq) * time.Second)), addSeq: m.addSeq}
		if v.marked = rapid.Bool().Draw(t, "marked"); v.marked {
			v.tlp = rapid.SampledFrom(modelTLPs).Draw(t, "tlp")
			v.upper = rapid.Bool().Draw(t, "upper")
		}
		if v.granular = rapid.IntRange(0, 2).Draw(t, "granular") == 0; v.granular {
			v.granTLP = rapid.SampledFrom(modelTLPs).Draw(t, "granTLP")
		}
		st, err := m.s.AddObjects(ctx, admin, m.colls[o.coll].ID, []json.RawMessage{m.raw(o, v)})
		if err != nil || st.FailureCount > 0 {
			t.Fatalf("add %s: %v %+v", o.id, err, st)
		}
		o.versions = append(o.versions, v)
		m.quiesce(t)
		m.pushed(t, false)
	case "clock":
		m.clk.add(time.Duration(rapid.IntRange(1, 30).Draw(t, "hours")) * time.Hour)
	case "read.objects", "read.manifest":
		p, ok := m.partner(t)
		c := rapid.IntRange(0, len(modelColls)-1).Draw(t, "coll")
		f := entente.ObjectQuery{}
		var page entente.Page
		var err error
		if !ok {
			m.audited(t, "revoked key", "", nil)
			return
		}
		manifest := action == "read.manifest"
		if manifest {
			page, err = m.s.Manifest(ctx, p, modelColls[c].alias, f)
		} else {
			page, err = m.s.Objects(ctx, p, modelColls[c].alias, f)
		}
		if !modelColls[c].partner {
			if entente.ErrorCode(err) != entente.EFORBIDDEN {
				t.Fatalf("read of %s, closed to partners: %v", modelColls[c].alias, err)
			}
			m.audited(t, "refused read", "", nil)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got := entryKeys(page)
		if want := m.released(c); !slices.Equal(got, want) {
			t.Fatalf("read of %s released %v, the model allows %v (agreement %+v, now %v)", modelColls[c].alias, got, want, m.a, m.clk.now())
		}
		for _, e := range page.Entries {
			o := m.objByID(e.ID)
			if manifest {
				if e.Raw != nil {
					t.Fatalf("a manifest carried the object %s", e.ID)
				}
				continue
			}
			if has := hasProperty(e.Raw, "description"); has != m.describes(o, o.latest()) {
				t.Fatalf("read of %s: description %v, the model says %v (%s)", e.ID, has, !has, e.Raw)
			}
		}
		prefix := "objects "
		if manifest {
			prefix = "manifest "
		}
		m.audited(t, "read", prefix, got)
	case "read.object", "read.versions":
		if len(m.objs) == 0 {
			return
		}
		o := m.objs[rapid.IntRange(0, len(m.objs)-1).Draw(t, "which")]
		p, ok := m.partner(t)
		if !ok {
			return
		}
		versions := action == "read.versions"
		var page entente.Page
		var err error
		if versions {
			page, err = m.s.Versions(ctx, p, modelColls[o.coll].alias, o.id, entente.ObjectQuery{})
		} else {
			page, err = m.s.Object(ctx, p, modelColls[o.coll].alias, o.id, entente.ObjectQuery{})
		}
		var want []string
		if versions {
			for _, v := range o.versions {
				if m.allowed(o, v) {
					want = append(want, o.id+"|"+v.modified)
				}
			}
		} else if m.allowed(o, o.latest()) {
			want = []string{o.id + "|" + o.latest().modified}
		}
		slices.Sort(want)
		switch {
		case !modelColls[o.coll].partner:
			if entente.ErrorCode(err) != entente.EFORBIDDEN {
				t.Fatalf("read of %s in a collection closed to partners: %v", o.id, err)
			}
		case len(want) == 0:
			if entente.ErrorCode(err) != entente.ENOTFOUND {
				t.Fatalf("read of %s, which the terms withhold: %v %v", o.id, err, entryKeys(page))
			}
		default:
			if err != nil {
				t.Fatal(err)
			}
			if got := entryKeys(page); !slices.Equal(got, want) {
				t.Fatalf("read of %s released %v, the model allows %v", o.id, got, want)
			}
		}
		prefix := "objects "
		if versions {
			prefix = "manifest "
		}
		m.audited(t, "read of one object", prefix, want)
	case "read.export":
		p, ok := m.partner(t)
		if !ok {
			return
		}
		format := rapid.SampledFrom(export.Formats).Draw(t, "format")
		req := node.ExportRequest{Format: format, Options: export.Options{NoAggregate: true}}
		held, holds := m.lastETags[format]
		if holds && rapid.Bool().Draw(t, "conditional") {
			req.IfNoneMatch = held.etag
		}
		res, err := m.s.Export(ctx, p, req)
		if err != nil {
			t.Fatal(err)
		}
		want := m.releasedIPs()
		if format == export.FormatHosts {
			want = nil // a hosts file lists domain names only
		}
		if res.NotModified {
			if !slices.Equal(held.ips, want) {
				t.Fatalf("export %s answered not modified, but the partner's copy holds %v and the terms allow %v", format, held.ips, want)
			}
			m.audited(t, "export not modified", "", nil)
			return
		}
		body := string(res.Body())
		var got []string
		for _, o := range m.objs {
			if strings.Contains(body, "'"+o.ip+"'") || strings.Contains(body, o.ip+"\n") || strings.Contains(body, o.ip+"\t") ||
				strings.Contains(body, o.ip+",") || strings.Contains(body, o.ip+" ") || strings.Contains(body, o.ip+"\"") ||
				strings.Contains(body, o.ip+"/") || strings.Contains(body, reverseIP(o.ip)) {
				got = append(got, o.ip)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("export %s holds %v, the model allows %v", format, got, want)
		}
		m.lastETags[format] = etagState{etag: res.ETag, ips: want}
		m.audited(t, "export", "export "+format+" ", m.released(-1))
	case "read.snapshot":
		p, ok := m.partner(t)
		if !ok {
			return
		}
		snap, err := m.s.Snapshot(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		ips := map[string]string{}
		for _, o := range m.objs {
			ips[o.ip] = o.id
		}
		got := snapshotIPs(t, snap.Data, ips)
		if want := m.releasedIPs(); !slices.Equal(got, want) {
			t.Fatalf("the snapshot matches %v, the model allows %v", got, want)
		}
		m.audited(t, "snapshot", "snapshot ", m.released(-1))
	case "push":
		if _, err := m.s.SyncPeer(ctx, admin, "peer"); err != nil {
			t.Fatal(err)
		}
		m.quiesce(t)
		m.pushed(t, true)
	case "preview":
		page, err := m.s.PreviewAgreement(ctx, admin, modelPartner, node.PreviewRequest{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range page.Explanations {
			if e.Decision.Allow {
				o := m.objByID(e.Object.ID)
				got = append(got, e.Object.ID+"|"+o.latest().modified)
				v := o.latest()
				wantRemoved := v.granular && !m.allowedAt(o.coll, max(m.tlpOf(o, v), v.granTLP))
				if removed := len(e.Decision.Removed) > 0; removed != wantRemoved {
					t.Fatalf("preview of %s: description removed %v, the model says %v", e.Object.ID, removed, wantRemoved)
				}
			}
		}
		slices.Sort(got)
		if want := m.released(-1); !slices.Equal(got, want) {
			t.Fatalf("preview releases %v, the model allows %v", got, want)
		}
		m.audited(t, "preview", "", nil)
	}
}

// gateModelRun runs one check: a node, and steps drawn until n ran.
func gateModelRun(tb testing.TB, steps int, total *atomic.Int64) func(*rapid.T) {
	return func(t *rapid.T) {
		m := newGateModel(t, tb)
		for range steps {
			m.step(t)
			total.Add(1)
		}
	}
}

// TestGateModel drives a node through random sequences of agreement
// changes (set, narrowed, widened, deleted, not yet or no longer in
// force), partner key revocations, objects added and revised with object
// and granular markings (marking ids in both spellings), and reads by
// the partner on every egress path: TAXII objects, manifest, one object
// and its versions, every export format (conditional requests included),
// the sensor snapshot, pushes to the partner's node and previews. After
// each step what left is compared with a small model of the rules in
// force at that moment: nothing beyond it, nothing missing, and every
// version that left audited exactly once.
func TestGateModel(t *testing.T) {
	checks := 100
	if f := flag.Lookup("rapid.checks"); f != nil {
		checks, _ = strconv.Atoi(f.Value.String())
	}
	total := *gateSteps
	if v := os.Getenv("ENTENTE_GATE_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ENTENTE_GATE_STEPS=%q is not a number of steps", v)
		}
		total = n
	}
	steps := max(1, total/max(1, checks))
	var ran atomic.Int64
	rapid.Check(t, gateModelRun(t, steps, &ran))
	t.Logf("%d steps over %d checks", ran.Load(), checks)
}

// FuzzGateModel runs the model-based test under the fuzzer: go test
// -fuzz FuzzGateModel ./internal/node.
func FuzzGateModel(f *testing.F) {
	var total atomic.Int64
	f.Fuzz(rapid.MakeFuzz(gateModelRun(f, 200, &total)))
}

// hasProperty reports whether an object's JSON has a top-level property.
func hasProperty(raw []byte, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}
