package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// medallion locates a figure of the OASIS reference server in
// BASELINES.md's TAXII table, at N = 10,000.
func medallion(measure string, index int, scale float64) BaselineRef {
	return BaselineRef{Where: map[string]string{"measure": measure}, Col: "N = 10,000", Index: index, Scale: scale}
}

// taxiiWorkload posts 10,000 indicators to a fresh node with the shared
// taxii-load tool (envelopes of 100, until every status is complete), reads
// the collection fully paged three ways, and measures latency with 8
// clients: the workload the OASIS reference server was measured with.
func taxiiWorkload(ctx context.Context, e *Env) error {
	tl, err := e.Tool(ctx, "taxiiload")
	if err != nil {
		return err
	}
	const n = 10000
	samples := Pick(e, 2, 3)
	dur := Pick(e, "5s", "10s")
	peers := map[string]BaselineRef{
		"taxii.post.complete":          medallion("POST, objects/s (until status complete)", 0, 1),
		"taxii.read.all":               medallion("full paged read, objects/s", 0, 1),
		"taxii.read.all.first-page":    medallion("full paged read, objects/s", 1, 1000),
		"taxii.read.type":              medallion("read with match[type], objects/s", 0, 1),
		"taxii.read.added-after":       medallion("read with added_after, objects/s", 0, 1),
		"taxii.latency.collection.p50": medallion("collection GET, 8 clients: p50 / p99", 0, 1),
		"taxii.latency.collection.p99": medallion("collection GET, 8 clients: p50 / p99", 1, 1),
		"taxii.latency.object.p50":     medallion("object GET, 8 clients: p50 / p99", 0, 1),
		"taxii.latency.object.p99":     medallion("object GET, 8 clients: p50 / p99", 1, 1),
	}
	emit := func(f Figure) {
		if ref, ok := peers[f.Name]; ok {
			if p, ok := e.Recorded("medallion", ref); ok {
				f.Peers = append(f.Peers, p)
			}
		}
		e.Emit(f)
	}
	for s := 1; s <= samples; s++ {
		node, err := e.StartNode(ctx, "")
		if err != nil {
			return err
		}
		run := func(args ...string) ([]map[string]any, error) {
			out := filepath.Join(node.Dir, fmt.Sprintf("taxiiload-%d.jsonl", time.Now().UnixNano()))
			full := append([]string{"-url", node.URL, "-user", "bench", "-pass", node.Key, "-seed", "1", "-json", out}, args...)
			cmd := exec.CommandContext(ctx, tl, full...)
			if _, err := e.Exec(cmd); err != nil {
				return nil, err
			}
			b, err := os.ReadFile(out)
			if err != nil {
				return nil, fmt.Errorf("taxiiload results: %w", err)
			}
			return parseJSONLines(b)
		}
		cpu0, err := node.CPU()
		if err != nil {
			return err
		}
		post, err := run("post", "-n", fmt.Sprint(n))
		if err != nil {
			return err
		}
		cpu1, err := node.CPU()
		if err != nil {
			return err
		}
		if len(post) != 1 {
			return fmt.Errorf("taxiiload post wrote %d results, want 1", len(post))
		}
		p := post[0]
		if num(p, "success") != n {
			return fmt.Errorf("taxiiload post: %v of %d objects stored", p["success"], n)
		}
		emit(Figure{Name: "taxii.post.complete", Value: num(p, "complete_obj_per_s"), Unit: "objects/s", Better: Higher, Goal: AtLeast(50000)})
		emit(Figure{Name: "taxii.post.accepted", Value: num(p, "post_obj_per_s"), Unit: "objects/s", Better: Higher})
		emit(Figure{Name: "taxii.post.server-cpu", Value: float64((cpu1 - cpu0).Microseconds()) / n, Unit: "µs/object", Better: Lower,
			Note: "CPU of the serve process over the posting, 10 ms ticks"})
		mid, _ := p["added_after_mid"].(string)
		for _, pull := range []struct {
			name string
			args []string
			want int
		}{
			{"taxii.read.all", []string{"pull", "-n", fmt.Sprint(n)}, n},
			{"taxii.read.type", []string{"pull", "-n", "-1", "-type", "indicator"}, -1},
			{"taxii.read.added-after", []string{"pull", "-n", "-1", "-added-after", mid}, -1},
		} {
			r, err := run(pull.args...)
			if err != nil {
				return err
			}
			if len(r) != 1 {
				return fmt.Errorf("taxiiload %v wrote %d results, want 1", pull.args, len(r))
			}
			if ok, _ := r[0]["ok"].(bool); pull.want >= 0 && !ok {
				return fmt.Errorf("%s: read %v distinct objects, want %d", pull.name, r[0]["unique"], pull.want)
			}
			emit(Figure{Name: pull.name, Value: num(r[0], "obj_per_s"), Unit: "objects/s", Better: Higher})
			if pull.name == "taxii.read.all" {
				emit(Figure{Name: "taxii.read.all.first-page", Value: num(r[0], "first_page_ms"), Unit: "ms", Better: Lower})
			}
		}
		lat, err := run("latency", "-c", "8", "-d", dur, "-targets", "collection,object")
		if err != nil {
			return err
		}
		for _, r := range lat {
			t, _ := r["target"].(string)
			if num(r, "errors") > 0 {
				return fmt.Errorf("latency %s: %v errors (first: %v)", t, r["errors"], r["first_error"])
			}
			var goal *Goal
			if t == "object" {
				goal = Below(5)
			}
			emit(Figure{Name: "taxii.latency." + t + ".p50", Value: num(r, "p50_ms"), Unit: "ms", Better: Lower})
			emit(Figure{Name: "taxii.latency." + t + ".p99", Value: num(r, "p99_ms"), Unit: "ms", Better: Lower, Goal: goal})
			emit(Figure{Name: "taxii.latency." + t + ".rate", Value: num(r, "req_per_s"), Unit: "requests/s", Better: Higher})
		}
		if err := node.Stop(); err != nil {
			return err
		}
	}
	return nil
}

// parseJSONLines decodes one JSON object per non-blank line.
func parseJSONLines(b []byte) ([]map[string]any, error) {
	var out []map[string]any
	for i, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// num returns a numeric field of a decoded JSON object (NaN when missing).
func num(m map[string]any, k string) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case json.Number:
		f, err := v.Float64()
		if err == nil {
			return f
		}
	}
	return nan
}
