package export

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/google/uuid"
)

// mispType is the MISP attribute type and category of each kind.
var mispType = map[observable.Kind][2]string{
	observable.IPv4: {"ip-dst", "Network activity"}, observable.IPv6: {"ip-dst", "Network activity"},
	observable.CIDR4: {"ip-dst", "Network activity"}, observable.CIDR6: {"ip-dst", "Network activity"},
	observable.Domain: {"domain", "Network activity"}, observable.URL: {"url", "Network activity"},
	observable.Email: {"email-src", "Payload delivery"},
	observable.MD5:   {"md5", "Payload delivery"}, observable.SHA1: {"sha1", "Payload delivery"},
	observable.SHA256: {"sha256", "Payload delivery"}, observable.SHA512: {"sha512", "Payload delivery"},
}

type mispTagOut struct {
	Name       string `json:"name"`
	Colour     string `json:"colour,omitempty"`
	Exportable bool   `json:"exportable"`
}

type mispAttrOut struct {
	UUID      string       `json:"uuid"`
	Type      string       `json:"type"`
	Category  string       `json:"category"`
	Value     string       `json:"value"`
	ToIDS     bool         `json:"to_ids"`
	Timestamp string       `json:"timestamp"`
	Comment   string       `json:"comment"`
	Distrib   string       `json:"distribution"`
	Deleted   bool         `json:"deleted"`
	DisCorr   bool         `json:"disable_correlation"`
	Tag       []mispTagOut `json:"Tag,omitempty"`
}

type mispOrgOut struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// mispFeed renders a MISP feed: one event holding every item as an
// attribute (to_ids set), its manifest.json and hashes.csv, as MISP's
// "misp" feed type reads them.
func mispFeed(items []Item, o *Options) ([]File, error) {
	now := o.now()
	name := o.name()
	org := o.Org
	if org == "" {
		org = "Entente"
	}
	orgc := mispOrgOut{Name: org, UUID: uuid.NewSHA1(feed.IndicatorNamespace, []byte("org|"+org)).String()}
	evUUID := uuid.NewSHA1(feed.IndicatorNamespace, []byte("misp-feed|"+name)).String()
	ts := strconv.FormatInt(now.Unix(), 10)
	date := now.Format("2006-01-02")
	tlpTag := func(t string) mispTagOut {
		return mispTagOut{Name: strings.ToLower(strings.Replace(t, "TLP:", "tlp:", 1)), Exportable: true}
	}
	// The event's TLP is the most restrictive of its attributes'.
	evTLP := -1
	var attrs []mispAttrOut
	var hashes bytes.Buffer
	for _, it := range sortedItems(items, nil) {
		mt, ok := mispType[it.Kind]
		if !ok {
			continue
		}
		if int(it.TLP) > evTLP {
			evTLP = int(it.TLP)
		}
		id := it.IndicatorID
		if id == "" {
			id = feed.IndicatorID(it.Kind, it.Value)
		}
		au := uuid.NewSHA1(feed.IndicatorNamespace, []byte("misp-attribute|"+id+"|"+it.Value)).String()
		at := ts
		if !it.Modified.IsZero() {
			at = strconv.FormatInt(it.Modified.Unix(), 10)
		}
		attrs = append(attrs, mispAttrOut{UUID: au, Type: mt[0], Category: mt[1], Value: it.Value, ToIDS: true,
			Timestamp: at, Comment: strings.Join(it.Sources, ", "), Distrib: "5", Tag: []mispTagOut{tlpTag(it.TLP.String())}})
		sum := md5.Sum([]byte(it.Value))
		fmt.Fprintf(&hashes, "%s,%s\n", hex.EncodeToString(sum[:]), evUUID)
	}
	var evTags []mispTagOut
	if evTLP >= 0 {
		evTags = []mispTagOut{tlpTag(itemsTLPString(evTLP))}
	}
	event := map[string]any{"Event": map[string]any{
		"uuid": evUUID, "info": name, "date": date, "timestamp": ts, "publish_timestamp": ts, "published": true,
		"analysis": "2", "threat_level_id": "3", "distribution": "3", "Orgc": orgc, "Tag": evTags, "Attribute": attrs,
	}}
	evJSON, err := json.MarshalIndent(event, "", " ")
	if err != nil {
		return nil, fmt.Errorf("misp feed event: %w", err)
	}
	manifest := map[string]any{evUUID: map[string]any{
		"Orgc": orgc, "Tag": evTags, "info": name, "date": date, "analysis": 2, "threat_level_id": 3, "timestamp": now.Unix(),
	}}
	manJSON, err := json.MarshalIndent(manifest, "", " ")
	if err != nil {
		return nil, fmt.Errorf("misp feed manifest: %w", err)
	}
	return []File{
		{Name: "manifest.json", Data: append(manJSON, '\n')},
		{Name: evUUID + ".json", Data: append(evJSON, '\n')},
		{Name: "hashes.csv", Data: hashes.Bytes()},
	}, nil
}

func itemsTLPString(t int) string {
	return [...]string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}[t]
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
