package pattern

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Observation is one observed-data object with the cyber-observable
// objects it reports resolved, ready for matching.
type Observation struct {
	// ID is the observed-data id ("" for STIX 2.0 objects without one).
	ID string
	// FirstObserved and LastObserved bound when the observation was made.
	FirstObserved, LastObserved time.Time
	// NumberObserved is how many times it was made (at least 1).
	NumberObserved int
	// Objects are the observed objects as decoded JSON (numbers as
	// json.Number), in the order object_refs (2.1) or the sorted keys of
	// objects (2.0) give them.
	Objects []map[string]any
	// refs resolves references: object id (2.1) or objects key (2.0) to
	// the object.
	refs map[string]map[string]any
}

// ReadObservations builds observations from JSON holding STIX objects: a
// bundle, an array of bundles and objects, or a single observed-data
// object. Every observed-data object found becomes an Observation; STIX
// 2.1 object_refs are resolved against all the objects given (across
// bundles), and STIX 2.0 observed-data use their embedded "objects".
func ReadObservations(data []byte) ([]Observation, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("decode observations: %w", err)
	}
	var objs []map[string]any
	var collect func(v any, where string) error
	collect = func(v any, where string) error {
		switch v := v.(type) {
		case []any:
			for i, x := range v {
				if err := collect(x, fmt.Sprintf("%s[%d]", where, i)); err != nil {
					return err
				}
			}
		case map[string]any:
			if v["type"] == "bundle" {
				list, _ := v["objects"].([]any)
				return collect(list, where+".objects")
			}
			objs = append(objs, v)
		default:
			return fmt.Errorf("decode observations: %s is not a STIX object", where)
		}
		return nil
	}
	if err := collect(top, "input"); err != nil {
		return nil, err
	}
	byID := map[string]map[string]any{}
	for _, o := range objs {
		if id, ok := o["id"].(string); ok {
			byID[id] = o
		}
	}
	var out []Observation
	for i, o := range objs {
		if o["type"] != "observed-data" {
			continue
		}
		obs, err := observationOf(o, byID)
		if err != nil {
			id, _ := o["id"].(string)
			if id == "" {
				id = fmt.Sprintf("object %d", i)
			}
			return nil, fmt.Errorf("observed-data %s: %w", id, err)
		}
		out = append(out, obs)
	}
	return out, nil
}

func observationOf(o map[string]any, byID map[string]map[string]any) (Observation, error) {
	var obs Observation
	obs.ID, _ = o["id"].(string)
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"first_observed", &obs.FirstObserved}, {"last_observed", &obs.LastObserved}} {
		s, ok := o[f.name].(string)
		if !ok {
			return obs, fmt.Errorf("property %s is missing or not a string", f.name)
		}
		t, err := parseDataTimestamp(s)
		if err != nil {
			return obs, fmt.Errorf("property %s: %w", f.name, err)
		}
		*f.dst = t
	}
	if obs.LastObserved.Before(obs.FirstObserved) {
		return obs, fmt.Errorf("last_observed is before first_observed")
	}
	n, ok := o["number_observed"].(json.Number)
	count, err := n.Int64()
	if !ok || err != nil || count < 1 || count > 1<<31-1 {
		return obs, fmt.Errorf("property number_observed must be an integer from 1 to 2147483647, not %v", o["number_observed"])
	}
	obs.NumberObserved = int(count)
	obs.refs = map[string]map[string]any{}
	if refs, ok := o["object_refs"].([]any); ok {
		for _, r := range refs {
			id, _ := r.(string)
			if target, ok := byID[id]; ok {
				obs.Objects = append(obs.Objects, target)
				obs.refs[id] = target
			}
		}
		return obs, nil
	}
	embedded, ok := o["objects"].(map[string]any)
	if !ok {
		return obs, fmt.Errorf("neither object_refs (2.1) nor objects (2.0) is present")
	}
	keys := make([]string, 0, len(embedded))
	for k := range embedded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sco, ok := embedded[k].(map[string]any)
		if !ok {
			return obs, fmt.Errorf("objects[%q] is not an object", k)
		}
		obs.Objects = append(obs.Objects, sco)
		obs.refs[k] = sco
	}
	return obs, nil
}

// parseDataTimestamp parses a timestamp from observed data: the STIX form
// with upper-case T and Z.
func parseDataTimestamp(s string) (time.Time, error) {
	if msg := checkTimestamp(s); msg != "" {
		return time.Time{}, fmt.Errorf("%q is not a STIX timestamp: %s", s, msg)
	}
	if strings.ContainsAny(s, "tz") {
		return time.Time{}, fmt.Errorf("%q is not a STIX timestamp", s)
	}
	return timestampValue(s), nil
}

// NewObservation returns an observation of objects made at t (once),
// such as the cyber-observable objects a sensor builds from one log
// record. Each object is decoded JSON (numbers as json.Number) with a
// "type"; references (*_ref, *_refs) name other objects by their "id".
func NewObservation(id string, t time.Time, objects []map[string]any) Observation {
	obs := Observation{ID: id, FirstObserved: t, LastObserved: t, NumberObserved: 1, Objects: objects,
		refs: make(map[string]map[string]any, len(objects))}
	for _, o := range objects {
		if oid, ok := o["id"].(string); ok {
			obs.refs[oid] = o
		}
	}
	return obs
}
