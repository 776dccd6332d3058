package store

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

func obj(id string, version int64) *stix.Object {
	o := &stix.Object{Type: "indicator", ID: id, SpecVersion: "2.1", Raw: json.RawMessage(`{}`)}
	if version != 0 {
		o.Modified = FromUnixNano(version)
	}
	return o
}

// summary is a readable form of a plan: what is inserted with which
// flags, and which stored entries lose a flag.
type summary struct {
	Inserts     []string
	Duplicates  []int
	ClearLatest []int64
	ClearFirst  []int64
}

func summarize(p AddPlan) summary {
	var s summary
	for _, e := range p.Inserts {
		flags := ""
		if e.Latest {
			flags += "L"
		}
		if e.First {
			flags += "F"
		}
		s.Inserts = append(s.Inserts, fmt.Sprintf("%s@%d%s", e.Obj.ID, e.Version, flags))
	}
	for i, o := range p.Outcomes {
		if o.Duplicate {
			s.Duplicates = append(s.Duplicates, i)
		}
	}
	s.ClearLatest, s.ClearFirst = p.ClearLatest, p.ClearFirst
	return s
}

func TestPlanAdd(t *testing.T) {
	const now = 1000
	cases := []struct {
		name     string
		existing []Existing
		objs     []*stix.Object
		want     summary
	}{
		{"new objects", nil, []*stix.Object{obj("a", 10), obj("b", 20)},
			summary{Inserts: []string{"a@10LF", "b@20LF"}}},
		{"no version uses date_added", nil, []*stix.Object{obj("a", 0)},
			summary{Inserts: []string{"a@1000LF"}}},
		{"duplicate of stored", []Existing{{ID: "a", Version: 10, Seq: 1, Latest: true, First: true}},
			[]*stix.Object{obj("a", 10)}, summary{Duplicates: []int{0}}},
		{"newer version moves latest", []Existing{{ID: "a", Version: 10, Seq: 1, Latest: true, First: true}},
			[]*stix.Object{obj("a", 20)}, summary{Inserts: []string{"a@20L"}, ClearLatest: []int64{1}}},
		{"older version moves first", []Existing{{ID: "a", Version: 10, Seq: 1, Latest: true, First: true}},
			[]*stix.Object{obj("a", 5)}, summary{Inserts: []string{"a@5F"}, ClearFirst: []int64{1}}},
		{"middle version moves nothing", []Existing{
			{ID: "a", Version: 10, Seq: 1, First: true}, {ID: "a", Version: 30, Seq: 2, Latest: true}},
			[]*stix.Object{obj("a", 20)}, summary{Inserts: []string{"a@20"}}},
		{"versions within one call", nil, []*stix.Object{obj("a", 20), obj("a", 30), obj("a", 10), obj("a", 30)},
			summary{Inserts: []string{"a@20", "a@30L", "a@10F"}, Duplicates: []int{3}}},
		{"within one call after stored", []Existing{{ID: "a", Version: 10, Seq: 7, Latest: true, First: true}},
			[]*stix.Object{obj("a", 20), obj("a", 30), obj("a", 5)},
			summary{Inserts: []string{"a@20", "a@30L", "a@5F"}, ClearLatest: []int64{7}, ClearFirst: []int64{7}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanAdd(tc.objs, now, tc.existing)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, summarize(p)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			for i, o := range p.Outcomes {
				if o.ID != tc.objs[i].ID {
					t.Errorf("outcome %d is for %s, want %s", i, o.ID, tc.objs[i].ID)
				}
			}
		})
	}
}

func TestPlanAddInvalid(t *testing.T) {
	far := obj("a", 1)
	far.Modified = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, objs := range map[string][]*stix.Object{
		"nil":          {nil},
		"no id":        {{Type: "indicator"}},
		"no type":      {{ID: "x"}},
		"out of range": {far},
	} {
		if _, err := PlanAdd(objs, 1, nil); entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
}
